"""The flusher: a background service that sends batches, several in flight, until cancelled.

It wakes every ``flush_interval`` seconds, or at once when a submit completes a batch. A batch
taken from the memory queue that is interrupted (drain deadline, cancellation) goes back to the
front of the queue, so shutdown can report it; a leased outbox batch is handed back to the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from ._queue import Item
from ._sender import Outcome, deliver
from .outbox import Lease

if TYPE_CHECKING:
    from ._engine import IngestEngine

__all__ = ["Batch", "Flusher"]

logger = logging.getLogger("openmeter_billing")


@dataclass
class Batch:
    """Events taken for one send: from the memory queue (no lease) or leased from an outbox."""

    items: list[Item]
    lease: Lease | None


class Flusher:
    """`BackgroundService` sending the engine's queue or outbox to OpenMeter."""

    name = "ingest-flusher"

    def __init__(self, engine: IngestEngine) -> None:
        # Weak: the runtime holds its services, and a parked task must not keep the engine
        # (hence the client's pools) alive once the client is gone; the task then ends.
        self._ref = weakref.ref(engine)

    @property
    def _engine(self) -> IngestEngine:
        engine = self._ref()
        if engine is None:
            raise asyncio.CancelledError  # the client was collected: nothing left to send for
        return engine

    async def run(self) -> None:
        """Send batches until cancelled (started on every event loop the client is used on)."""
        loop = asyncio.get_running_loop()
        waker = asyncio.Event()
        self._engine.active[loop] = waker
        options = self._engine.options
        slots = anyio.Semaphore(options.max_in_flight)
        try:
            async with anyio.create_task_group() as group:
                while self._ref() is not None:
                    await self._fill(group, slots)
                    with anyio.move_on_after(options.flush_interval):
                        await waker.wait()
                    waker.clear()
        finally:
            engine = self._ref()
            if engine is not None:
                if engine.active.get(loop) is waker:
                    del engine.active[loop]
                if engine.runtime.closed:
                    engine.report_leftovers("client closed")

    async def drain(self) -> None:
        """Send what is queued; the runtime bounds this with its drain timeout."""
        engine = self._ref()
        if engine is None:
            return  # the client was collected with its queue
        try:
            await engine.flush(None)
        finally:
            if engine.runtime.closed:
                engine.report_leftovers("client closed")

    async def send_all(self) -> None:
        """Take and send batches, ``max_in_flight`` at a time, until none is waiting."""
        slots = anyio.Semaphore(self._engine.options.max_in_flight)
        async with anyio.create_task_group() as group:
            await self._fill(group, slots)

    async def _fill(self, group: anyio.abc.TaskGroup, slots: anyio.Semaphore) -> None:
        """Start a send per waiting batch, waiting for a free slot before each."""
        while True:
            await slots.acquire()
            try:
                batch = await self._engine.take()
            except Exception:
                slots.release()
                logger.warning("reading the ingest outbox failed; will retry", exc_info=True)
                return
            if batch is None:
                slots.release()
                return
            group.start_soon(self._send, batch, slots)

    async def _send(self, batch: Batch, slots: anyio.Semaphore) -> None:
        engine = self._engine
        outcome = Outcome()
        lease = batch.lease
        try:
            await deliver(
                engine.http,
                batch.items,
                engine.options,
                engine.counters,
                durable=lease is not None,
                renew=lease.renew if lease is not None else None,
                outcome=outcome,
            )
        finally:
            with anyio.CancelScope(shield=True):
                await self._settle(batch, outcome)
            engine.finished(len(batch.items))
            slots.release()

    async def _settle(self, batch: Batch, outcome: Outcome) -> None:
        """Record the outcome; whatever was not settled goes back where it came from."""
        engine = self._engine
        counters = engine.counters
        counters.add("sent", len(outcome.delivered))
        counters.add("dead_lettered", len(outcome.dead))
        engine.remember(batch.items, outcome.delivered, time.time())
        for letter in outcome.dead:
            callback = engine.options.on_dead_letter
            if callback is not None:
                try:
                    callback(letter)
                except Exception:
                    logger.exception("the on_dead_letter callback raised")
        if outcome.given_up:
            engine.drop([event_id for event_id, _ in outcome.given_up], "retries exhausted")
        if batch.lease is not None:
            try:
                await anyio.to_thread.run_sync(batch.lease.finish, outcome.delivered, outcome.dead)
            except Exception:
                logger.warning("updating the outbox failed; rows will be sent again", exc_info=True)
            return
        settled = set(outcome.delivered)
        settled.update(letter.event_id for letter in outcome.dead)
        settled.update(event_id for event_id, _ in outcome.given_up)
        rest = [item for item in batch.items if item[0] not in settled]
        if rest:
            engine.queue.put_back(rest)
