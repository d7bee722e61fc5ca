"""The ingest engine: one per client (shared by `with_options` copies), per process.

It owns the memory queue or the durable outbox, the counters and the flusher service, and
decides where the flusher runs: on the caller's event loop, on the sync facade's loop thread,
or (for a script that submits without any loop) on a daemon loop thread of its own, drained at
interpreter exit. After ``os.fork()`` the child gets a new queue and flusher; the parent's queue
is left untouched (its events belong to the parent), while a durable outbox is simply shared.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import warnings
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING

import anyio

from .._loop_thread import LoopThread
from .._runtime import abandon, fork_generation
from ._flusher import Batch, Flusher
from ._queue import Item, MemoryQueue
from .options import Counters, IngestOptions, IngestStats
from .outbox import Outbox

if TYPE_CHECKING:
    from .._http import HTTPCore
    from .._runtime import Runtime

__all__ = ["IngestEngine"]

logger = logging.getLogger("openmeter_billing")

_ENGINES: weakref.WeakSet[IngestEngine] = weakref.WeakSet()


class IngestEngine:
    """Queue or outbox, counters, flusher placement; see the module docstring."""

    def __init__(
        self, http: HTTPCore, runtime: Runtime, options: IngestOptions, outbox: Outbox | None
    ) -> None:
        # Never the client itself: a flusher task parked on a loop must not keep the client
        # (and its pools) alive after the application dropped it.
        self.http = http
        self.runtime = runtime
        self.options = options
        self.outbox = outbox
        self.flusher = Flusher(self)
        self.home: LoopThread | None = None  # the sync facade's loop thread, when there is one
        self._lock = threading.Lock()
        self._sent: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._orphan = _Orphan(options)
        self._fresh_process_state()
        # A client dropped without close: its queued events are reported, never freed silently.
        # Not at exit (``atexit=False``): `shutdown_at_exit` flushes and reports then.
        weakref.finalize(self, _report_orphaned, self._orphan).atexit = False
        if options.drain_timeout is not None:
            self.runtime.drain_timeout = options.drain_timeout
        self.runtime.add_service(self.flusher)
        _ENGINES.add(self)

    def _fresh_process_state(self) -> None:
        self._generation = fork_generation()
        self.counters = Counters()  # per process: a child starts from zero
        self.queue = MemoryQueue(self.options.max_queue_events, self.options.max_queue_bytes)
        self._orphan.adopt(self.queue, self.counters, self._generation, durable=self.durable)
        self.in_flight = 0  # events taken from the queue/outbox and not finished
        self.active: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}  # loop -> waker
        self._last_loop: object = None
        self._own_home: LoopThread | None = None
        self._since_wake = 0

    @property
    def durable(self) -> bool:
        """Whether events go to an outbox (never dropped) rather than the memory queue."""
        return self.outbox is not None

    def check_fork(self) -> None:
        """In a forked child: start over with a new queue and no flusher (cheap otherwise)."""
        if self._generation != fork_generation():
            with self._lock:
                if self._generation != fork_generation():
                    abandon((self.queue, self._own_home))
                    self._fresh_process_state()

    # -- submit side ---------------------------------------------------------------------------

    def accept(self, item: Item) -> None:
        """Queue (or commit) one encoded event; raises `QueueFullError` per the policy."""
        if self._generation != fork_generation():
            self.check_fork()
        options = self.options
        loop = asyncio._get_running_loop()
        if self.outbox is not None:
            self.outbox.put([item])
            self.counters.add("submitted")
            self._since_wake += 1
            full = self._since_wake >= options.batch_size
        else:
            length = self.queue.offer(item)
            if not length:  # full: the overflow policy decides
                dropped = self.queue.put(
                    item, options.overflow, options.block_timeout, may_block=loop is None
                )
                self.counters.add("submitted")
                if dropped:
                    self.drop(dropped, "queue full")
                length = len(self.queue)
            full = length % options.batch_size == 0
        if loop is None:
            if not self.active:
                self._start_home()
        elif loop is not self._last_loop:
            self.runtime.ensure_started()
            self._last_loop = loop
        if full:
            self._since_wake = 0
            self.wake()

    def _start_home(self) -> None:
        with self._lock:
            home = self.home
            if home is None or home.closed:
                if self._own_home is None or self._own_home.closed:
                    self._own_home = LoopThread()
                home = self._own_home
        home.run(self._started)

    async def _started(self) -> None:
        self.runtime.ensure_started()

    def wake(self) -> None:
        """Tell every flusher a full batch is waiting (thread-safe, no-op when none runs)."""
        try:
            here: object = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for loop, event in list(self.active.items()):
            if loop is here:
                event.set()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    # -- flusher side --------------------------------------------------------------------------

    async def take(self) -> Batch | None:
        """The next batch to send, or None when nothing is waiting (or all is leased)."""
        self.check_fork()
        options = self.options
        if self.outbox is None:
            items = self.queue.take(options.batch_size, options.batch_bytes)
            batch = Batch(items, None) if items else None
        else:
            lease = await anyio.to_thread.run_sync(
                self.outbox.claim, options.batch_size, options.batch_bytes
            )
            batch = Batch(lease.items, lease) if lease is not None else None
        if batch is not None:
            with self._lock:
                self.in_flight += len(batch.items)
        return batch

    def finished(self, count: int) -> None:
        with self._lock:
            self.in_flight -= count

    def remember(self, items: list[Item], delivered: list[str], now: float) -> None:
        """Keep delivered events (bounded) so `events.reconcile` can check and re-send them."""
        keep = self.options.remember_sent
        if not keep or not delivered:
            return
        done = set(delivered)
        with self._lock:
            for event_id, body in items:
                if event_id in done:
                    self._sent[event_id] = (body, now)
            while len(self._sent) > keep:
                self._sent.popitem(last=False)

    def sent_events(self) -> dict[str, tuple[bytes, float]]:
        with self._lock:
            return dict(self._sent)

    def drop(self, ids: list[str], reason: str) -> None:
        """Count and report events that will never be sent."""
        self.counters.add("dropped", len(ids))
        logger.warning("dropping %d usage events (%s)", len(ids), reason)
        callback = self.options.on_drop
        if callback is not None:
            try:
                callback(ids, reason)
            except Exception:
                logger.exception("the on_drop callback raised")

    def report_leftovers(self, reason: str) -> None:
        """Memory mode: events that can no longer be sent are reported, never lost silently."""
        if self.outbox is None:
            left = self.queue.take_all()
            if left:
                self.drop([event_id for event_id, _ in left], reason)

    def pending(self) -> int:
        """Events not yet delivered: queued and in flight (memory), or rows in the outbox."""
        if self.outbox is not None:
            return self.outbox.pending()
        return len(self.queue) + self.in_flight

    def stats(self) -> IngestStats:
        """Counters of this process; ``pending`` counts this process's queue and batches."""
        self.check_fork()
        return self.counters.snapshot(len(self.queue) + self.in_flight, self.queue.accepted)

    async def flush(self, timeout: float | None) -> int:
        """Send everything this process can now; return how many events are still pending."""
        with anyio.move_on_after(timeout):
            await self.flusher.send_all()
            while self.in_flight:  # noqa: ASYNC110 - other loops' batches: no shared event
                await anyio.sleep(0.005)
        return await anyio.to_thread.run_sync(self.pending) if self.durable else self.pending()

    def shutdown_at_exit(self) -> None:
        """Interpreter exit: flush within the drain bound, then report or keep what is left."""
        if self._generation != fork_generation() or not self.pending():
            return
        timeout = self.runtime.drain_timeout
        if not self.runtime.closed:
            try:
                self._flush_blocking(timeout)
            except Exception:
                logger.warning("flushing usage events at exit failed", exc_info=True)
        own = self._own_home
        if own is not None and not own.closed and own.thread.is_alive():
            # Batches still retrying on our own loop go back to the queue when cancelled.
            try:
                asyncio.run_coroutine_threadsafe(_cancel_other_tasks(), own.loop).result(2.0)
            except Exception:
                logger.warning("stopping the ingest flusher at exit failed", exc_info=True)
            # The loop's end drains once more (bounded by the drain timeout): wait past that.
            own.stop(None, timeout + 1.0)
        if self.outbox is not None:
            logger.info(
                "%d usage events stay in %r for the next process", self.pending(), self.outbox
            )
        self.report_leftovers("interpreter exit")

    def _flush_blocking(self, timeout: float) -> None:
        home = self.home if self.home is not None and not self.home.closed else self._own_home
        if home is not None and not home.closed and home.thread.is_alive():
            future = asyncio.run_coroutine_threadsafe(self.flush(timeout), home.loop)
            future.result(timeout + 1.0)
        else:
            asyncio.run(self.flush(timeout))


