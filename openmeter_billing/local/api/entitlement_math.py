"""From state records to the balance engine and back: values of any entitlement type.

Routes ask "what is this entitlement worth at T?"; this module builds the engine's inputs (the
entitlement, its grants, a usage function over the customer's events) and renders the answer as
``EntitlementValueV2`` fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from openmeter_billing.local._time import ceil_minute
from openmeter_billing.local.engine.balance import (
    BalanceResult,
    GrantState,
    MeteredEntitlementState,
    UsageFn,
    compute_balance,
    current_usage_period,
)
from openmeter_billing.local.state.store import EntitlementRecord, GrantRecord, MeterRecord, State

__all__ = [
    "engine_inputs",
    "grant_state",
    "metered_state",
    "omit_false_access",
    "period_of",
    "value_json",
]


def _meter_of(state: State, ent: EntitlementRecord) -> MeterRecord | None:
    """The live meter behind the entitlement's feature (None once it was deleted)."""
    return state.live_meter(state.features[ent.feature_id].meter_slug or "")


def metered_state(
    state: State, ent: EntitlementRecord, meter: MeterRecord | None = None
) -> MeteredEntitlementState:
    """The engine's view of a metered entitlement (its meter decides the aggregation)."""
    assert ent.usage_period is not None
    assert ent.measure_usage_from is not None
    meter = meter or _meter_of(state, ent)
    aggregation = meter.aggregation if meter is not None else "SUM"
    return MeteredEntitlementState(
        measure_usage_from=ent.measure_usage_from,
        usage_period=ent.usage_period.recurrence(),
        resets=tuple(ent.resets),
        is_soft_limit=ent.is_soft_limit,
        preserve_overage_at_reset=ent.preserve_overage_at_reset,
        aggregation=aggregation,  # type: ignore[arg-type]
    )


def grant_state(g: GrantRecord) -> GrantState:
    return GrantState(
        id=g.id,
        amount=g.amount,
        priority=g.priority,
        effective_at=g.effective_at,
        created_at=g.created_at,
        expires_at=g.expires_at,
        voided_at=g.voided_at,
        deleted_at=g.deleted_at,
        min_rollover_amount=g.min_rollover_amount,
        max_rollover_amount=g.max_rollover_amount,
        recurrence=g.recurrence.recurrence() if g.recurrence else None,
    )


def _no_usage(_start: datetime, _end: datetime) -> float:
    return 0.0


def _usage_fn(state: State, ent: EntitlementRecord, meter: MeterRecord | None) -> UsageFn:
    """Meter value over ``[from, to)`` for this customer's subjects and the feature's filters."""
    feature = state.features[ent.feature_id]
    if meter is None:  # the meter was deleted: no usage is measured any more
        return _no_usage
    customer = state.customers[ent.customer_id]
    return meter.index.usage_fn(customer.subjects(), feature.meter_group_by_filters or None)


def engine_inputs(
    state: State, ent: EntitlementRecord
) -> tuple[MeteredEntitlementState, list[GrantState], UsageFn]:
    grants = [grant_state(g) for g in state.grants_of(ent.id)]
    meter = _meter_of(state, ent)
    return metered_state(state, ent, meter), grants, _usage_fn(state, ent, meter)


def period_of(state: State, ent: EntitlementRecord, at: datetime) -> tuple[datetime, datetime]:
    """Current usage period ``[from, to)`` at ``at`` (rounded up to the minute, like reads)."""
    if ent.type == "metered":
        return current_usage_period(metered_state(state, ent), ceil_minute(at))
    assert ent.usage_period is not None
    recurrence = ent.usage_period.recurrence()
    return recurrence.last_at_or_before(at), recurrence.next_after(at)


def balance_of(state: State, ent: EntitlementRecord, at: datetime) -> BalanceResult:
    metered, grants, usage = engine_inputs(state, ent)
    return compute_balance(metered, grants, usage, at)


def omit_false_access(doc: dict[str, Any]) -> dict[str, Any]:
    """v2 value shape: the real server drops a false ``hasAccess`` (Go ``omitempty``)."""
    if not doc.get("hasAccess"):
        doc.pop("hasAccess", None)
    return doc


def value_json(
    state: State, ent: EntitlementRecord | None, at: datetime, *, v2: bool
) -> dict[str, Any]:
    """``EntitlementValue`` (v1) or ``EntitlementValueV2`` fields at ``at``, with ``hasAccess``.

    The v2 routes drop ``hasAccess`` when false, as the real server's JSON encoder does.
    """
    if ent is None or not ent.active_at(at):
        return {"hasAccess": False}
    if ent.type == "boolean":
        return {"hasAccess": True}
    if ent.type == "static":
        doc: dict[str, Any] = {"hasAccess": True}
        if ent.config:
            doc["config"] = ent.config
        return doc
    result = balance_of(state, ent, at)
    doc = {
        "hasAccess": result.has_access,
        "balance": result.balance,
        "usage": result.usage,
        "overage": result.overage,
        "totalAvailableGrantAmount": result.total_available_grant_amount,
    }
    if v2:
        doc["grantBalances"] = dict(result.grant_balances)
    return doc
