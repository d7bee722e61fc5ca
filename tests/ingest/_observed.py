"""Local OpenMeter with a record of what the event endpoint acknowledged and stored.

Outages come from Local OpenMeter's own faults (``local.faults.outage(INGEST, ...)``,
``fail(INGEST, share=...)``); this helper only observes: ``acknowledged`` counts, per event id,
the successful POSTs that carried it, ``posts`` every POST to the event endpoint (failed ones too).
"""

from __future__ import annotations

import collections
import json
import threading

import httpx

from openmeter_billing.local import Faults, LocalOpenMeter
from openmeter_billing.local.faults import INGEST, FaultRule

__all__ = ["INGEST", "ObservedLocal"]


class ObservedLocal:
    def __init__(self, seed: int = 7) -> None:
        self.local = LocalOpenMeter(faults=Faults(seed=seed))
        self.acknowledged: collections.Counter[str] = collections.Counter()
        self.posts = 0
        self._lock = threading.Lock()
        self.local.add_observer(self._observe)

    def _observe(self, request: httpx.Request, response: httpx.Response) -> None:
        if request.method != "POST" or request.url.path != "/api/v1/events":
            return
        with self._lock:
            self.posts += 1
            if response.status_code < 300:
                events = json.loads(request.content)
                events = events if isinstance(events, list) else [events]
                self.acknowledged.update(e["id"] for e in events)

    def down(self) -> FaultRule:
        """Every event POST answers 503 until the returned rule is removed."""
        return self.local.faults.outage(INGEST)

    def stored_ids(self) -> collections.Counter[str]:
        """How many times each event id is stored in Local OpenMeter."""
        return collections.Counter(record.event.id for record in self.local._state.events)
