"""Local OpenMeter meters: the per-meter event index behind usage and meter queries.

:class:`MeterIndex` is what the emulator's state keeps per meter: it counts matching events as
they arrive (in any order) and answers "the meter value over ``[from, to)``" for the entitlement
engine, and meter queries for the routes. The rules for what an event contributes live in
``values`` and the query rules in ``query``; this module re-exports the names
callers import (``EventRecord``, ``MeterSpec``, ``QueryRow``, ``event_problem``,
``meter_problems`` ...) so they keep importing from one place.

Each meter keeps one time-sorted series per (subject, group-by values), with exact range sums
kept up to date as events arrive in any order, so a range aggregation is a few bisects per series
instead of a scan, and an event dated before the newest one costs no rebuild. MIN/MAX/UNIQUE_COUNT
scan their range (~3 ms for 86k events on the dev machine) but repeated ranges are memoised.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local.meters.jsonpath import MISSING, json_value_text
from openmeter_billing.local.meters.query import QueryRow, check_group_filters, run_query
from openmeter_billing.local.meters.values import (
    AGGREGATIONS,
    RESERVED_GROUP_BY_KEYS,
    Aggregation,
    EventRecord,
    MeterSpec,
    Series,
    Unmeterable,
    aggregate,
    bound,
    cached_path,
    event_problem,
    meter_problems,
    micros,
    read_value,
)

__all__ = [
    "AGGREGATIONS",
    "RESERVED_GROUP_BY_KEYS",
    "Aggregation",
    "EventRecord",
    "MeterIndex",
    "MeterSpec",
    "QueryRow",
    "event_problem",
    "meter_problems",
]

_MEMO_SIZE = 4096  # remembered usage answers per usage function


class MeterIndex:
    """Events of one meter, sorted by time, answering range aggregations fast (bisect, not scans).

    Example::

        index = MeterIndex(spec)
        index.add(event)                       # True when the event counts for this meter
        usage = index.usage_fn({"customer-1"})
        usage(period_start, now)               # the meter value over [period_start, now)
    """

    def __init__(self, spec: MeterSpec) -> None:
        """Index for ``spec``.

        Raises:
            InvalidInputError: when :func:`meter_problems` finds anything wrong with ``spec``.
        """
        problems = meter_problems(spec)
        if problems:
            raise InvalidInputError(
                "; ".join(f"{where}: {message}" for where, message in problems), field="meter"
            )
        self.spec = spec
        self._group_keys = tuple(sorted(spec.group_by))
        self._group_paths = tuple(cached_path(spec.group_by[k]) for k in self._group_keys)
        self._series: dict[tuple[str, tuple[str, ...]], Series] = {}
        self._by_subject: dict[str, list[Series]] = {}
        self._seq = 0
        self._layout_version = 0  # bumped when a series is created, so cached selections refresh

    @property
    def event_count(self) -> int:
        """How many events the meter counts (not ``__len__``: an empty index must stay truthy)."""
        return self._seq

    def _group_values(self, data: Mapping[str, Any] | None) -> tuple[str, ...]:
        """Group-by values as text; a missing one is "" (what OpenMeter's store reads)."""
        values: list[str] = []
        for path in self._group_paths:
            raw = MISSING if data is None else path.find(data)
            text = None if raw is MISSING else json_value_text(raw)
            values.append(text or "")
        return tuple(values)

    def add(self, event: EventRecord) -> bool:
        """Count ``event`` if it matches: its type, ``time >= eventFrom`` and a readable value.

        Events may arrive in any order; the index stays sorted. Returns whether it was counted.
        """
        spec = self.spec
        if event.type != spec.event_type:
            return False
        if spec.event_from is not None and event.time < spec.event_from:
            return False
        try:
            value = read_value(spec, event.data)
        except Unmeterable:
            return False
        key = (event.subject, self._group_values(event.data))
        series = self._series.get(key)
        if series is None:
            series = Series(event.subject, dict(zip(self._group_keys, key[1], strict=True)))
            self._series[key] = series
            self._by_subject.setdefault(event.subject, []).append(series)
            self._layout_version += 1
        series.insert(micros(event.time, "event.time"), self._seq, value)
        self._seq += 1
        return True

    def _selected(
        self, subjects: Collection[str] | None, filters: Mapping[str, str]
    ) -> list[Series]:
        """Series of the given subjects (all when None) whose group values equal ``filters``."""
        if subjects is None:
            pool: list[Series] = list(self._series.values())
        else:
            # dict.fromkeys: a subject listed twice must not count twice.
            pool = [s for subj in dict.fromkeys(subjects) for s in self._by_subject.get(subj, ())]
        return [s for s in pool if all(s.groups[k] == v for k, v in filters.items())]

    def usage_fn(
        self, subjects: Collection[str], group_filters: Mapping[str, str] | None = None
    ) -> Callable[[datetime, datetime], float]:
        """A function giving the meter value over ``[from, to)`` for these subjects.

        Only events whose group-by values equal ``group_filters`` count (a feature's
        ``meterGroupByFilters``). Empty ranges give 0.0 for every aggregation. Events added
        after this call are seen by the returned function.

        Raises:
            InvalidInputError: when a filter key is not a group-by key of the meter.
        """
        filters = dict(group_filters or {})
        check_group_filters(self.spec, filters, "meterGroupByFilters")
        wanted = frozenset(subjects)
        aggregation = self.spec.aggregation
        selection: list[list[Series]] = []
        version = [-1]
        # MIN/MAX/UNIQUE_COUNT scan their range, and balance engines ask the same ranges again
        # and again; answers stay valid until the next counted event (len(self) changes).
        answers: dict[tuple[int, int, int], float] = {}

        def usage(start: datetime, end: datetime) -> float:
            low, high = bound(start, "from"), bound(end, "to")
            if high <= low:
                return 0.0
            known = answers.get((self._seq, low, high))
            if known is not None:
                return known
            if version[0] != self._layout_version:
                selection[:] = [self._selected(wanted, filters)]
                version[0] = self._layout_version
            parts = [(s, *s.span(low, high)) for s in selection[0]]
            value = aggregate(aggregation, parts)
            if len(answers) >= _MEMO_SIZE:
                answers.clear()
            answers[(self._seq, low, high)] = 0.0 if value is None else value
            return answers[(self._seq, low, high)]

        return usage

    def query(
        self,
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
        """Answer ``GET/POST /api/v1/meters/{meter}/query`` the way OpenMeter does.

        One row per window (``window_size`` MINUTE/HOUR/DAY/MONTH, aligned in ``tz``) or, without
        a window size, one row for the whole range, per group. Windows without events are left
        out, as OpenMeter's SQL ``GROUP BY`` leaves them out. Passing ``subjects`` filters AND
        groups by subject; passing ``customers`` (customer id -> its subject keys) filters and
        groups by customer, exactly like OpenMeter's ``subject`` and ``filterCustomerId``.
        Without ``start``/``end`` a whole-range row spans its events (minute-rounded).

        Raises:
            InvalidInputError: (a ``ValueError``) naming ``from``, ``windowSize``, ``groupBy`` or
                ``filterGroupBy`` when that parameter is wrong.
        """
        return run_query(
            self.spec,
            self._selected,
            start=start,
            end=end,
            window_size=window_size,
            tz=tz,
            subjects=subjects,
            customers=customers,
            group_by=group_by,
            group_filters=group_filters,
        )
