"""Local OpenMeter meter values: valid meter definitions, what an event contributes, and sums of it.

This is the bottom layer of the emulator's meters (``index`` indexes events with it and
``query`` answers queries with it), kept apart so both can share it without importing each
other. Pure code: no HTTP, no state store, no clock. It reproduces OpenMeter's rules
(``openmeter/meter`` and ``openmeter/streaming/clickhouse``):

* an event matches a meter when its ``type`` equals ``eventType`` and its time is at or after
  ``eventFrom``; its value is read from ``data`` with the ``valueProperty`` JSONPath;
* SUM/AVG/MIN/MAX/LATEST need a number or a numeric string ("850", "1.5"), never a boolean;
  UNIQUE_COUNT counts distinct values as text; COUNT counts events and reads no value;
* an event whose value cannot be read gets a validation error and is not counted;
* usage is stored per minute: an event at 10:00:30 counts in ``[10:00, 10:01)``.

Values are kept in :class:`Series` (one time-sorted run of events) with exact range sums
(:class:`RangeSums`), so :func:`aggregate` over a range is a few bisects instead of a scan, and an
event older than the newest one costs no rebuild.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal
from typing import Any, Literal

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local._time import ceil_minute
from openmeter_billing.local.meters.jsonpath import (
    MISSING,
    JsonPath,
    JsonPathError,
    json_value_text,
    parse_json_path,
)
from openmeter_billing.local.meters.range_sums import RangeSums

__all__ = [
    "AGGREGATIONS",
    "EPOCH",
    "RESERVED_GROUP_BY_KEYS",
    "Aggregation",
    "EventRecord",
    "MeterSpec",
    "Part",
    "Series",
    "Unmeterable",
    "aggregate",
    "bound",
    "cached_path",
    "event_problem",
    "meter_problems",
    "micros",
    "read_value",
]

Aggregation = Literal["SUM", "COUNT", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST"]
AGGREGATIONS: tuple[Aggregation, ...] = (
    "SUM",
    "COUNT",
    "UNIQUE_COUNT",
    "AVG",
    "MIN",
    "MAX",
    "LATEST",
)
RESERVED_GROUP_BY_KEYS = ("subject", "customer_id")
"""Meter queries group by these on their own, so a meter may not define them."""

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
"""Zero of the µs timeline series store times on."""

# OpenMeter's rule for group-by keys (openmeter/meter/meter.go).
_GROUP_BY_KEY = re.compile(r"^[a-zA-Z_][0-9a-zA-Z_]*$")
# What Go's strconv.ParseFloat accepts in practice for decimal text.
_DECIMAL_TEXT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_MICROSECOND = timedelta(microseconds=1)
_FLOAT64_MAX = Decimal("1.7976931348623157e308")
# Wide enough that sums of realistic meter values stay exact: 0.1 + 0.2 is 0.3 here.
_EXACT = Context(prec=60)
_ONE = Decimal(1)


@dataclass(frozen=True)
class EventRecord:
    """One stored CloudEvent, as the meter sees it. ``time`` is an aware UTC datetime."""

    id: str
    source: str
    type: str
    subject: str
    time: datetime
    data: Mapping[str, Any] | None


@dataclass(frozen=True)
class MeterSpec:
    """What a meter matches and how it aggregates: the fields of OpenMeter's ``MeterCreate``."""

    slug: str
    event_type: str
    aggregation: Aggregation
    value_property: str | None
    group_by: Mapping[str, str]
    event_from: datetime | None


@functools.lru_cache(maxsize=1024)
def cached_path(expr: str) -> JsonPath:
    """Parsed JSONPaths, cached: every ingested event is checked against every meter."""
    return parse_json_path(expr)


def _path_problem(expr: str) -> str | None:
    try:
        cached_path(expr)
    except JsonPathError as exc:
        return str(exc)
    return None


