"""Metered entitlement balances of Local OpenMeter: pure functions over grants, resets and usage.

This is OpenMeter's credit engine re-expressed for an in-process emulator: no I/O, no clock, no
state. The routes hand in the entitlement, its grants and a usage function and get numbers back.

Rules (OpenMeter's, see the module docs of ``phases`` and ``burndown`` for the mechanics):

* Minute resolution; a read at a sub-minute time is evaluated at the next whole minute.
* A grant counts on ``[effective_at, min(expires_at, voided_at, deleted_at))``.
* Usage burns grants by priority (then expiry, creation, id). What no grant covers is overage,
  carried within the usage period and paid first by grants that take effect later.
* At every usage period start (recurrence boundary or manual reset) balances roll over between
  ``min_rollover_amount`` and ``max_rollover_amount``; overage is forgiven unless preserved.
* A grant recurrence sets its balance back to ``amount``, winning over a reset at the same time.

Where this emulator deliberately differs from OpenMeter's code (all edge cases):

* A grant taking effect exactly at the read time already shows its amount (OpenMeter shows 0 until
  the next minute).
* A grant ending exactly at a reset does not absorb preserved overage.
* LATEST meters: grants are limits refreshed every phase, so overage is not carried between phases,
  ``usage`` is the latest value in the period and ``total_available_grant_amount`` is the current
  phase's covered usage plus the balance.

Example::

    result = compute_balance(ent, grants, usage, at=datetime.now(timezone.utc))
    if not result.has_access:
        ...  # refuse the request
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Literal

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local._time import ceil_minute, require_aware, truncate_minute
from openmeter_billing.local._windows import windows_covering
from openmeter_billing.local.engine.burndown import Instant, RawSegment, burn_order, run
from openmeter_billing.local.engine.model import (
    Aggregation,
    GrantState,
    MeteredEntitlementState,
    ResetRecord,
    UsageFn,
    grant_active_until,
    grant_is_active,
)
from openmeter_billing.local.engine.periods import UsagePeriods

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


@dataclass(frozen=True)
class BalanceResult:
    """The value of a metered entitlement at one instant (``EntitlementValueV2`` fields).

    Attributes:
        balance: Sum of the active grants' balances, never negative.
        usage: Usage in the current usage period.
        overage: Usage no grant covered (carried within the period).
        total_available_grant_amount: Usage covered by grants in the period plus ``balance``.
        grant_balances: Balance per grant active at the instant.
        has_access: ``is_soft_limit or balance > 0``.
        current_period: ``[from, to)`` of the usage period containing the instant.
        last_reset: Start of that period (a boundary or the last manual reset).
    """

    balance: float
    usage: float
    overage: float
    total_available_grant_amount: float
    grant_balances: Mapping[str, float]
    has_access: bool
    current_period: tuple[datetime, datetime]
    last_reset: datetime


def current_usage_period(ent: MeteredEntitlementState, at: datetime) -> tuple[datetime, datetime]:
    """``[from, to)`` of the usage period containing ``at`` (the first one for earlier times).

    Periods follow the original recurrence until the first manual reset, then each reset's own
    anchor; a period is cut short where the next reset starts.
    """
    return UsagePeriods(ent).period_at(at)


def period_start_for_grant_validation(ent: MeteredEntitlementState, now: datetime) -> datetime:
    """The earliest ``effectiveAt`` a new grant (or a void or reset time) may have at ``now``.

    OpenMeter answers 400 for grants effective before the current usage period's start.
    """
    return current_usage_period(ent, ceil_minute(now))[0]


def _latest_usage(usage: UsageFn, start: datetime, end: datetime) -> float:
    """The LATEST meter's value in ``[start, end)``, 0 for an empty window."""
    return float(usage(start, end)) if end > start else 0.0


def _result_from(
    ent: MeteredEntitlementState,
    instant: Instant,
    usage: UsageFn,
    period: tuple[datetime, datetime],
) -> BalanceResult:
    """Turn the engine's state at an instant into the value a route returns."""
    balance = max(sum(instant.balances.values()), 0.0)
    if ent.aggregation == "LATEST":
        period_usage = _latest_usage(usage, instant.period_start, instant.at)
    else:
        period_usage = instant.period_usage
    return BalanceResult(
        balance=balance,
        usage=period_usage,
        overage=instant.overage,
        total_available_grant_amount=instant.period_grant_usage + balance,
        grant_balances=dict(instant.balances),
        has_access=ent.is_soft_limit or balance > 0,
        current_period=period,
        last_reset=period[0],
    )


