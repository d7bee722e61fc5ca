"""``events.reconcile``: find delivered events OpenMeter does not have, and send them again.

OpenMeter acknowledges a batch before its events are stored, and its deduplication has an open
bug where a retried event can end up counted zero times. So the library remembers what it
delivered (``IngestOptions.remember_sent`` events) and can ask OpenMeter's events API, id by id,
whether each arrived; a missing one is queued again with the same id and body.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import anyio

from .._exceptions import InvalidInputError

if TYPE_CHECKING:
    from ..resources.events import AsyncEvents
    from ._engine import IngestEngine

__all__ = ["ReconcileResult", "reconcile"]


@dataclass(frozen=True)
class ReconcileResult:
    """What `events.reconcile` found: ids checked, missing (and re-sent), and unknown ids."""

    checked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


async def reconcile(
    events: AsyncEvents,
    engine: IngestEngine,
    ids: Iterable[str] | None,
    since: datetime | None,
    min_age: float,
    resend: bool,
) -> ReconcileResult:
    """See `AsyncEvents.reconcile`."""
    if (ids is None) == (since is None):
        raise InvalidInputError(
            "pass exactly one of ids= or since=",
            field="ids",
            hint="reconcile(ids=[...]) or reconcile(since=datetime.now(timezone.utc) - ...)",
        )
    if since is not None and since.utcoffset() is None:
        raise InvalidInputError("since must be timezone-aware", field="since")
    sent = engine.sent_events()
    settled_before = time.time() - min_age
    if ids is not None:
        wanted = [ids] if isinstance(ids, str) else list(ids)
        unknown = [i for i in wanted if i not in sent]
        chosen = [i for i in wanted if i in sent]
    else:
        assert since is not None
        floor = since.timestamp()
        unknown = []
        chosen = [i for i, (_, at) in sent.items() if at >= floor]
    chosen = [i for i in chosen if sent[i][1] <= settled_before]
    missing: list[str] = []
    limiter = anyio.Semaphore(8)

    async def check(event_id: str) -> None:
        async with limiter:
            if not await _stored(events, event_id, sent[event_id][0], sent[event_id][1]):
                missing.append(event_id)

    async with anyio.create_task_group() as group:
        for event_id in chosen:
            group.start_soon(check, event_id)
    if resend:
        for event_id in missing:
            engine.accept((event_id, sent[event_id][0]))
    return ReconcileResult(checked=chosen, missing=sorted(missing), unknown=unknown)


async def _stored(events: AsyncEvents, event_id: str, body: bytes, sent_at: float) -> bool:
    doc = json.loads(body)
    raw_time = doc.get("time")
    if isinstance(raw_time, str):
        when = datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
    else:  # stamped by OpenMeter on arrival
        when = datetime.fromtimestamp(sent_at, timezone.utc)
    window = timedelta(days=1)
    found = await events.list(id=event_id, from_=when - window, to=when + window, limit=100)
    return any(
        item.event.id == event_id and item.event.source == doc.get("source") for item in found
    )
