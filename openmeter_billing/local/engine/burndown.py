"""The burn-down run: walks the phase plan, burning usage from grants in priority order.

One run answers every question a route asks: the balance at one instant (``compute_balance``),
the balance at many instants and the per-phase segments (``compute_history``). Instants inside a
phase are answered by burning the partial usage up to them without committing it, so the phases
themselves, and therefore the numbers, never depend on what was asked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from openmeter_billing.local.engine.model import (
    GrantState,
    MeteredEntitlementState,
    UsageFn,
    grant_is_active,
)
from openmeter_billing.local.engine.periods import UsagePeriods
from openmeter_billing.local.engine.phases import Phase, plan_phases

__all__ = ["Instant", "RawSegment", "burn", "burn_order", "run"]


def burn_order(grants: Sequence[GrantState]) -> list[GrantState]:
    """Grants in the order they burn: priority, then expiry (never-expiring last), creation, id."""

    def key(g: GrantState) -> tuple[int, bool, float, datetime, str]:
        expiry = g.expires_at.timestamp() if g.expires_at is not None else 0.0
        return (g.priority, g.expires_at is None, expiry, g.created_at, g.id)

    return sorted(grants, key=key)


def burn(
    balances: Mapping[str, float], ordered_ids: Sequence[str], amount: float
) -> tuple[dict[str, float], dict[str, float], float]:
    """Burn ``amount`` from ``balances`` in ``ordered_ids`` order.

    Returns the new balances, what each grant gave (grants that gave nothing are left out) and the
    part nobody covered (the overage).
    """
    new = dict(balances)
    used: dict[str, float] = {}
    remaining = amount
    for gid in ordered_ids:
        if remaining <= 0:
            break
        available = new.get(gid, 0.0)
        if available <= 0:
            continue
        take = min(available, remaining)
        # Zero an exhausted grant exactly instead of leaving float dust behind.
        new[gid] = 0.0 if take == available else available - take
        used[gid] = take
        remaining -= take
    return new, used, max(remaining, 0.0)


@dataclass(frozen=True)
class Instant:
    """The state at one instant, as a balance read sees it.

    Attributes:
        at: The instant.
        balances: Balance per grant active at ``at``.
        overage: Usage no grant covered, carried within the period.
        period_start: Start of the usage period containing ``at``.
        period_usage: Usage burnt since ``period_start`` (LATEST meters are answered separately).
        period_grant_usage: The part of that usage (plus preserved overage) grants covered.
    """

    at: datetime
    balances: Mapping[str, float]
    overage: float
    period_start: datetime
    period_usage: float
    period_grant_usage: float


@dataclass(frozen=True)
class RawSegment:
    """One phase (clipped to the asked range) with the balances around it."""

    start: datetime
    end: datetime
    usage: float
    overage: float
    balances_at_start: Mapping[str, float]
    balances_at_end: Mapping[str, float]
    grant_usages: Mapping[str, float]


@dataclass
class RunOutput:
    """What a run collected: the asked instants and the segments inside the asked range."""

    instants: list[Instant] = field(default_factory=list)
    segments: list[RawSegment] = field(default_factory=list)


@dataclass(frozen=True)
class _Burnt:
    """Result of burning a phase up to some instant."""

    balances: dict[str, float]
    used: dict[str, float]
    overage: float
    window_usage: float


class _Runner:
    """Mutable walk over the phases; one instance per run, never shared."""

    def __init__(self, ent: MeteredEntitlementState, grants: Sequence[GrantState], usage: UsageFn):
        self.ent = ent
        self.ordered = burn_order(grants)
        self._usage = usage
        self._cache: dict[tuple[datetime, datetime], float] = {}
        self.latest = ent.aggregation == "LATEST"
        start = ent.measure_usage_from
        self.balances = {
            g.id: float(g.amount) if grant_is_active(g, start) else 0.0 for g in self.ordered
        }
        self.overage = 0.0
        self.period_usage = 0.0
        self.period_grant_usage = 0.0
        self.active: list[GrantState] = []

    def usage(self, start: datetime, end: datetime) -> float:
        """The meter over ``[start, end)``, 0 for an empty window, each window asked once."""
        if end <= start:
            return 0.0
        key = (start, end)
        if key not in self._cache:
            self._cache[key] = float(self._usage(start, end))
        return self._cache[key]

    def window_usage(self, phase: Phase, t: datetime) -> float:
        """Usage to burn for ``[phase.start, t)``; UNIQUE_COUNT counts values new in the period."""
        if t <= phase.start:
            return 0.0
        if self.ent.aggregation == "UNIQUE_COUNT":
            since = phase.period_start
            return self.usage(since, t) - self.usage(since, phase.start)
        return self.usage(phase.start, t)

    def reset(self, at: datetime, preserve: bool) -> None:
        """Roll grant balances over into a new usage period, then carry or forgive the overage."""
        for g in self.ordered:
            keep = grant_is_active(g, at)
            self.balances[g.id] = g.rollover_balance(self.balances[g.id]) if keep else 0.0
        carried = self.overage if preserve else 0.0
        paid = 0.0
        if carried > 0:
            ids = [g.id for g in self.ordered]
            self.balances, used, carried = burn(self.balances, ids, carried)
            paid = sum(used.values())
        self.overage = carried
        self.period_usage = 0.0
        self.period_grant_usage = paid

    def begin(self, phase: Phase) -> None:
        """Apply what happens at a phase start: reset, recurrences, grants starting or ending."""
        if phase.reset:
            self.reset(phase.start, phase.preserve_overage)
        amounts = {g.id: float(g.amount) for g in self.ordered}
        for gid in phase.recurring:
            self.balances[gid] = amounts[gid]
        self.active = [g for g in self.ordered if grant_is_active(g, phase.start)]
        active_ids = {g.id for g in self.active}
        for g in self.ordered:
            if g.id not in active_ids:
                self.balances[g.id] = 0.0
            elif g.effective_at == phase.start or self.latest:
                # LATEST meters report a level, not a flow: grants are limits refreshed every
                # phase, and overage is recomputed from the level rather than carried.
                self.balances[g.id] = amounts[g.id]
        if self.latest:
            self.overage = 0.0
            self.period_grant_usage = 0.0

    def burn_to(self, phase: Phase, t: datetime) -> _Burnt:
        """Burn the phase's usage up to ``t`` (plus carried overage) without committing it."""
        window = self.window_usage(phase, t)
        ids = [g.id for g in self.active]
        start_balances = {gid: self.balances[gid] for gid in ids}
        balances, used, overage = burn(start_balances, ids, window + self.overage)
        return _Burnt(balances, used, overage, window)

    def commit(self, burnt: _Burnt) -> None:
        """Make a burn up to the phase end the new state."""
        self.balances.update(burnt.balances)
        self.overage = burnt.overage
        self.period_usage += burnt.window_usage
        self.period_grant_usage += sum(burnt.used.values())

    def instant(self, phase: Phase, t: datetime) -> Instant:
        """The state a balance read at ``t`` (inside ``phase``) would see."""
        burnt = self.burn_to(phase, t)
        balances = {
            g.id: burnt.balances.get(g.id, 0.0) for g in self.ordered if grant_is_active(g, t)
        }
        return Instant(
            at=t,
            balances=balances,
            overage=burnt.overage,
            period_start=phase.period_start,
            period_usage=self.period_usage + burnt.window_usage,
            period_grant_usage=self.period_grant_usage + sum(burnt.used.values()),
        )

    def segment(self, phase: Phase, start: datetime, end: datetime) -> RawSegment:
        """The part ``[start, end)`` of ``phase`` as a burn-down history segment."""
        if start == phase.start:
            # A segment opens with the balances before anything burns, carried overage included.
            ids = [g.id for g in self.active]
            opening = {gid: self.balances[gid] for gid in ids}
            before = _Burnt(opening, {}, self.overage, 0.0)
        else:
            before = self.burn_to(phase, start)
        after = self.burn_to(phase, end)
        if self.latest:
            usage = after.window_usage
            used = after.used
        else:
            usage = after.window_usage - before.window_usage
            used = {
                gid: before.balances[gid] - after.balances[gid]
                for gid in before.balances
                if before.balances[gid] - after.balances[gid] > 0
            }
        return RawSegment(
            start=start,
            end=end,
            usage=usage,
            overage=after.overage,
            balances_at_start=before.balances,
            balances_at_end=after.balances,
            grant_usages=used,
        )