def compute_balance(
    ent: MeteredEntitlementState, grants: Sequence[GrantState], usage: UsageFn, at: datetime
) -> BalanceResult:
    """The entitlement's value at ``at`` (a sub-minute ``at`` is rounded UP to the next minute).

    Before ``measure_usage_from`` everything is zero (access only for a soft limit).

    Example: a monthly entitlement with a 100 grant and 120 units used shows
    ``balance=0, usage=120, overage=20, has_access=False``.
    """
    require_aware(at, "at")
    at = ceil_minute(at)
    period = current_usage_period(ent, at)
    if at < ent.measure_usage_from:
        return BalanceResult(
            balance=0.0,
            usage=0.0,
            overage=0.0,
            total_available_grant_amount=0.0,
            grant_balances={},
            has_access=ent.is_soft_limit,
            current_period=period,
            last_reset=period[0],
        )
    instant = run(ent, grants, usage, until=at, instants=[at]).instants[0]
    return _result_from(ent, instant, usage, period)


@dataclass(frozen=True)
class HistoryWindow:
    """One window of ``windowedHistory``: its usage and the balance when it started."""

    start: datetime
    end: datetime
    usage: float
    balance_at_start: float


@dataclass(frozen=True)
class BurnDownSegment:
    """One burn phase of ``burndownHistory``: a stretch with a fixed burn order.

    ``grant_usages`` maps grant id to what that grant covered in the segment.
    """

    start: datetime
    end: datetime
    usage: float
    overage: float
    balance_at_start: float
    grant_balances_at_start: Mapping[str, float]
    balance_at_end: float
    grant_balances_at_end: Mapping[str, float]
    grant_usages: Mapping[str, float]


@dataclass(frozen=True)
class HistoryResult:
    """Both views of a balance history: calendar windows and burn-down segments."""

    windows: list[HistoryWindow]
    segments: list[BurnDownSegment]


def _segment(raw: RawSegment) -> BurnDownSegment:
    """Public form of an engine segment."""
    return BurnDownSegment(
        start=raw.start,
        end=raw.end,
        usage=raw.usage,
        overage=raw.overage,
        balance_at_start=max(sum(raw.balances_at_start.values()), 0.0),
        grant_balances_at_start=dict(raw.balances_at_start),
        balance_at_end=max(sum(raw.balances_at_end.values()), 0.0),
        grant_balances_at_end=dict(raw.balances_at_end),
        grant_usages=dict(raw.grant_usages),
    )


def _history_bounds(
    ent: MeteredEntitlementState, start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    """Validate and minute-align the history range (``end`` rounds up, like a balance read)."""
    require_aware(start, "from")
    require_aware(end, "to")
    low, high = truncate_minute(start), ceil_minute(end)
    if low < ent.measure_usage_from:
        raise InvalidInputError(
            f"from {start.isoformat()} is before the entitlement measures usage "
            f"({ent.measure_usage_from.isoformat()})",
            field="from",
            hint="pass a time at or after measureUsageFrom",
        )
    if high < low:
        raise InvalidInputError(
            f"to {end.isoformat()} is before from {start.isoformat()}",
            field="to",
            hint="pass a time at or after from",
        )
    return low, high


def compute_history(
    ent: MeteredEntitlementState,
    grants: Sequence[GrantState],
    usage: UsageFn,
    *,
    start: datetime,
    end: datetime,
    window_size: Literal["MINUTE", "HOUR", "DAY", "MONTH"],
    tz: tzinfo = timezone.utc,
) -> HistoryResult:
    """Balance history between ``start`` and ``end`` (``GET .../history``).

    Windows are calendar-aligned in ``tz`` and reported whole; their usage counts only what falls
    inside ``[start, end)`` and ``balance_at_start`` is what a read at the later of the window start
    and ``start`` would show. Segments are the burn phases clipped to ``[start, end)``.

    Raises:
        InvalidInputError: ``start`` before ``measure_usage_from``, ``end`` before ``start``, or an
            unknown ``window_size``.
    """
    low, high = _history_bounds(ent, start, end)
    windows = windows_covering(low, high, window_size, tz)
    points = [max(w_start, low) for w_start, _ in windows]
    out = run(ent, grants, usage, until=high, instants=points, segments_between=(low, high))
    history = [
        HistoryWindow(
            start=w_start,
            end=w_end,
            usage=float(usage(point, min(w_end, high))) if min(w_end, high) > point else 0.0,
            balance_at_start=max(sum(instant.balances.values()), 0.0),
        )
        for (w_start, w_end), point, instant in zip(windows, points, out.instants, strict=True)
    ]
    return HistoryResult(windows=history, segments=[_segment(s) for s in out.segments])
