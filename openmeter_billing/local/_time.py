"""Time arithmetic of Local OpenMeter: minute resolution, calendar intervals, recurrences, expiries.

OpenMeter works at one-minute resolution and uses two different kinds of month arithmetic, and the
emulator has to reproduce both exactly or balances drift by a day at month ends:

* Recurrences (usage periods, recurring grants) are ``anchor + n x interval`` computed from the
  anchor every time, with the day CLAMPED to the month's end: Jan 31 + 1 month is Feb 28 (29 in a
  leap year) and Jan 31 + 2 months is Mar 31, never Mar 28.
* Grant expiries use Go's ``time.AddDate``, which lets the day OVERFLOW into the next month:
  Jan 31 + 1 month is Mar 3 (Mar 2 in a leap year).
"""

from __future__ import annotations

import calendar
import functools
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from openmeter_billing._exceptions import InvalidInputError

__all__ = [
    "Interval",
    "Recurrence",
    "add_expiration",
    "ceil_minute",
    "interval_min_length",
    "interval_to_enum",
    "interval_to_iso",
    "parse_interval",
    "require_aware",
    "truncate_minute",
]

_MINUTE = timedelta(minutes=1)
# A Gregorian year averages 365.2425 days; only used to guess how many steps to jump.
_AVG_MONTH_SECONDS = 365.2425 / 12 * 86400


def require_aware(value: datetime, field: str) -> datetime:
    """``value`` in UTC; naive datetimes are refused (comparing them with UTC is meaningless)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(
            f"{value.isoformat()} has no time zone",
            field=field,
            hint="pass an aware datetime, for example datetime.now(timezone.utc)",
        )
    return value.astimezone(timezone.utc)


def truncate_minute(t: datetime) -> datetime:
    """Drop seconds and microseconds, keeping the time zone.

    OpenMeter stores grant and reset times at minute resolution, so every instant the engine
    compares goes through this first.
    """
    return t.replace(second=0, microsecond=0)


def ceil_minute(t: datetime) -> datetime:
    """Round a sub-minute time UP to the next whole minute; whole minutes are returned unchanged.

    A balance read at 10:05:30 includes the usage of the partial minute, so OpenMeter evaluates it
    at 10:06:00.
    """
    truncated = truncate_minute(t)
    return truncated if truncated == t else truncated + _MINUTE


@dataclass(frozen=True)
class Interval:
    """A calendar-aware length: whole months (years are 12 months), days and seconds.

    Months and days are kept apart from seconds because their real length depends on where in the
    calendar they are added; ``timedelta`` cannot express "one month".
    """

    months: int = 0
    days: int = 0
    seconds: int = 0

    def is_positive(self) -> bool:
        """Whether adding this interval moves time forward (every part >= 0, one part > 0)."""
        parts = (self.months, self.days, self.seconds)
        return all(p >= 0 for p in parts) and any(p > 0 for p in parts)


_ENUM_INTERVALS = {
    "DAY": Interval(days=1),
    "WEEK": Interval(days=7),
    "MONTH": Interval(months=1),
    "YEAR": Interval(months=12),
}

_ISO_DURATION = re.compile(
    r"^P(?:(?P<y>\d+)Y)?(?:(?P<mo>\d+)M)?(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?"
    r"(?:T(?:(?P<h>\d+)H)?(?:(?P<mi>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)


def parse_interval(value: str) -> Interval:
    """Parse an OpenMeter interval: ``DAY|WEEK|MONTH|YEAR`` (any case) or an ISO-8601 duration.

    Examples: ``"month"`` -> ``Interval(months=1)``, ``"P1Y2M"`` -> ``Interval(months=14)``,
    ``"PT6H"`` -> ``Interval(seconds=21600)``.

    Raises:
        InvalidInputError: (a ``ValueError``) for anything else, including fractional parts and
            zero-length durations, which cannot recur.
    """
    text = str(value).strip().upper()
    if text in _ENUM_INTERVALS:
        return _ENUM_INTERVALS[text]
    match = _ISO_DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise InvalidInputError(
            f"{value!r} is not an interval",
            field="interval",
            hint='use DAY, WEEK, MONTH, YEAR or a whole-number ISO-8601 duration like "P1M"',
        )
    part = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    interval = Interval(
        months=part["y"] * 12 + part["mo"],
        days=part["w"] * 7 + part["d"],
        seconds=part["h"] * 3600 + part["mi"] * 60 + part["s"],
    )
    if not interval.is_positive():
        raise InvalidInputError(
            f"{value!r} has zero length", field="interval", hint="use a positive duration"
        )
    return interval


def interval_to_iso(interval: Interval) -> str:
    """Render an interval as ISO-8601: ``"P1M"``, ``"P1Y2M"``, ``"P1W"`` (7 days), ``"PT1H"``.

    Responses carry ``intervalISO`` always, so every interval needs a canonical spelling.
    """
    years, months = divmod(interval.months, 12)
    hours, rest = divmod(interval.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if interval.days and interval.days % 7 == 0 and not (interval.months or interval.seconds):
        return f"P{interval.days // 7}W"
    date_part = "".join(
        f"{n}{unit}" for n, unit in ((years, "Y"), (months, "M"), (interval.days, "D")) if n
    )
    time_part = "".join(
        f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n
    )
    if not date_part and not time_part:
        return "PT0S"
    return "P" + date_part + (f"T{time_part}" if time_part else "")


def interval_to_enum(interval: Interval) -> str | None:
    """The enum name (``DAY``, ``WEEK``, ``MONTH``, ``YEAR``) the interval equals, else None.

    OpenMeter answers ``usagePeriod.interval`` with the enum when it maps cleanly.
    """
    for name, candidate in _ENUM_INTERVALS.items():
        if candidate == interval:
            return name
    return None


def interval_min_length(interval: Interval) -> timedelta:
    """The shortest real time the interval can span (a month counts as 28 days).

    OpenMeter rejects usage periods shorter than one hour; checking the shortest case is what makes
    that rule hold for every period, not just the average one.
    """
    return timedelta(days=interval.months * 28 + interval.days, seconds=interval.seconds)


def _add_months_clamped(t: datetime, months: int) -> datetime:
    """Add months keeping the day inside the target month (Jan 31 + 1 -> Feb 28/29)."""
    index = t.year * 12 + (t.month - 1) + months
    year, month = divmod(index, 12)
    day = min(t.day, calendar.monthrange(year, month + 1)[1])
    return t.replace(year=year, month=month + 1, day=day)


def _add_months_overflowing(t: datetime, months: int) -> datetime:
    """Add months the way Go's ``AddDate`` does: a too-large day spills into the next month."""
    index = t.year * 12 + (t.month - 1) + months
    year, month = divmod(index, 12)
    first = t.replace(year=year, month=month + 1, day=1)
    return first + timedelta(days=t.day - 1)


