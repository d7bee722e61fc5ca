"""Balance history of Local OpenMeter: calendar windows with their starting balance, and burn segments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local._time import Recurrence, parse_interval
from openmeter_billing.local.balance import (
    GrantState,
    HistoryResult,
    MeteredEntitlementState,
    compute_balance,
    compute_history,
)

UTC = timezone.utc


def t(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2025, month, day, hour, minute, tzinfo=UTC)


def sum_meter(points: Sequence[tuple[datetime, float]]) -> Callable[[datetime, datetime], float]:
    def usage(start: datetime, end: datetime) -> float:
        assert end > start
        return float(sum(v for at, v in points if start <= at < end))

    return usage


ENT = MeteredEntitlementState(
    measure_usage_from=t(1, 1), usage_period=Recurrence(t(1, 1), parse_interval("MONTH"))
)


def grant(gid: str, amount: float, **overrides: Any) -> GrantState:
    fields: dict[str, Any] = {
        "id": gid,
        "amount": amount,
        "priority": 0,
        "effective_at": t(1, 1),
        "created_at": t(1, 1),
    }
    fields.update(overrides)
    return GrantState(**fields)


HOURLY_USAGE = sum_meter([(t(1, 1, 0, 30), 10), (t(1, 1, 1, 30), 20), (t(1, 1, 1, 45), 5)])


def rows(history: HistoryResult) -> list[tuple[datetime, datetime, float, float]]:
    return [(w.start, w.end, w.usage, w.balance_at_start) for w in history.windows]


def test_hour_windows_report_usage_and_the_balance_each_started_with() -> None:
    history = compute_history(
        ENT, [grant("G", 100)], HOURLY_USAGE, start=t(1, 1), end=t(1, 1, 3), window_size="HOUR"
    )
    assert rows(history) == [
        (t(1, 1, 0), t(1, 1, 1), 10, 100),
        (t(1, 1, 1), t(1, 1, 2), 25, 90),
        (t(1, 1, 2), t(1, 1, 3), 0, 65),
    ]


def test_minute_windows_cover_a_sub_minute_end_and_show_the_burn_minute_by_minute() -> None:
    end = t(1, 1, 1, 31) + timedelta(seconds=20)  # rounds up to 01:32
    history = compute_history(
        ENT, [grant("G", 100)], HOURLY_USAGE, start=t(1, 1, 1, 29), end=end, window_size="MINUTE"
    )
    assert rows(history) == [
        (t(1, 1, 1, 29), t(1, 1, 1, 30), 0, 90),
        (t(1, 1, 1, 30), t(1, 1, 1, 31), 20, 90),
        (t(1, 1, 1, 31), t(1, 1, 1, 32), 0, 70),
    ]


def test_first_window_is_reported_whole_but_counts_only_usage_after_start() -> None:
    history = compute_history(
        ENT,
        [grant("G", 100)],
        HOURLY_USAGE,
        start=t(1, 1, 0, 40),
        end=t(1, 1, 2),
        window_size="HOUR",
    )
    # The 10 at 00:30 is before `start`: not counted in the window, but already burnt at 00:40.
    assert rows(history) == [(t(1, 1, 0), t(1, 1, 1), 0, 90), (t(1, 1, 1), t(1, 1, 2), 25, 90)]


DAY_GRANTS = [grant("G", 100), grant("H", 50, effective_at=t(1, 2, 12))]
DAY_USAGE = sum_meter([(t(1, 1, 0, 30), 10), (t(1, 1, 1, 30), 25), (t(1, 2, 6), 100)])


def test_day_windows_balance_follows_overage_paid_by_a_later_grant() -> None:
    history = compute_history(
        ENT, DAY_GRANTS, DAY_USAGE, start=t(1, 1), end=t(1, 4), window_size="DAY"
    )
    # Jan 2 06:00 burns G to 0 with 35 overage; H (50) takes effect at noon and pays it: 15.
    assert rows(history) == [
        (t(1, 1), t(1, 2), 35, 100),
        (t(1, 2), t(1, 3), 100, 65),
        (t(1, 3), t(1, 4), 0, 15),
    ]
    for window in history.windows:
        read = compute_balance(ENT, DAY_GRANTS, DAY_USAGE, window.start)
        assert window.balance_at_start == read.balance


def test_burn_down_segments_split_where_a_grant_takes_effect() -> None:
    history = compute_history(
        ENT, DAY_GRANTS, DAY_USAGE, start=t(1, 1), end=t(1, 4), window_size="DAY"
    )
    first, second = history.segments
    assert (first.start, first.end, first.usage, first.overage) == (t(1, 1), t(1, 2, 12), 135, 35)
    assert (first.balance_at_start, first.balance_at_end) == (100, 0)
    assert first.grant_balances_at_start == {"G": 100}
    assert first.grant_balances_at_end == {"G": 0}
    assert first.grant_usages == {"G": 100}
    assert (second.start, second.end, second.usage, second.overage) == (t(1, 2, 12), t(1, 4), 0, 0)
    assert (second.balance_at_start, second.balance_at_end) == (50, 15)
    assert second.grant_balances_at_start == {"G": 0, "H": 50}
    assert second.grant_usages == {"H": 35}  # the carried overage


def test_segments_are_clipped_to_the_asked_range() -> None:
    history = compute_history(
        ENT, [grant("G", 100)], HOURLY_USAGE, start=t(1, 1, 1), end=t(1, 1, 2), window_size="HOUR"
    )
    (segment,) = history.segments
    assert (segment.start, segment.end, segment.usage) == (t(1, 1, 1), t(1, 1, 2), 25)
    assert (segment.balance_at_start, segment.balance_at_end) == (90, 65)
    assert segment.grant_usages == {"G": 25}


def test_windows_across_a_reset_start_from_the_rolled_over_balance() -> None:
    issue = grant("G", 100, min_rollover_amount=100, max_rollover_amount=100)
    usage = sum_meter([(t(1, 31, 12), 60), (t(2, 1, 12), 30)])
    history = compute_history(ENT, [issue], usage, start=t(1, 31), end=t(2, 3), window_size="DAY")
    assert rows(history) == [
        (t(1, 31), t(2, 1), 60, 100),
        (t(2, 1), t(2, 2), 30, 100),  # restored at the Feb 1 reset
        (t(2, 2), t(2, 3), 0, 70),
    ]
    assert [s.start for s in history.segments] == [t(1, 31), t(2, 1)]


def test_month_windows_follow_the_calendar() -> None:
    usage = sum_meter([(t(1, 15), 30), (t(2, 15), 20)])
    history = compute_history(
        ENT, [grant("G", 100)], usage, start=t(1, 1), end=t(2, 20), window_size="MONTH"
    )
    assert rows(history) == [(t(1, 1), t(2, 1), 30, 100), (t(2, 1), t(3, 1), 20, 70)]


def test_day_windows_align_to_midnight_in_the_requested_time_zone() -> None:
    tz = timezone(timedelta(hours=-5))
    usage = sum_meter([(t(1, 2, 3), 10), (t(1, 2, 6), 20)])  # 22:00 Jan 1 and 01:00 Jan 2 local
    history = compute_history(
        ENT, [grant("G", 100)], usage, start=t(1, 1, 5), end=t(1, 3, 5), window_size="DAY", tz=tz
    )
    assert rows(history) == [(t(1, 1, 5), t(1, 2, 5), 10, 100), (t(1, 2, 5), t(1, 3, 5), 20, 90)]
    assert all(w.start.utcoffset() == timedelta(hours=-5) for w in history.windows)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": datetime(2024, 12, 31, tzinfo=UTC), "end": t(1, 2)}, "from"),
        ({"start": t(1, 3), "end": t(1, 2)}, "to"),
        ({"start": t(1, 1), "end": t(1, 2), "window_size": "WEEK"}, "windowSize"),
    ],
)
def test_history_rejects_bad_ranges_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"window_size": "DAY", **kwargs}
    with pytest.raises(InvalidInputError) as info:
        compute_history(ENT, [grant("G", 1)], sum_meter([]), **arguments)
    assert info.value.field == field


def test_a_month_of_minute_windows_stays_fast() -> None:
    calls = 0

    def usage(start: datetime, end: datetime) -> float:
        nonlocal calls
        calls += 1
        return 1.0 if start.minute % 7 == 0 and end - start == timedelta(minutes=1) else 0.0

    history = compute_history(
        ENT, [grant("G", 100)], usage, start=t(1, 1), end=t(1, 8), window_size="MINUTE"
    )
    assert len(history.windows) == 7 * 24 * 60
    # one usage query per window plus one per window start: no quadratic re-runs
    assert calls <= 2 * len(history.windows) + 5