class _Orphan:
    """What the garbage-collection finalizer needs, holding no reference to the engine."""

    def __init__(self, options: IngestOptions) -> None:
        self.options = options
        self.queue: MemoryQueue | None = None
        self.counters = Counters()
        self.generation = 0
        self.durable = False

    def adopt(self, queue: MemoryQueue, counters: Counters, generation: int, durable: bool) -> None:
        self.queue, self.counters, self.generation = queue, counters, generation
        self.durable = durable


def _report_orphaned(orphan: _Orphan) -> None:
    """The engine was collected: report (log, `ResourceWarning`, ``on_drop``) what was queued."""
    if orphan.durable or orphan.queue is None or orphan.generation != fork_generation():
        return  # outbox rows stay for the next flusher; a fork's parent queue is not ours
    left = orphan.queue.take_all()
    if not left:
        return
    ids = [event_id for event_id, _ in left]
    orphan.counters.add("dropped", len(ids))
    message = (
        f"an OpenMeterBilling client was garbage-collected with {len(ids)} usage events not "
        "sent; close it (await client.aclose(), client.close()) or await events.flush() first"
    )
    logger.warning("dropping %d usage events (client garbage-collected unclosed)", len(ids))
    warnings.warn(message, ResourceWarning, stacklevel=2)
    callback = orphan.options.on_drop
    if callback is not None:
        try:
            callback(ids, "client garbage-collected")
        except Exception:
            logger.exception("the on_drop callback raised")


async def _cancel_other_tasks() -> None:
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=1.0)


@atexit.register
def _flush_all_at_exit() -> None:
    for engine in list(_ENGINES):
        engine.shutdown_at_exit()
