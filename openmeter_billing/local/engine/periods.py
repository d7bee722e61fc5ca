"""Usage periods of a metered entitlement: a timeline of recurrences cut by manual resets.

The timeline starts with ``(measure_usage_from, usage_period)``; each manual reset at ``t`` adds
``(t, Recurrence(reset.anchor, interval))``. The period containing an instant comes from the last
entry starting at or before it, clipped to that entry's start and to the next entry's start. Every
period start after ``measure_usage_from`` is a reset of the balance ("programmatic" at recurrence
boundaries, "manual" at reset records), so the engine needs no background job.
"""

from __future__ import annotations

import bisect
from datetime import datetime

from openmeter_billing.local._time import Recurrence
from openmeter_billing.local.engine.model import MeteredEntitlementState

__all__ = ["UsagePeriods"]


class UsagePeriods:
    """Which usage period contains an instant, and which resets happen in a range."""

    def __init__(self, ent: MeteredEntitlementState) -> None:
        interval = ent.usage_period.interval
        entries = [(ent.measure_usage_from, ent.usage_period)]
        entries += [(r.at, Recurrence(r.anchor, interval)) for r in ent.resets]
        # Stable sort: of several resets in one minute the last recorded wins, like a re-read would.
        entries.sort(key=lambda entry: entry[0])
        self._entries: list[tuple[datetime, Recurrence]] = entries
        self._starts = [entry[0] for entry in entries]
        self._measure_from = ent.measure_usage_from
        self._default_preserve = ent.preserve_overage_at_reset
        self._manual = {r.at: r for r in ent.resets}

    def period_at(self, at: datetime) -> tuple[datetime, datetime]:
        """``[from, to)`` of the period containing ``at`` (the first period for earlier times)."""
        idx = max(bisect.bisect_right(self._starts, at) - 1, 0)
        entry_start, recurrence = self._entries[idx]
        probe = max(at, entry_start)
        start = max(recurrence.last_at_or_before(probe), entry_start)
        end = recurrence.next_after(probe)
        if idx + 1 < len(self._entries):
            end = min(end, self._entries[idx + 1][0])
        return start, end

    def resets_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Period starts ``r`` with ``start < r <= end``, after measure_usage_from, ascending."""
        found: list[datetime] = []
        _, boundary = self.period_at(max(start, self._measure_from))
        while boundary <= end:
            found.append(boundary)
            _, boundary = self.period_at(boundary)
        return found

    def preserves_overage(self, reset_at: datetime) -> bool:
        """Whether the reset at ``reset_at`` carries overage over (a manual reset may override)."""
        manual = self._manual.get(reset_at)
        if manual is not None and manual.preserve_overage is not None:
            return manual.preserve_overage
        return self._default_preserve