def _value_property_problems(spec: MeterSpec) -> list[tuple[str, str]]:
    vp = spec.value_property
    if spec.aggregation == "COUNT":
        if vp is None:
            return []
        # OpenMeter refuses this too: "meter value property is not allowed when the
        # aggregation is count".
        return [("valueProperty", "is not allowed with COUNT, which counts events; remove it")]
    if not vp:
        return [
            (
                "valueProperty",
                f"is required for {spec.aggregation}: give the JSONPath of the value in the "
                'event data, for example "$.tokens"',
            )
        ]
    problem = _path_problem(vp)
    return [("valueProperty", problem)] if problem else []


def _group_by_problems(spec: MeterSpec) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for key, expr in spec.group_by.items():
        where = f"groupBy.{key}"
        if key in RESERVED_GROUP_BY_KEYS:
            problems.append(
                (
                    where,
                    f"{key!r} is reserved (queries group by subject and customer_id "
                    "themselves); choose another key",
                )
            )
        elif not _GROUP_BY_KEY.match(key):
            problems.append(
                (
                    where,
                    f"key {key!r} may only hold letters, digits and underscores and must "
                    'not start with a digit, for example "model_name"',
                )
            )
        problem = _path_problem(expr)
        if problem:
            problems.append((where, problem))
        elif expr == spec.value_property:
            problems.append((where, f"{expr!r} is the valueProperty; group by another field"))
    return problems


def meter_problems(spec: MeterSpec) -> list[tuple[str, str]]:
    """Every ``(field, message)`` problem of a meter definition; an empty list means valid.

    All problems are reported at once so a caller can fix a meter in one round trip.
    """
    problems: list[tuple[str, str]] = []
    if spec.aggregation not in AGGREGATIONS:
        problems.append(
            ("aggregation", f"{spec.aggregation!r} is not one of {', '.join(AGGREGATIONS)}")
        )
    if not spec.event_type:
        problems.append(("eventType", 'must not be empty, for example "api_request"'))
    if spec.event_from is not None and spec.event_from.tzinfo is None:
        problems.append(("eventFrom", f"{spec.event_from!r} has no time zone; pass a UTC time"))
    problems.extend(_value_property_problems(spec))
    problems.extend(_group_by_problems(spec))
    return problems


class Unmeterable(Exception):
    """Internal: why an event's value cannot be metered (OpenMeter's wording)."""


def _go_type(value: object) -> str:
    """Go's name for a decoded JSON value's type, as OpenMeter's error messages print it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, (list, tuple)):
        return "[]interface {}"
    return type(value).__name__


def _number(raw: object) -> Decimal:
    """A meter number from a JSON number or numeric string; Decimal keeps sums exact."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise Unmeterable(f"unsupported value property type: {_go_type(raw)}")
    if isinstance(raw, int):
        number = Decimal(raw)
    elif isinstance(raw, float):
        # repr gives the decimal text the sender most likely wrote ("0.1", not 0.1000000000055...).
        number = Decimal(repr(raw))
    elif _DECIMAL_TEXT.match(raw):
        number = Decimal(raw)
        if abs(number) > _FLOAT64_MAX:
            raise Unmeterable(f"value cannot be parsed as float64: {raw}")
    else:
        word = raw.strip().lstrip("+-").lower()
        if word in ("inf", "infinity"):
            raise Unmeterable("value cannot be infinity")
        if word == "nan":
            raise Unmeterable("value cannot be NaN")
        raise Unmeterable(f"value cannot be parsed as float64: {raw}")
    if number.is_nan():
        raise Unmeterable("value cannot be NaN")
    if number.is_infinite():
        raise Unmeterable("value cannot be infinity")
    return number


def read_value(spec: MeterSpec, data: Mapping[str, Any] | None) -> Decimal | str:
    """The value an event contributes: a Decimal, or text for UNIQUE_COUNT.

    Raises:
        Unmeterable: when the value is missing, null or of the wrong kind.
    """
    if spec.aggregation == "COUNT":
        return _ONE
    if data is None:
        raise Unmeterable("null and missing value property")
    expr = spec.value_property or ""
    raw = cached_path(expr).find(data)
    if raw is MISSING:
        raise Unmeterable(f'missing value property: "{expr}"')
    if raw is None:
        raise Unmeterable("value cannot be null")
    if spec.aggregation == "UNIQUE_COUNT":
        text = json_value_text(raw)
        if text is None:
            raise Unmeterable(
                f"unsupported value property type: {_go_type(raw)} (UNIQUE_COUNT needs a "
                "string or a number)"
            )
        return text
    return _number(raw)