def _takes(phase: Phase, next_phase: Phase | None, t: datetime) -> bool:
    """Whether an instant ``t`` is answered inside ``phase``.

    An instant on a phase boundary belongs to the phase that ENDS there, unless something happens
    at that boundary (reset, recurrence, a grant taking effect): then the next phase's start state
    is what a read sees.
    """
    if t < phase.start:
        return False
    if t < phase.end:
        return True
    return t == phase.end and (next_phase is None or not next_phase.eventful)


def run(
    ent: MeteredEntitlementState,
    grants: Sequence[GrantState],
    usage: UsageFn,
    *,
    until: datetime,
    instants: Sequence[datetime] = (),
    segments_between: tuple[datetime, datetime] | None = None,
) -> RunOutput:
    """Burn down from ``measure_usage_from`` to ``until``.

    Args:
        instants: Ascending times in ``[measure_usage_from, until]`` to report the state at.
        segments_between: Also report the phases overlapping this ``[start, end)`` range, clipped.
    """
    periods = UsagePeriods(ent)
    phases = plan_phases(ent, periods, grants, until)
    runner = _Runner(ent, grants, usage)
    out = RunOutput()
    pending = deque(instants)
    for index, phase in enumerate(phases):
        next_phase = phases[index + 1] if index + 1 < len(phases) else None
        runner.begin(phase)
        while pending and _takes(phase, next_phase, pending[0]):
            out.instants.append(runner.instant(phase, pending.popleft()))
        if segments_between is not None:
            low, high = segments_between
            if phase.start < high and phase.end > low and phase.end > phase.start:
                seg_start, seg_end = max(phase.start, low), min(phase.end, high)
                out.segments.append(runner.segment(phase, seg_start, seg_end))
        runner.commit(runner.burn_to(phase, phase.end))
    return out
