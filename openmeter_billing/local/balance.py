"""Metered entitlement balances (public name kept): see :mod:`.engine.balance`.

The engine moved to ``openmeter_billing.local.engine``; this module keeps
``openmeter_billing.local.balance`` importing as before.
"""

from openmeter_billing.local.engine.balance import (
    Aggregation,
    BalanceResult,
    BurnDownSegment,
    GrantState,
    HistoryResult,
    HistoryWindow,
    MeteredEntitlementState,
    ResetRecord,
    UsageFn,
    burn_order,
    compute_balance,
    compute_history,
    current_usage_period,
    grant_active_until,
    grant_is_active,
    period_start_for_grant_validation,
)

__all__ = [
    "Aggregation",
    "BalanceResult",
    "BurnDownSegment",
    "GrantState",
    "HistoryResult",
    "HistoryWindow",
    "MeteredEntitlementState",
    "ResetRecord",
    "UsageFn",
    "burn_order",
    "compute_balance",
    "compute_history",
    "current_usage_period",
    "grant_active_until",
    "grant_is_active",
    "period_start_for_grant_validation",
]
