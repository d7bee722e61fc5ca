"""Time arithmetic of Local OpenMeter: minutes, intervals, recurrences (clamping), expiries (overflow)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local._time import (
    Interval,
    Recurrence,
    add_expiration,
    ceil_minute,
    interval_min_length,
    interval_to_enum,
    interval_to_iso,
    parse_interval,
    truncate_minute,
)

UTC = timezone.utc


def t(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_truncate_minute_drops_seconds_and_keeps_utc() -> None:
    value = datetime(2025, 3, 4, 10, 5, 59, 999_999, tzinfo=UTC)
    assert truncate_minute(value) == t(2025, 3, 4, 10, 5)
    assert truncate_minute(value).tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (t(2025, 3, 4, 10, 5, 1), t(2025, 3, 4, 10, 6)),
        (datetime(2025, 3, 4, 10, 5, 0, 1, tzinfo=UTC), t(2025, 3, 4, 10, 6)),
        (t(2025, 3, 4, 10, 5), t(2025, 3, 4, 10, 5)),
        (t(2025, 12, 31, 23, 59, 30), t(2026, 1, 1)),
    ],
)
def test_ceil_minute_rounds_partial_minutes_up(value: datetime, expected: datetime) -> None:
    assert ceil_minute(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DAY", Interval(days=1)),
        ("week", Interval(days=7)),
        ("Month", Interval(months=1)),
        ("YEAR", Interval(months=12)),
        ("P1M", Interval(months=1)),
        ("P1Y2M", Interval(months=14)),
        ("P2W", Interval(days=14)),
        ("P1DT12H", Interval(days=1, seconds=43_200)),
        ("PT6H", Interval(seconds=21_600)),
        ("PT90M", Interval(seconds=5_400)),
        ("pt1h", Interval(seconds=3_600)),
    ],
)
def test_parse_interval_accepts_enums_and_iso_durations(text: str, expected: Interval) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize("text", ["", "P", "PT", "P1DT", "HOURLY", "P1.5M", "1M", "P0D", "-P1D"])
def test_parse_interval_rejects_anything_else_naming_the_field(text: str) -> None:
    with pytest.raises(ValueError, match="interval") as info:
        parse_interval(text)
    assert isinstance(info.value, InvalidInputError)
    assert info.value.field == "interval"


@pytest.mark.parametrize(
    ("interval", "iso", "enum"),
    [
        (Interval(months=1), "P1M", "MONTH"),
        (Interval(months=12), "P1Y", "YEAR"),
        (Interval(months=14), "P1Y2M", None),
        (Interval(days=7), "P1W", "WEEK"),
        (Interval(days=1), "P1D", "DAY"),
        (Interval(days=8), "P8D", None),
        (Interval(seconds=3_600), "PT1H", None),
        (Interval(days=1, seconds=5_430), "P1DT1H30M30S", None),
    ],
)
def test_interval_renders_as_iso_and_enum(interval: Interval, iso: str, enum: str | None) -> None:
    assert interval_to_iso(interval) == iso
    assert interval_to_enum(interval) == enum
    assert parse_interval(iso) == interval


@pytest.mark.parametrize(
    ("text", "minimum"),
    [
        ("MONTH", timedelta(days=28)),
        ("P1Y", timedelta(days=336)),
        ("P1DT1H", timedelta(hours=25)),
        ("PT59M", timedelta(minutes=59)),
    ],
)
def test_interval_min_length_counts_months_as_28_days(text: str, minimum: timedelta) -> None:
    assert interval_min_length(parse_interval(text)) == minimum


@pytest.mark.parametrize(
    ("start", "duration", "count", "expected"),
    [
        (t(2025, 1, 31), "MONTH", 1, t(2025, 3, 3)),  # Feb 31 overflows by 3 days
        (t(2024, 1, 31), "MONTH", 1, t(2024, 3, 2)),  # leap year: by 2 days
        (t(2025, 1, 31), "MONTH", 2, t(2025, 3, 31)),
        (t(2025, 8, 31), "month", 1, t(2025, 10, 1)),
        (t(2024, 2, 29), "YEAR", 1, t(2025, 3, 1)),
        (t(2025, 1, 1, 23, 15), "HOUR", 25, t(2025, 1, 3, 0, 15)),
        (t(2025, 12, 30), "DAY", 3, t(2026, 1, 2)),
        (t(2025, 1, 1), "WEEK", 2, t(2025, 1, 15)),
    ],
)
def test_add_expiration_follows_go_add_date_overflow(
    start: datetime, duration: str, count: int, expected: datetime
) -> None:
    assert add_expiration(start, duration, count) == expected


@pytest.mark.parametrize(
    ("duration", "count", "field"),
    [("FORTNIGHT", 1, "expiration.duration"), ("DAY", 0, "expiration.count")],
)
def test_add_expiration_rejects_bad_input(duration: str, count: int, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        add_expiration(t(2025, 1, 1), duration, count)
    assert info.value.field == field


def test_monthly_recurrence_from_jan_31_clamps_each_month_from_the_anchor() -> None:
    rec = Recurrence(t(2024, 1, 31, 9, 30), parse_interval("MONTH"))
    assert [rec.at(n) for n in range(-2, 4)] == [
        t(2023, 11, 30, 9, 30),
        t(2023, 12, 31, 9, 30),
        t(2024, 1, 31, 9, 30),
        t(2024, 2, 29, 9, 30),
        t(2024, 3, 31, 9, 30),  # not Mar 29: computed from the anchor, not from Feb 29
        t(2024, 4, 30, 9, 30),
    ]
    assert Recurrence(t(2025, 1, 31), parse_interval("P1M")).at(1) == t(2025, 2, 28)


@pytest.mark.parametrize(
    ("probe", "last", "next_"),
    [
        (t(2024, 2, 29, 9, 30), t(2024, 2, 29, 9, 30), t(2024, 3, 31, 9, 30)),
        (t(2024, 2, 29, 9, 29), t(2024, 1, 31, 9, 30), t(2024, 2, 29, 9, 30)),
        (t(2023, 6, 1), t(2023, 5, 31, 9, 30), t(2023, 6, 30, 9, 30)),
        (t(2030, 1, 1), t(2029, 12, 31, 9, 30), t(2030, 1, 31, 9, 30)),
    ],
)
def test_recurrence_finds_the_period_around_any_time(
    probe: datetime, last: datetime, next_: datetime
) -> None:
    rec = Recurrence(t(2024, 1, 31, 9, 30), parse_interval("MONTH"))
    assert rec.last_at_or_before(probe) == last
    assert rec.next_after(probe) == next_
    assert rec.last_at_or_before(probe) <= probe < rec.next_after(probe)


def test_recurrence_between_excludes_start_and_includes_end() -> None:
    rec = Recurrence(t(2025, 1, 1), parse_interval("PT6H"))
    assert rec.between(t(2025, 1, 1), t(2025, 1, 2)) == [
        t(2025, 1, 1, 6),
        t(2025, 1, 1, 12),
        t(2025, 1, 1, 18),
        t(2025, 1, 2),
    ]
    assert rec.between(t(2025, 1, 1, 1), t(2025, 1, 1, 5)) == []
    assert rec.first_at_or_after(t(2025, 1, 1, 6)) == t(2025, 1, 1, 6)
    assert rec.first_at_or_after(t(2025, 1, 1, 6, 1)) == t(2025, 1, 1, 12)


def test_recurrence_matches_stepwise_search_for_mixed_intervals() -> None:
    # P1M1D mixes clamped months with days; the index guess must still land exactly.
    rec = Recurrence(t(2024, 1, 31), parse_interval("P1M1D"))
    boundaries = [rec.at(n) for n in range(-30, 60)]
    assert boundaries == sorted(boundaries)
    probe = t(2023, 1, 1)
    while probe < t(2027, 1, 1):
        expected = max(b for b in boundaries if b <= probe)
        assert rec.last_at_or_before(probe) == expected
        probe += timedelta(days=5, hours=7)


def test_recurrence_rejects_a_zero_interval() -> None:
    with pytest.raises(InvalidInputError):
        Recurrence(t(2025, 1, 1), Interval())