def add_interval(t: datetime, interval: Interval, times: int = 1) -> datetime:
    """Add ``times`` x ``interval`` to ``t`` in one step, clamping months (recurrence arithmetic).

    Computing ``n`` steps at once (instead of stepping ``n`` times) is what keeps Jan 31 + 2 months
    on Mar 31: stepping would clamp to Feb 28 first and then stay on the 28th.
    """
    # Fixed-length intervals skip the calendar work: hourly usage periods hit this path hard.
    shifted = _add_months_clamped(t, interval.months * times) if interval.months else t
    return shifted + timedelta(days=interval.days * times, seconds=interval.seconds * times)


_EXPIRATION_DURATIONS = ("HOUR", "DAY", "WEEK", "MONTH", "YEAR")


def add_expiration(t: datetime, duration: str, count: int) -> datetime:
    """The expiry of a grant effective at ``t`` with ``expiration: {duration, count}``.

    Follows Go's ``time.AddDate`` like OpenMeter does, so month ends overflow:
    ``add_expiration(Jan 31, "MONTH", 1)`` is Mar 3 (Mar 2 in a leap year). HOUR adds whole hours.

    Raises:
        InvalidInputError: for an unknown duration or a count below 1.
    """
    unit = str(duration).strip().upper()
    if unit not in _EXPIRATION_DURATIONS:
        raise InvalidInputError(
            f"unknown expiration duration {duration!r}",
            field="expiration.duration",
            hint="use one of HOUR, DAY, WEEK, MONTH, YEAR",
        )
    if isinstance(count, bool) or count < 1:
        raise InvalidInputError(
            f"expiration count must be a whole number >= 1, got {count!r}",
            field="expiration.count",
            hint="pass 1..1000",
        )
    if unit == "HOUR":
        return t + timedelta(hours=count)
    if unit in ("DAY", "WEEK"):
        return t + timedelta(days=count * (7 if unit == "WEEK" else 1))
    return _add_months_overflowing(t, count * (12 if unit == "YEAR" else 1))


@functools.lru_cache(maxsize=65536)
def _boundary(anchor: datetime, interval: Interval, n: int) -> datetime:
    """``anchor + n x interval``, memoised: every balance read walks the same boundaries."""
    return add_interval(anchor, interval, n)


@dataclass(frozen=True)
class Recurrence:
    """Boundaries ``anchor + n x interval`` for every integer ``n`` (negative ones included).

    Each boundary is computed from the anchor, never from the previous boundary, so a monthly
    recurrence anchored on Jan 31 falls on Feb 28/29, Mar 31, Apr 30, ... like OpenMeter's.
    """

    anchor: datetime
    interval: Interval

    def __post_init__(self) -> None:
        if not self.interval.is_positive():
            raise InvalidInputError(
                f"recurrence interval must be positive, got {self.interval!r}",
                field="interval",
                hint='use for example "P1M" or "DAY"',
            )

    def at(self, n: int) -> datetime:
        """The ``n``-th boundary; ``at(0)`` is the anchor."""
        return _boundary(self.anchor, self.interval, n)

    def _approx_index(self, t: datetime) -> int:
        """A guess of the index of the last boundary <= t, usually exact or off by one."""
        iv = self.interval
        seconds = iv.months * _AVG_MONTH_SECONDS + iv.days * 86400 + iv.seconds
        return math.floor((t - self.anchor).total_seconds() / seconds)

    def index_at_or_before(self, t: datetime) -> int:
        """The index ``n`` of the largest boundary ``<= t``."""
        n = self._approx_index(t)
        while self.at(n) > t:
            n -= 1
        while self.at(n + 1) <= t:
            n += 1
        return n

    def last_at_or_before(self, t: datetime) -> datetime:
        """The largest boundary ``<= t``: the start of the period containing ``t``."""
        return self.at(self.index_at_or_before(t))

    def next_after(self, t: datetime) -> datetime:
        """The smallest boundary strictly after ``t``: the end of the period containing ``t``."""
        return self.at(self.index_at_or_before(t) + 1)

    def first_at_or_after(self, t: datetime) -> datetime:
        """The smallest boundary ``>= t``."""
        n = self.index_at_or_before(t)
        start = self.at(n)
        return start if start == t else self.at(n + 1)

    def between(self, start: datetime, end: datetime) -> list[datetime]:
        """Boundaries ``b`` with ``start < b <= end``, ascending (empty when ``end <= start``)."""
        found: list[datetime] = []
        n = self.index_at_or_before(start) + 1
        boundary = self.at(n)
        while boundary <= end:
            found.append(boundary)
            n += 1
            boundary = self.at(n)
        return found
