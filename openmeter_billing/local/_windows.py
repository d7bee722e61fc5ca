"""Calendar windows for balance history: MINUTE, HOUR, DAY or MONTH, aligned in a time zone.

DAY and MONTH windows follow the wall clock of ``tz`` (a DST day is 23 or 25 hours long), while
MINUTE and HOUR windows are fixed lengths of real time, so no hour is skipped or counted twice.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import Literal

from openmeter_billing._exceptions import InvalidInputError

__all__ = ["WINDOW_SIZES", "WindowSize", "windows_covering"]

WindowSize = Literal["MINUTE", "HOUR", "DAY", "MONTH"]
WINDOW_SIZES: tuple[WindowSize, ...] = ("MINUTE", "HOUR", "DAY", "MONTH")


def _local_midnight(day: date, tz: tzinfo) -> datetime:
    """Midnight of ``day`` in ``tz``, as a UTC instant."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(timezone.utc)


def _floor(t: datetime, size: str, tz: tzinfo) -> datetime:
    """Start of the window containing ``t``, as a UTC instant."""
    local = t.astimezone(tz)
    if size == "MINUTE":
        return local.replace(second=0, microsecond=0).astimezone(timezone.utc)
    if size == "HOUR":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(timezone.utc)
    if size == "DAY":
        return _local_midnight(local.date(), tz)
    return _local_midnight(local.date().replace(day=1), tz)


def _step(start: datetime, size: str, tz: tzinfo) -> datetime:
    """End of the window starting at ``start`` (a UTC instant)."""
    if size == "MINUTE":
        return start + timedelta(minutes=1)
    if size == "HOUR":
        return start + timedelta(hours=1)
    day = start.astimezone(tz).date()
    if size == "DAY":
        return _local_midnight(day + timedelta(days=1), tz)
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return _local_midnight(date(year, month, 1), tz)


def windows_covering(
    start: datetime, end: datetime, size: str, tz: tzinfo
) -> list[tuple[datetime, datetime]]:
    """The ``[from, to)`` windows of ``size`` in ``tz`` that overlap ``[start, end)``, ascending.

    The first and last windows may stick out of the range; they are reported whole, like
    OpenMeter's windowed meter queries. Each bound is returned in ``tz``.

    Raises:
        InvalidInputError: for a window size other than MINUTE, HOUR, DAY or MONTH.
    """
    if size not in WINDOW_SIZES:
        raise InvalidInputError(
            f"unknown window size {size!r}",
            field="windowSize",
            hint="use one of MINUTE, HOUR, DAY, MONTH",
        )
    found: list[tuple[datetime, datetime]] = []
    current = _floor(start, size, tz)
    while current < end:
        following = _step(current, size, tz)
        found.append((current.astimezone(tz), following.astimezone(tz)))
        current = following
    return found
