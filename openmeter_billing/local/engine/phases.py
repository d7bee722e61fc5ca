"""The burn-down plan: where usage periods and burn phases start and what happens at each start.

Between two resets the balance changes only at "activity changes" (a grant becomes effective,
expires, is voided or deleted) and at grant recurrences; between those the burn order is fixed, so
usage can be burnt in one step per phase. Planning that once keeps the burn loop simple.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

from openmeter_billing.local.engine.model import (
    GrantState,
    MeteredEntitlementState,
    grant_active_until,
    grant_is_active,
)
from openmeter_billing.local.engine.periods import UsagePeriods

__all__ = ["Phase", "plan_phases"]


@dataclass(frozen=True)
class Phase:
    """A stretch ``[start, end)`` with a fixed burn order, and what happens at its start.

    Attributes:
        start: First minute of the phase.
        end: End of the phase (exclusive); equal to ``start`` for a zero-length closing phase.
        period_start: Start of the usage period the phase belongs to.
        reset: A usage reset (rollover, overage handling) happens at ``start`` before the phase.
        preserve_overage: For a reset, whether overage is carried over rather than forgiven.
        recurring: Ids of grants whose recurrence fires at ``start`` (balance := amount).
        eventful: Something changes balances at ``start`` (reset, recurrence, a grant taking
            effect), so the state at that instant differs from the previous phase's end.
    """

    start: datetime
    end: datetime
    period_start: datetime
    reset: bool = False
    preserve_overage: bool = False
    recurring: frozenset[str] = frozenset()
    eventful: bool = False


def _recurrences(
    grant: GrantState, start: datetime, end: datetime, *, inclusive: bool
) -> list[datetime]:
    """Recurrence times of ``grant`` from ``max(effective_at, start)`` to ``end``, while active.

    ``end`` itself is included only when ``inclusive`` (the read time of the last period).
    """
    if grant.recurrence is None:
        return []
    times: list[datetime] = []
    t = grant.recurrence.first_at_or_after(max(grant.effective_at, start))
    while (t < end or (inclusive and t == end)) and grant_is_active(grant, t):
        times.append(t)
        t = grant.recurrence.next_after(t)
    return times


def _cuts(
    grants: Sequence[GrantState], start: datetime, end: datetime, *, last: bool
) -> tuple[set[datetime], dict[datetime, set[str]]]:
    """Phase boundaries strictly inside ``(start, end)`` and the grants recurring at each time."""
    cuts: set[datetime] = set()
    recurring: dict[datetime, set[str]] = defaultdict(set)
    for grant in grants:
        for change in (grant.effective_at, grant_active_until(grant)):
            if change is not None and start < change < end:
                cuts.add(change)
        for t in _recurrences(grant, start, end, inclusive=last):
            recurring[t].add(grant.id)
            if start < t < end:
                cuts.add(t)
    return cuts, recurring


def _period_phases(
    grants: Sequence[GrantState],
    start: datetime,
    end: datetime,
    *,
    reset: bool,
    preserve: bool,
    last: bool,
) -> list[Phase]:
    """The phases of one usage period ``[start, end]``; the last may be zero-length."""
    cuts, recurring = _cuts(grants, start, end, last=last)
    points = sorted({start, end} | cuts)

    def make(at: datetime, until: datetime, *, first: bool) -> Phase:
        ids = frozenset(recurring.get(at, ()))
        takes_effect = any(g.effective_at == at for g in grants)
        return Phase(
            start=at,
            end=until,
            period_start=start,
            reset=reset and first,
            preserve_overage=preserve and first,
            recurring=ids,
            eventful=(reset and first) or bool(ids) or takes_effect,
        )

    phases = [make(a, b, first=a == start) for a, b in pairwise(points)]
    if start == end:
        phases.append(make(start, start, first=True))
    elif last:
        closing = make(end, end, first=False)
        if closing.eventful:
            # OpenMeter applies a recurrence exactly at the read time; we also apply a grant start.
            phases.append(closing)
    return phases


def plan_phases(
    ent: MeteredEntitlementState,
    periods: UsagePeriods,
    grants: Sequence[GrantState],
    until: datetime,
) -> list[Phase]:
    """Every burn phase from ``measure_usage_from`` to ``until`` (inclusive), ascending.

    A reset exactly at ``until`` yields a zero-length last phase so the read sees the reset state.
    """
    starts = [ent.measure_usage_from, *periods.resets_between(ent.measure_usage_from, until)]
    phases: list[Phase] = []
    for index, start in enumerate(starts):
        last = index == len(starts) - 1
        end = until if last else starts[index + 1]
        phases += _period_phases(
            grants,
            start,
            end,
            reset=index > 0,
            preserve=index > 0 and periods.preserves_overage(start),
            last=last,
        )
    return phases
