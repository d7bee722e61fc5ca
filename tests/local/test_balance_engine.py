"""Metered balances of Local OpenMeter, pinned with numbers derived by hand from OpenMeter's rules.

Every scenario builds its usage from (time, value) points; the comment next to each expectation says
how the number follows from the rules (reference notes section 5).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local._time import Recurrence, add_expiration, parse_interval
from openmeter_billing.local.balance import (
    Aggregation,
    BalanceResult,
    GrantState,
    MeteredEntitlementState,
    ResetRecord,
    compute_balance,
    current_usage_period,
    grant_is_active,
    period_start_for_grant_validation,
)

UTC = timezone.utc


def t(
    month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, *, year: int = 2025
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


class Meter:
    """A usage function over (time, value) points, like a meter query for one customer."""

    def __init__(self, points: Sequence[tuple[datetime, Any]], aggregation: Aggregation = "SUM"):
        self.points = sorted(points, key=lambda p: p[0])
        self.aggregation = aggregation
        self.calls: list[tuple[datetime, datetime]] = []

    def __call__(self, start: datetime, end: datetime) -> float:
        assert end > start, "the engine must never ask for an empty window"
        self.calls.append((start, end))
        inside = [(at, v) for at, v in self.points if start <= at < end]
        if self.aggregation == "COUNT":
            return float(len(inside))
        if self.aggregation == "UNIQUE_COUNT":
            return float(len({v for _, v in inside}))
        if self.aggregation == "LATEST":
            return float(inside[-1][1]) if inside else 0.0
        return float(sum(v for _, v in inside))


def monthly(anchor: datetime | None = None, **overrides: Any) -> MeteredEntitlementState:
    anchor = anchor or t(1, 1)
    fields: dict[str, Any] = {
        "measure_usage_from": anchor,
        "usage_period": Recurrence(anchor, parse_interval("MONTH")),
    }
    fields.update(overrides)
    return MeteredEntitlementState(**fields)


def grant(gid: str, amount: float, **overrides: Any) -> GrantState:
    fields: dict[str, Any] = {
        "id": gid,
        "amount": amount,
        "priority": 0,
        "effective_at": t(1, 1),
        "created_at": overrides.get("effective_at", t(1, 1)),
    }
    fields.update(overrides)
    return GrantState(**fields)


Value = tuple[float, float, float, float, bool]


def value(result: BalanceResult) -> Value:
    return (
        result.balance,
        result.usage,
        result.overage,
        result.total_available_grant_amount,
        result.has_access,
    )


# --- the worked example of section 5.8 -----------------------------------------------------------

WORKED_USAGE = [(t(1, 10), 120), (t(1, 25), 40)]
WORKED_GRANTS = [
    grant("A", 100, priority=1),
    grant("B", 50, expires_at=t(1, 20)),
    grant("C", 100, effective_at=t(2, 2)),
]


@pytest.mark.parametrize(
    ("at", "expected", "balances"),
    [
        # B (priority 0) burns first: B=0, A=100-70=30; covered 120 + balance 30 = 150.
        (t(1, 15), (30, 120, 0, 150, True), {"A": 30, "B": 0}),
        # +40: A=0, 10 uncovered; B has expired so it is no longer listed.
        (t(1, 26), (0, 160, 10, 150, False), {"A": 0}),
        # Feb 1 reset: A rolls over min(100, max(0, 0)) = 0, overage forgiven, usage restarts.
        (t(2, 1, 12), (0, 0, 0, 0, False), {"A": 0}),
        # C takes effect Feb 2 with its full amount.
        (t(2, 3), (100, 0, 0, 100, True), {"A": 0, "C": 100}),
    ],
)
def test_worked_example_forgives_overage_at_reset(
    at: datetime, expected: Value, balances: dict[str, float]
) -> None:
    result = compute_balance(monthly(), WORKED_GRANTS, Meter(WORKED_USAGE), at)
    assert value(result) == expected
    assert result.grant_balances == balances


@pytest.mark.parametrize(
    ("at", "expected", "balances"),
    [
        (t(1, 26), (0, 160, 10, 150, False), {"A": 0}),
        # Preserved: the 10 survives the reset because A rolled over to 0 and cannot pay it.
        (t(2, 1, 12), (0, 0, 10, 0, False), {"A": 0}),
        # C pays the carried 10 first: 90 left; covered 10 + balance 90 = 100.
        (t(2, 3), (90, 0, 0, 100, True), {"A": 0, "C": 90}),
    ],
)
def test_worked_example_with_preserved_overage_pays_it_from_the_next_grant(
    at: datetime, expected: Value, balances: dict[str, float]
) -> None:
    ent = monthly(preserve_overage_at_reset=True)
    result = compute_balance(ent, WORKED_GRANTS, Meter(WORKED_USAGE), at)
    assert value(result) == expected
    assert result.grant_balances == balances


def test_soft_limit_keeps_access_with_an_exhausted_balance() -> None:
    ent = monthly(is_soft_limit=True)
    result = compute_balance(ent, WORKED_GRANTS, Meter(WORKED_USAGE), t(1, 26))
    assert (result.balance, result.overage, result.has_access) == (0, 10, True)


# --- overage within a period ---------------------------------------------------------------------


def test_grant_taking_effect_mid_period_pays_down_earlier_overage() -> None:
    grants = [grant("G", 100, effective_at=t(1, 10))]
    meter = Meter([(t(1, 5), 25), (t(1, 15), 25)])
    before = compute_balance(monthly(), grants, meter, t(1, 8))
    # No grant yet: the 25 is overage and G is not listed.
    assert value(before) == (0, 25, 25, 0, False)
    assert before.grant_balances == {}
    after = compute_balance(monthly(), grants, meter, t(1, 20))
    # G starts at 100 and burns the carried 25 plus the later 25.
    assert value(after) == (50, 50, 0, 100, True)


# --- burn order ----------------------------------------------------------------------------------

ORDER_GRANTS = [
    grant("u", 10, priority=2),
    grant("t", 10, priority=2),
    grant("s", 10, priority=2, created_at=t(12, 31, year=2024)),
    grant("q", 10, priority=2, expires_at=t(1, 25)),
    grant("r", 10, priority=2, expires_at=t(1, 20)),
    grant("p", 10, priority=1),
]


@pytest.mark.parametrize(
    ("used", "expected"),
    [
        # priority 1 first
        (5, {"p": 5, "r": 10, "q": 10, "s": 10, "t": 10, "u": 10}),
        # then the earliest expiry (r before q)
        (25, {"p": 0, "r": 0, "q": 5, "s": 10, "t": 10, "u": 10}),
        # then non-expiring by creation (s was created in 2024), then by id (t before u)
        (45, {"p": 0, "r": 0, "q": 0, "s": 0, "t": 5, "u": 10}),
        (65, {"p": 0, "r": 0, "q": 0, "s": 0, "t": 0, "u": 0}),
    ],
)
def test_usage_burns_by_priority_then_expiry_then_creation_then_id(
    used: float, expected: dict[str, float]
) -> None:
    result = compute_balance(monthly(), ORDER_GRANTS, Meter([(t(1, 2), used)]), t(1, 3))
    assert result.grant_balances == expected
    assert result.overage == max(used - 60, 0)


# --- expiry, void, delete ------------------------------------------------------------------------


def test_expiring_grant_drops_out_exactly_at_its_expiry_with_its_remaining_balance() -> None:
    grants = [grant("A", 100, priority=1), grant("B", 50, expires_at=t(1, 20))]
    meter = Meter([(t(1, 10), 30), (t(1, 21), 10)])
    assert compute_balance(monthly(), grants, meter, t(1, 19, 23, 59)).grant_balances == {
        "A": 100,
        "B": 20,
    }
    at_expiry = compute_balance(monthly(), grants, meter, t(1, 20))
    assert (at_expiry.balance, at_expiry.grant_balances) == (100, {"A": 100})
    later = compute_balance(monthly(), grants, meter, t(1, 22))
    # covered 30 (B) + 10 (A) + balance 90
    assert value(later) == (90, 40, 0, 130, True)


@pytest.mark.parametrize("field", ["voided_at", "deleted_at"])
def test_voided_or_deleted_grant_stops_counting_from_its_minute_and_keeps_past_burn(
    field: str,
) -> None:
    grants = [grant("V", 100, **{field: t(1, 15, 10, 30, 45)}), grant("W", 50, priority=5)]
    meter = Meter([(t(1, 10), 40), (t(1, 16), 10)])
    before = compute_balance(monthly(), grants, meter, t(1, 15, 10, 29))
    assert before.grant_balances == {"V": 60, "W": 50}
    at_void = compute_balance(monthly(), grants, meter, t(1, 15, 10, 30))
    assert at_void.grant_balances == {"W": 50}
    after = compute_balance(monthly(), grants, meter, t(1, 17))
    assert value(after) == (40, 50, 0, 90, True)  # covered 40 (V) + 10 (W), balance 40


def test_grant_expiry_overflows_month_end_like_go_add_date() -> None:
    expiry = add_expiration(t(1, 31), "MONTH", 1)
    assert expiry == t(3, 3)
    ent = MeteredEntitlementState(
        measure_usage_from=t(1, 1), usage_period=Recurrence(t(1, 1), parse_interval("YEAR"))
    )
    grants = [grant("G", 100, effective_at=t(1, 31), expires_at=expiry)]
    assert compute_balance(ent, grants, Meter([]), t(3, 2, 23, 59)).balance == 100
    assert compute_balance(ent, grants, Meter([]), t(3, 3)).grant_balances == {}


# --- resets: rollover ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minimum", "maximum", "used", "after_reset"),
    [
        (0, None, 40, 60),  # v2 default: max = amount, everything carries
        (0, 0, 40, 0),  # max 0: nothing carries
        (30, None, 90, 30),  # 10 left, topped up to the minimum
        (0, 20, 10, 20),  # 90 left, capped at 20
        (100, 100, 100, 100),  # `issue` grants: every period restores the amount
        (0, None, 130, 0),  # exhausted; the 30 overage is forgiven
    ],
)
def test_reset_rolls_balance_between_min_and_max(
    minimum: float, maximum: float | None, used: float, after_reset: float
) -> None:
    grants = [grant("G", 100, min_rollover_amount=minimum, max_rollover_amount=maximum)]
    result = compute_balance(monthly(), grants, Meter([(t(1, 10), used)]), t(2, 1, 12))
    assert value(result) == (after_reset, 0, 0, after_reset, after_reset > 0)
    assert result.current_period == (t(2, 1), t(3, 1))
    assert result.last_reset == t(2, 1)


def test_grant_expiring_exactly_at_reset_does_not_roll_over() -> None:
    grants = [grant("A", 10, priority=1), grant("B", 50, expires_at=t(2, 1))]
    ent = monthly(preserve_overage_at_reset=True)
    result = compute_balance(ent, grants, Meter([(t(1, 5), 70)]), t(2, 1, 12))
    # B paid 50 and A 10, 10 overage; B ends at the reset so it cannot absorb the preserved 10.
    assert (result.balance, result.overage, result.grant_balances) == (0, 10, {"A": 0})


# --- resets: manual ------------------------------------------------------------------------------

ISSUE_GRANT = [grant("G", 100, min_rollover_amount=100, max_rollover_amount=100)]
RESET_USAGE = [(t(1, 10), 30), (t(1, 20), 20), (t(2, 10), 10)]


@pytest.mark.parametrize(
    ("at", "balance", "usage", "period"),
    [
        (t(1, 14), 70, 30, (t(1, 1), t(1, 15, 12))),  # the reset cuts the first period short
        (t(1, 25), 80, 20, (t(1, 15, 12), t(2, 15, 12))),  # restored to 100, then 20 used
        (t(2, 2), 80, 20, (t(1, 15, 12), t(2, 15, 12))),  # no Feb 1 reset any more
        (t(2, 11), 70, 30, (t(1, 15, 12), t(2, 15, 12))),
        (t(2, 16), 100, 0, (t(2, 15, 12), t(3, 15, 12))),  # the moved anchor resets monthly
    ],
)
def test_manual_reset_without_retained_anchor_moves_the_period_anchor(
    at: datetime, balance: float, usage: float, period: tuple[datetime, datetime]
) -> None:
    ent = monthly(resets=(ResetRecord(at=t(1, 15, 12), anchor=t(1, 15, 12)),))
    result = compute_balance(ent, ISSUE_GRANT, Meter(RESET_USAGE), at)
    assert (result.balance, result.usage, result.current_period) == (balance, usage, period)
    assert result.last_reset == period[0]


@pytest.mark.parametrize(
    ("at", "balance", "usage", "period"),
    [
        (t(1, 25), 80, 20, (t(1, 15, 12), t(2, 1))),
        (t(2, 2), 100, 0, (t(2, 1), t(3, 1))),  # the old anchor still resets on Feb 1
        (t(2, 11), 90, 10, (t(2, 1), t(3, 1))),
    ],
)
def test_manual_reset_with_retained_anchor_keeps_the_old_boundaries(
    at: datetime, balance: float, usage: float, period: tuple[datetime, datetime]
) -> None:
    ent = monthly(resets=(ResetRecord(at=t(1, 15, 12), anchor=t(1, 1)),))
    result = compute_balance(ent, ISSUE_GRANT, Meter(RESET_USAGE), at)
    assert (result.balance, result.usage, result.current_period) == (balance, usage, period)


@pytest.mark.parametrize(
    ("entitlement_default", "reset_flag", "expected"),
    [
        # 130 used against 100: 30 overage. Rolled over to 100 (min = max = 100).
        (False, None, (100, 0, 0, 100, True)),  # forgiven
        (False, True, (70, 0, 0, 100, True)),  # the reset's flag wins: 30 paid from the 100
        (True, None, (70, 0, 0, 100, True)),
        (True, False, (100, 0, 0, 100, True)),
    ],
)
def test_manual_reset_preserve_flag_overrides_the_entitlement_default(
    entitlement_default: bool, reset_flag: bool | None, expected: Value
) -> None:
    reset = ResetRecord(at=t(1, 15), anchor=t(1, 15), preserve_overage=reset_flag)
    ent = monthly(resets=(reset,), preserve_overage_at_reset=entitlement_default)
    result = compute_balance(ent, ISSUE_GRANT, Meter([(t(1, 10), 130)]), t(1, 16))
    assert value(result) == expected


def test_reading_exactly_at_a_reset_shows_the_new_period() -> None:
    result = compute_balance(monthly(), ISSUE_GRANT, Meter([(t(1, 31, 23), 60)]), t(2, 1))
    assert value(result) == (100, 0, 0, 100, True)
    assert result.current_period == (t(2, 1), t(3, 1))


# --- recurring grants ----------------------------------------------------------------------------

DAILY_GRANT = [grant("G", 100, recurrence=Recurrence(t(1, 1), parse_interval("DAY")))]
DAILY_USAGE = [(t(1, 1, 10), 30), (t(1, 2, 10), 50), (t(1, 2, 11), 80)]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (t(1, 1, 23), (70, 30, 0, 100, True)),
        (t(1, 2), (100, 30, 0, 130, True)),  # refilled at the boundary, no rollover limits
        (t(1, 2, 12), (0, 160, 30, 130, False)),  # 130 used of 100: 30 overage carried
        # the next refill pays the carried 30 first; all 160 are now covered: 160 + 70
        (t(1, 3, 1), (70, 160, 0, 230, True)),
    ],
)
def test_recurring_grant_refills_to_its_amount(at: datetime, expected: Value) -> None:
    assert value(compute_balance(monthly(), DAILY_GRANT, Meter(DAILY_USAGE), at)) == expected


@pytest.mark.parametrize(("recurring", "after_reset"), [(True, 100), (False, 0)])
def test_recurrence_on_a_reset_wins_over_the_rollover(recurring: bool, after_reset: float) -> None:
    recurrence = Recurrence(t(1, 1), parse_interval("MONTH")) if recurring else None
    grants = [grant("G", 100, max_rollover_amount=0, recurrence=recurrence)]
    result = compute_balance(monthly(), grants, Meter([(t(1, 5), 40)]), t(2, 1, 12))
    assert result.balance == after_reset


# --- aggregations --------------------------------------------------------------------------------


def test_unique_count_counts_distinct_values_in_the_period() -> None:
    events = [(t(1, 2, 0, i), f"user-{i % 10}") for i in range(20)]
    meter = Meter(events, "UNIQUE_COUNT")
    ent = monthly(aggregation="UNIQUE_COUNT")
    assert value(compute_balance(ent, [grant("G", 100)], meter, t(1, 3))) == (90, 10, 0, 100, True)


def test_unique_count_counts_a_value_repeated_across_phases_once() -> None:
    # B taking effect on Jan 10 splits the period into two phases; "c" appears in both.
    events = [(t(1, 2), "a"), (t(1, 3), "b"), (t(1, 4), "c"), (t(1, 11), "c"), (t(1, 12), "d")]
    events += [(t(2, 2), "a")]
    grants = [grant("A", 100), grant("B", 50, effective_at=t(1, 10))]
    ent = monthly(aggregation="UNIQUE_COUNT")
    meter = Meter(events, "UNIQUE_COUNT")
    mid = compute_balance(ent, grants, meter, t(1, 15))
    # phase 1: 3 new values; phase 2: uniq(a,b,c,d) - uniq(a,b,c) = 1. A (created first) pays both.
    assert (mid.usage, mid.grant_balances) == (4, {"A": 96, "B": 50})
    # A new period counts "a" again.
    assert compute_balance(ent, grants, meter, t(2, 3)).usage == 1


def test_count_meter_counts_events() -> None:
    meter = Meter([(t(1, 2), 7), (t(1, 3), 9), (t(1, 4), 0)], "COUNT")
    result = compute_balance(monthly(aggregation="COUNT"), [grant("G", 10)], meter, t(1, 5))
    assert (result.balance, result.usage) == (7, 3)


@pytest.mark.parametrize(
    ("at", "expected", "balances"),
    [
        (t(1, 6), (30, 70, 0, 100, True), {"A": 30}),
        (t(1, 8), (60, 40, 0, 100, True), {"A": 60}),  # a limit, not a budget: 100 - 40
        # B starts Jan 10 (new phase) and nothing was reported since: both limits are free.
        (t(1, 10, 12), (150, 40, 0, 150, True), {"A": 100, "B": 50}),
        (t(1, 12), (30, 120, 0, 150, True), {"A": 0, "B": 30}),
        (t(1, 14), (0, 200, 50, 150, False), {"A": 0, "B": 0}),
        (t(1, 16), (140, 10, 0, 150, True), {"A": 90, "B": 50}),  # overage is not carried
    ],
)
def test_latest_meter_treats_grants_as_limits(
    at: datetime, expected: Value, balances: dict[str, float]
) -> None:
    points = [(t(1, 5), 70), (t(1, 7), 40), (t(1, 11), 120), (t(1, 13), 200), (t(1, 15), 10)]
    grants = [grant("A", 100), grant("B", 50, priority=1, effective_at=t(1, 10))]
    result = compute_balance(monthly(aggregation="LATEST"), grants, Meter(points, "LATEST"), at)
    assert value(result) == expected
    assert result.grant_balances == balances


# --- time edges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("soft", "access"), [(False, False), (True, True)])
def test_reading_before_measure_usage_from_gives_zeros(soft: bool, access: bool) -> None:
    ent = monthly(measure_usage_from=t(1, 10), is_soft_limit=soft)
    meter = Meter([(t(1, 5), 10)])
    result = compute_balance(ent, [grant("G", 100)], meter, t(1, 5))
    assert value(result) == (0, 0, 0, 0, access)
    assert result.grant_balances == {}
    assert result.current_period == (t(1, 10), t(2, 1))
    assert meter.calls == []


def test_usage_before_measure_usage_from_is_ignored() -> None:
    ent = monthly(measure_usage_from=t(1, 10))
    result = compute_balance(ent, [grant("G", 100)], Meter([(t(1, 5), 10), (t(1, 12), 5)]), t(2, 1))
    assert result.balance == 95


@pytest.mark.parametrize(
    ("at", "balance"),
    [(t(1, 2, 10, 5, 10), 95), (t(1, 2, 10, 5), 100), (t(1, 2, 10, 6), 95)],
)
def test_sub_minute_reads_round_up_to_include_the_partial_minute(
    at: datetime, balance: float
) -> None:
    meter = Meter([(t(1, 2, 10, 5, 30), 5)])
    assert compute_balance(monthly(), [grant("G", 100)], meter, at).balance == balance


def test_grant_taking_effect_exactly_at_the_read_time_shows_its_amount() -> None:
    grants = [grant("G", 100, effective_at=t(1, 10))]
    result = compute_balance(monthly(), grants, Meter([(t(1, 5), 30)]), t(1, 10))
    assert (result.balance, result.overage, result.grant_balances) == (70, 0, {"G": 70})


@pytest.mark.parametrize(
    ("at", "period"),
    [
        (t(2, 15, year=2024), (t(1, 31, year=2024), t(2, 29, year=2024))),
        (t(3, 1, year=2024), (t(2, 29, year=2024), t(3, 31, year=2024))),
        (t(4, 1, year=2024), (t(3, 31, year=2024), t(4, 30, year=2024))),
        (t(2, 15, year=2025), (t(1, 31, year=2025), t(2, 28, year=2025))),
    ],
)
def test_monthly_period_anchored_on_the_31st_clamps_to_month_ends(
    at: datetime, period: tuple[datetime, datetime]
) -> None:
    ent = monthly(anchor=t(1, 31, year=2024))
    assert current_usage_period(ent, at) == period


def test_month_end_boundary_resets_the_balance() -> None:
    ent = monthly(anchor=t(1, 31, year=2024))
    grants = [dataclasses.replace(ISSUE_GRANT[0], effective_at=t(1, 31, year=2024))]
    meter = Meter([(t(2, 28, year=2024), 30)])
    assert compute_balance(ent, grants, meter, t(2, 28, 23, year=2024)).balance == 70
    assert compute_balance(ent, grants, meter, t(2, 29, year=2024)).balance == 100


def test_first_period_starts_at_measure_usage_from_not_at_the_anchor() -> None:
    ent = monthly(measure_usage_from=t(1, 15, 9, 30))
    assert current_usage_period(ent, t(1, 20)) == (t(1, 15, 9, 30), t(2, 1))
    assert period_start_for_grant_validation(ent, t(1, 20, 8, 0, 30)) == t(1, 15, 9, 30)
    assert period_start_for_grant_validation(ent, t(2, 3)) == t(2, 1)


def test_grant_is_active_on_its_half_open_interval() -> None:
    g = grant("G", 1, effective_at=t(1, 2), expires_at=t(1, 5), voided_at=t(1, 4, 8, 0, 30))
    assert [grant_is_active(g, at) for at in (t(1, 1), t(1, 2), t(1, 4, 7, 59), t(1, 4, 8))] == [
        False,
        True,
        True,
        False,
    ]


# --- property: what grants covered plus what is left equals what they gave -----------------------


def _random_scenario(rng: random.Random, *, expiring: bool) -> tuple[list[GrantState], Meter]:
    grants = []
    for index in range(rng.randint(1, 4)):
        start = t(1, 1) + timedelta(minutes=rng.randrange(0, 28 * 24 * 60, 17))
        expiry = (
            start + timedelta(days=rng.randint(1, 10)) if expiring and rng.random() < 0.5 else None
        )
        grants.append(
            grant(f"g{index}", rng.randint(1, 100), priority=rng.randint(0, 3),
                  effective_at=start, expires_at=expiry)
        )  # fmt: skip
    points = [
        (t(1, 1) + timedelta(minutes=rng.randrange(0, 30 * 24 * 60)), rng.randint(0, 40))
        for _ in range(rng.randint(0, 15))
    ]
    return grants, Meter(points)


@pytest.mark.parametrize("seed", range(60))
def test_usage_equals_covered_plus_overage_in_random_scenarios(seed: int) -> None:
    rng = random.Random(seed)
    grants, meter = _random_scenario(rng, expiring=seed % 2 == 0)
    at = t(1, 1) + timedelta(minutes=rng.randrange(1, 30 * 24 * 60))
    result = compute_balance(monthly(), grants, meter, at)
    covered = result.total_available_grant_amount - result.balance
    assert result.usage == pytest.approx(covered + result.overage)
    for g in grants:
        assert 0 <= result.grant_balances.get(g.id, 0) <= g.amount
    if seed % 2:  # nothing expires: grants gave exactly their amounts
        given = sum(g.amount for g in grants if g.effective_at <= at)
        assert result.total_available_grant_amount == pytest.approx(given)
        assert result.overage == 0 or result.balance == 0


def test_naive_read_time_is_rejected_naming_the_field() -> None:
    with pytest.raises(InvalidInputError) as info:
        compute_balance(monthly(), [grant("G", 1)], Meter([]), datetime(2025, 1, 2))
    assert info.value.field == "at"


def test_reading_exactly_at_measure_usage_from_shows_full_grants() -> None:
    result = compute_balance(monthly(), [grant("G", 40)], Meter([(t(1, 1), 5)]), t(1, 1))
    assert value(result) == (40, 0, 0, 40, True)


def test_results_are_frozen() -> None:
    result = compute_balance(monthly(), [grant("G", 1)], Meter([]), t(1, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.balance = 5  # type: ignore[misc]
