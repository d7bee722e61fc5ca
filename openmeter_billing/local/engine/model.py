"""The inputs of the balance engine: plain frozen records the routes build from their state.

They live apart from ``balance.py`` so the burn-down modules can import them without a cycle;
``balance.py`` re-exports every name, which is where callers should import them from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from openmeter_billing.local._time import Recurrence, truncate_minute

__all__ = [
    "Aggregation",
    "GrantState",
    "MeteredEntitlementState",
    "ResetRecord",
    "UsageFn",
    "grant_active_until",
    "grant_is_active",
]

UsageFn = Callable[[datetime, datetime], float]
"""Meter value for the entitlement's customer and feature over ``[from, to)``.

SUM/COUNT: the sum; LATEST: the latest value in the window (0.0 when none); UNIQUE_COUNT: the number
of distinct values in the window. The engine never calls it with an empty window.
"""

Aggregation = Literal["SUM", "COUNT", "UNIQUE_COUNT", "LATEST"]


@dataclass(frozen=True)
class GrantState:
    """A grant as the engine sees it.

    Attributes:
        id: Grant id; the last tie-breaker of the burn-down order.
        amount: Granted amount; the balance a grant starts with and recurs to.
        priority: Lower burns first (an omitted priority must already be 0).
        effective_at: Start of the grant, already minute-truncated.
        created_at: Tie-breaker after priority and expiry.
        expires_at: End of the grant (exclusive), or None when it never expires.
        voided_at: When it was voided; it stops counting from that minute on.
        deleted_at: When it was deleted; treated like a void.
        min_rollover_amount: Balance a reset tops the grant up to.
        max_rollover_amount: Balance a reset caps the grant at; None means ``amount`` (v2 default).
        recurrence: Refill schedule: at every boundary while active, balance := amount.
    """

    id: str
    amount: float
    priority: int
    effective_at: datetime
    created_at: datetime
    expires_at: datetime | None = None
    voided_at: datetime | None = None
    deleted_at: datetime | None = None
    min_rollover_amount: float = 0.0
    max_rollover_amount: float | None = None
    recurrence: Recurrence | None = None

    def rollover_balance(self, balance: float) -> float:
        """The balance this grant carries into the next usage period at a reset."""
        cap = self.amount if self.max_rollover_amount is None else self.max_rollover_amount
        return min(cap, max(balance, self.min_rollover_amount))


@dataclass(frozen=True)
class ResetRecord:
    """A manual usage reset (``POST .../reset``).

    Attributes:
        at: When the reset happened, minute-truncated; a new usage period starts here.
        anchor: Anchor of the usage periods from ``at`` on (the old anchor when retainAnchor).
        preserve_overage: Overrides the entitlement's ``preserve_overage_at_reset`` when not None.
    """

    at: datetime
    anchor: datetime
    preserve_overage: bool | None = None


@dataclass(frozen=True)
class MeteredEntitlementState:
    """What the engine needs to know about a metered entitlement.

    Attributes:
        measure_usage_from: Start of measurement; nothing before it counts.
        usage_period: The recurrence the entitlement was created with.
        resets: Manual resets, ascending by ``at``.
        is_soft_limit: Access stays on when the balance runs out.
        preserve_overage_at_reset: Carry overage into the next period instead of forgiving it.
        aggregation: The feature meter's aggregation; UNIQUE_COUNT and LATEST burn differently.
    """

    measure_usage_from: datetime
    usage_period: Recurrence
    resets: tuple[ResetRecord, ...] = ()
    is_soft_limit: bool = False
    preserve_overage_at_reset: bool = False
    aggregation: Aggregation = "SUM"


def grant_active_until(grant: GrantState) -> datetime | None:
    """The minute the grant stops counting: the earliest of expiry, void and delete, or None.

    Void and delete times arrive with seconds; OpenMeter splits burn phases at the truncated minute,
    so the grant is inactive from that minute on.
    """
    ends = [t for t in (grant.expires_at, grant.voided_at, grant.deleted_at) if t is not None]
    return truncate_minute(min(ends)) if ends else None


def grant_is_active(grant: GrantState, t: datetime) -> bool:
    """Whether the grant counts at ``t``: ``effective_at <= t < end`` (end exclusive)."""
    end = grant_active_until(grant)
    return grant.effective_at <= t and (end is None or t < end)
