"""A wrapping httpx transport that fails event POSTs on purpose and records acknowledged ids.

Until Local OpenMeter's own fault injection lands, outages are simulated here: ``fail_next``
answers that many event POSTs with 503 (optionally with ``Retry-After``) before they reach Local
OpenMeter, ``failure_rate`` answers a random share with 503, ``poison`` rejects (400) any batch
holding an event whose data has ``"poison": true`` (as OpenMeter rejects a batch as a whole).
``acknowledged`` counts, per event id, the successful POSTs that carried it.
"""

from __future__ import annotations

import collections
import json
import random
import threading

import httpx

from openmeter_billing.local import LocalOpenMeter


class FaultyOpenMeter(httpx.AsyncBaseTransport, httpx.BaseTransport):
    def __init__(self, inner: LocalOpenMeter | None = None, *, seed: int = 7) -> None:
        self.inner = inner or LocalOpenMeter()
        self.fail_next = 0
        self.failure_rate = 0.0
        self.retry_after: str | None = None
        self.down = False
        self.acknowledged: collections.Counter[str] = collections.Counter()
        self.posts = 0
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def _fault(self, request: httpx.Request) -> httpx.Response | None:
        if request.method != "POST" or request.url.path != "/api/v1/events":
            return None
        with self._lock:
            self.posts += 1
            failing = self.down or self.fail_next > 0 or self._random.random() < self.failure_rate
            if self.fail_next > 0:
                self.fail_next -= 1
        if failing:
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return httpx.Response(503, headers=headers, json={"title": "unavailable"})
        events = json.loads(request.content)
        events = events if isinstance(events, list) else [events]
        if any((e.get("data") or {}).get("poison") for e in events):
            return httpx.Response(
                400,
                headers={"Content-Type": "application/problem+json"},
                json={"title": "Bad Request", "status": 400, "detail": "poisoned event"},
            )
        return None

    def _record(self, request: httpx.Request, response: httpx.Response) -> None:
        posted = request.method == "POST" and request.url.path == "/api/v1/events"
        if posted and response.status_code < 300:
            events = json.loads(request.content)
            events = events if isinstance(events, list) else [events]
            with self._lock:
                self.acknowledged.update(e["id"] for e in events)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        fault = self._fault(request)
        if fault is not None:
            return fault
        response = await self.inner.handle_async_request(request)
        self._record(request, response)
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        fault = self._fault(request)
        if fault is not None:
            return fault
        response = self.inner.handle_request(request)
        self._record(request, response)
        return response

    def stored_ids(self) -> collections.Counter[str]:
        """How many times each event id is stored in Local OpenMeter."""
        state = self.inner._state
        return collections.Counter(record.event.id for record in state.events)