def event_problem(spec: MeterSpec, event: EventRecord) -> str | None:
    """Why a matching event cannot be metered (its ``validationError``), else None.

    Events of another type, or before ``eventFrom``, are simply not this meter's: None.
    """
    if event.type != spec.event_type:
        return None
    try:
        read_value(spec, event.data)
    except Unmeterable as exc:
        return f"invalid event: {exc}"
    return None


def micros(t: datetime, name: str) -> int:
    """``t`` in µs since :data:`EPOCH`; series compare ints, not datetimes, for speed.

    Raises:
        InvalidInputError: naming ``name`` when ``t`` has no time zone.
    """
    if t.tzinfo is None:
        raise InvalidInputError(
            f"{t.isoformat()} has no time zone", field=name, hint="pass an aware UTC datetime"
        )
    return (t - EPOCH) // _MICROSECOND


def bound(t: datetime, name: str) -> int:
    """Range bound in µs: ``floor_minute(event) >= t`` iff ``event >= ceil_minute(t)``."""
    return micros(ceil_minute(t), name)


@dataclass(eq=False)
class Series:
    """Events of one subject and one combination of group-by values, sorted by time."""

    subject: str
    groups: dict[str, str]
    times: list[int] = field(default_factory=list)  # event time, µs since epoch, ascending
    seqs: list[int] = field(default_factory=list)  # arrival order: a later write wins a tie
    numbers: list[Decimal] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # UNIQUE_COUNT values
    _sums: RangeSums = field(default_factory=lambda: RangeSums(_EXACT))

    def insert(self, t: int, seq: int, value: Decimal | str) -> None:
        """Insert keeping time order; an event older than the newest costs no rebuild."""
        i = bisect.bisect_right(self.times, t)
        self.times.insert(i, t)
        self.seqs.insert(i, seq)
        if isinstance(value, str):
            self.texts.insert(i, value)
            return
        self.numbers.insert(i, value)
        self._sums.insert(t, value)

    def span(self, low: int | None, high: int | None) -> tuple[int, int]:
        """Index range of events with ``low <= time < high`` (None: unbounded)."""
        lo = 0 if low is None else bisect.bisect_left(self.times, low)
        hi = len(self.times) if high is None else bisect.bisect_left(self.times, high)
        return lo, max(lo, hi)

    def total(self, lo: int, hi: int) -> Decimal:
        """Exact sum of ``numbers[lo:hi]``, a range :meth:`span` (or a bisect_left) gave."""
        if hi <= lo:
            return Decimal(0)
        # A span holds every event of its time range, so the range is [times[lo], times[hi]).
        end = self.times[hi] if hi < len(self.times) else self.times[-1] + 1
        return self._sums.between(self.times[lo], end)


Part = tuple[Series, int, int]
"""A slice ``series[lo:hi]`` of events to aggregate."""


def aggregate(aggregation: str, parts: Sequence[Part]) -> float | None:
    """The aggregation over event slices; None when there is nothing to aggregate."""
    parts = [p for p in parts if p[2] > p[1]]
    count = sum(hi - lo for _, lo, hi in parts)
    if aggregation == "COUNT":
        return float(count)
    if aggregation == "UNIQUE_COUNT":
        return float(len({text for s, lo, hi in parts for text in s.texts[lo:hi]}))
    if count == 0:
        return None
    if aggregation in ("SUM", "AVG"):
        total = functools.reduce(_EXACT.add, (s.total(lo, hi) for s, lo, hi in parts))
        return float(total) if aggregation == "SUM" else float(total / count)
    if aggregation == "MIN":
        return float(min(min(s.numbers[lo:hi]) for s, lo, hi in parts))
    if aggregation == "MAX":
        return float(max(max(s.numbers[lo:hi]) for s, lo, hi in parts))
    # LATEST: the value of the last event by time (then by arrival).
    s, _, hi = max(parts, key=lambda p: (p[0].times[p[2] - 1], p[0].seqs[p[2] - 1]))
    return float(s.numbers[hi - 1])
