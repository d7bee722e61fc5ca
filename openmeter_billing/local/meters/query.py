"""Local OpenMeter meter queries: ``GET/POST /api/v1/meters/{meter}/query`` over indexed events.

Kept apart from ``index`` (which stores events and answers the entitlement engine's plain range
sums) because OpenMeter's query has its own rules: windows aligned in a time zone, grouping by
subject, customer and group-by keys, which empty windows and groups appear as rows, and which
parameters it refuses. :class:`~openmeter_billing.local.meters.index.MeterIndex` owns the events and
delegates to :func:`run_query`, handing it a way to select series, so this module never imports
the index.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local._windows import WINDOW_SIZES, windows_covering
from openmeter_billing.local.meters.values import (
    EPOCH,
    RESERVED_GROUP_BY_KEYS,
    MeterSpec,
    Part,
    Series,
    aggregate,
    bound,
    micros,
)

__all__ = ["QueryRow", "SeriesSelector", "check_group_filters", "run_query"]

_MINUTE = timedelta(minutes=1)

SeriesSelector = Callable[[Collection[str] | None, Mapping[str, str]], list[Series]]
"""Series of the given subjects (all when None) whose group values equal the filters."""

# (window start, window end, subject, customer id, *group-by values)
_GroupKey = tuple[Any, ...]


@dataclass(frozen=True)
class QueryRow:
    """One row of a meter query: the value of one window for one group (``MeterQueryRow``)."""

    value: float
    window_start: datetime
    window_end: datetime
    subject: str | None
    customer_id: str | None
    group_by: dict[str, str | None]


def check_group_filters(spec: MeterSpec, filters: Mapping[str, str], name: str) -> None:
    """Refuse filters on keys the meter does not group by (they could never match).

    Raises:
        InvalidInputError: naming ``name`` (the caller's parameter) and the unknown key.
    """
    for key in filters:
        if key not in spec.group_by:
            raise InvalidInputError(
                f"meter {spec.slug!r} has no group-by key {key!r}",
                field=name,
                hint=f"filter on one of {sorted(spec.group_by)}",
            )


def run_query(
    spec: MeterSpec,
    select: SeriesSelector,
    *,
    start: datetime | None,
    end: datetime | None,
    window_size: str | None,
    tz: tzinfo,
    subjects: Sequence[str] | None,
    customers: Mapping[str, Collection[str]] | None,
    group_by: Sequence[str],
    group_filters: Mapping[str, str] | None,
) -> list[QueryRow]:
    """The rows of a meter query; see :meth:`MeterIndex.query` for the rules.

    Raises:
        InvalidInputError: naming ``from``, ``windowSize``, ``groupBy`` or ``filterGroupBy``.
    """
    _check_query(spec, start, end, window_size, group_by, customers)
    filters = dict(group_filters or {})
    check_group_filters(spec, filters, "filterGroupBy")
    grouping = _Grouping(
        by_subject=subjects is not None or "subject" in group_by,
        owners=None if customers is None else _owners(customers),
        keys=tuple(dict.fromkeys(k for k in group_by if k in spec.group_by)),
    )
    low = None if start is None else bound(start, "from")
    high = None if end is None else bound(end, "to")
    buckets: dict[_GroupKey, list[Part]] = {}
    for series in select(subjects, filters):
        group = grouping.key_of(series)
        if group is None:
            continue
        lo, hi = series.span(low, high)
        if window_size is None:
            buckets.setdefault((None, None, *group), []).append((series, lo, hi))
            continue
        for window, part in _split_by_window(series, lo, hi, window_size, tz):
            buckets.setdefault((*window, *group), []).append(part)
    rows = [
        row
        for key, parts in buckets.items()
        if (row := _row(spec, key, parts, grouping, start, end)) is not None
    ]
    if not rows and window_size is None and grouping.is_empty():
        rows = _empty_total(spec, start, end)
    rows.sort(key=_row_order)
    return rows


def _check_query(
    spec: MeterSpec,
    start: datetime | None,
    end: datetime | None,
    window_size: str | None,
    group_by: Sequence[str],
    customers: Mapping[str, Collection[str]] | None,
) -> None:
    if start is not None and end is not None and micros(start, "from") >= micros(end, "to"):
        raise InvalidInputError(
            f"from ({start.isoformat()}) must be before to ({end.isoformat()})",
            field="from",
            hint="pass a from earlier than to, or leave one out",
        )
    if window_size is not None and window_size not in WINDOW_SIZES:
        raise InvalidInputError(
            f"unknown window size {window_size!r}",
            field="windowSize",
            hint=f"use one of {', '.join(WINDOW_SIZES)} or leave it out for one total row",
        )
    allowed = (*RESERVED_GROUP_BY_KEYS, *sorted(spec.group_by))
    for key in group_by:
        if key not in allowed:
            raise InvalidInputError(
                f"meter {spec.slug!r} cannot group by {key!r}",
                field="groupBy",
                hint=f"use one of {', '.join(allowed)}",
            )
    if "customer_id" in group_by and customers is None:
        raise InvalidInputError(
            "grouping by customer_id needs a customer filter",
            field="groupBy",
            hint="pass filterCustomerId with the customers to group by",
        )


@dataclass(frozen=True)
class _Grouping:
    """How a query splits events into rows besides windows."""

    by_subject: bool
    owners: Mapping[str, str] | None  # subject -> customer id, when grouping by customer
    keys: tuple[str, ...]  # the meter's own group-by keys asked for

    def is_empty(self) -> bool:
        return not (self.by_subject or self.owners is not None or self.keys)

    def key_of(self, series: Series) -> tuple[str | None, ...] | None:
        """The row group of a series; None when no queried customer owns its subject."""
        customer_id = None
        if self.owners is not None:
            customer_id = self.owners.get(series.subject)
            if customer_id is None:
                return None
        subject = series.subject if self.by_subject else None
        return (subject, customer_id, *(series.groups[k] for k in self.keys))


def _owners(customers: Mapping[str, Collection[str]]) -> dict[str, str]:
    """Subject -> customer id; a subject claimed twice goes to the first customer listed."""
    owners: dict[str, str] = {}
    for customer_id, subject_keys in customers.items():
        for subject in subject_keys:
            owners.setdefault(subject, customer_id)
    return owners


def _row(
    spec: MeterSpec,
    key: _GroupKey,
    parts: list[Part],
    grouping: _Grouping,
    start: datetime | None,
    end: datetime | None,
) -> QueryRow | None:
    """The row of one bucket, or None when the bucket has no events in range."""
    parts = [p for p in parts if p[2] > p[1]]
    value = aggregate(spec.aggregation, parts) if parts else None
    if value is None:
        return None
    window_start, window_end, subject, customer_id, *values = key
    if window_start is None or window_end is None:
        # One total row: OpenMeter reports the requested range, else the events' extent.
        first = min(s.times[lo] for s, lo, _ in parts)
        last = max(s.times[hi - 1] for s, _, hi in parts)
        window_start = start or _minute_floor(first)
        window_end = end or _minute_floor(last) + _MINUTE
    return QueryRow(
        value=value,
        window_start=window_start,
        window_end=window_end,
        subject=subject,
        customer_id=customer_id,
        group_by=dict(zip(grouping.keys, values, strict=True)),
    )


def _empty_total(spec: MeterSpec, start: datetime | None, end: datetime | None) -> list[QueryRow]:
    """OpenMeter's answer for an ungrouped total over no events.

    Its SQL aggregates without GROUP BY, which still yields one row: count-like
    aggregations give 0 (over the requested range, or the Unix epoch's first minute when
    none was given); the others give NULL, and OpenMeter drops NULL rows.
    """
    if spec.aggregation not in ("COUNT", "UNIQUE_COUNT"):
        return []
    return [
        QueryRow(
            value=0.0,
            window_start=start or EPOCH,
            window_end=end or EPOCH + _MINUTE,
            subject=None,
            customer_id=None,
            group_by={},
        )
    ]


def _minute_floor(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us - us % 60_000_000)


def _split_by_window(
    series: Series, lo: int, hi: int, window_size: str, tz: tzinfo
) -> list[tuple[tuple[datetime, datetime], Part]]:
    """Slices of ``series[lo:hi]`` per window, found by bisecting each window's end."""
    found: list[tuple[tuple[datetime, datetime], Part]] = []
    i = lo
    while i < hi:
        minute = _minute_floor(series.times[i])
        window = windows_covering(minute, minute + _MINUTE, window_size, tz)[0]
        j = bisect.bisect_left(series.times, micros(window[1], "windowEnd"), i, hi)
        found.append((window, (series, i, j)))
        i = j
    return found


def _row_order(row: QueryRow) -> tuple[Any, ...]:
    """Rows by window, then group, so answers are deterministic."""
    groups = tuple(sorted((k, v or "") for k, v in row.group_by.items()))
    return (row.window_start, row.subject or "", row.customer_id or "", groups)
