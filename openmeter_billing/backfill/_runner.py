"""The engine under every backfill: bounded workers over one input, paced, retried, checkpointed.

A fixed pool of ``concurrency`` workers pulls items from one shared iterator, so memory stays
flat however long the input is (nothing reads ahead). Each item is tried up to ``retries + 1``
times when its failure is transient; a final failure is reported, never raised, so one bad row
cannot stop a migration of 100,000.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

from ._pacing import RateLimiter, is_fatal, is_transient, retry_delay
from ._report import BackfillFailure, BackfillProgress, BackfillReport, Outcome
from ._state import Checkpoint, StateFile, Tracker

__all__ = ["ItemContext", "RunSettings", "Unreadable", "run_backfill"]

logger = logging.getLogger("openmeter_billing")
T = TypeVar("T")

ProgressCallback = Callable[[BackfillProgress], object]


@dataclass
class ItemContext:
    """What a work function gets besides its item: where to note the key, and the pacer."""

    index: int
    limiter: RateLimiter | None
    key: str | None = None

    async def pace(self) -> None:
        """Call before each request: waits for the rate limit."""
        if self.limiter is not None:
            await self.limiter.acquire()


Work = Callable[[T, ItemContext], Awaitable[Outcome]]


@dataclass(frozen=True)
class Unreadable:
    """An input row that could not be turned into an item: it fails alone, with its error."""

    label: str
    error: Exception


@dataclass(frozen=True)
class RunSettings:
    """How a run behaves; see `AsyncBackfill.customers` for each field's meaning."""

    concurrency: int = 8
    rate_limit: float | None = None
    retries: int = 3
    retry_backoff: float = 0.5
    checkpoint: StateFile | None = None
    on_progress: ProgressCallback | None = None
    progress_interval: float = 0.25
    save_interval: float = 1.0


class _Run(Generic[T]):
    """One run's mutable state, shared by its workers (all on one event loop)."""

    def __init__(
        self,
        kind: str,
        items: AsyncIterator[T],
        work: Work[T],
        settings: RunSettings,
        checkpoint: Checkpoint,
        total: int | None,
    ) -> None:
        self.kind, self.items, self.work, self.settings = kind, items, work, settings
        self.total = total
        self.tracker = Tracker(checkpoint)
        self.report = BackfillReport(kind)
        self.limiter = RateLimiter(settings.rate_limit) if settings.rate_limit else None
        self.lock = anyio.Lock()
        self.next_index = 0
        self.started = time.monotonic()
        self.last_progress = self.last_save = self.started
        self.fatal: Exception | None = None
        self.scope = anyio.CancelScope()

    def stop(self, error: Exception) -> None:
        """Stop every worker: ``error`` would fail every other item alike."""
        if self.fatal is None:
            self.fatal = error
        self.scope.cancel()

    async def worker(self) -> None:
        while (got := await self._next()) is not None:
            index, item = got
            if self.tracker.checkpoint.is_done(index):
                self.report.skipped += 1
                self._settle(index, None)
                continue
            outcome, failure = await self._attempt(index, item)
            if outcome is not None:
                self.report.count(outcome)
            elif failure is not None:
                self.report.failures.append(failure)
                logger.info("backfill %s item %d failed: %s", self.kind, index, failure.reason)
            if self.fatal is None:
                self._settle(index, failure)

    async def _next(self) -> tuple[int, T] | None:
        async with self.lock:
            try:
                item = await self.items.__anext__()
            except StopAsyncIteration:
                return None
            index, self.next_index = self.next_index, self.next_index + 1
            self.tracker.started(index)  # under the lock: the watermark never passes it
            return index, item

    async def _attempt(self, index: int, item: T) -> tuple[Outcome | None, BackfillFailure | None]:
        context = ItemContext(index, self.limiter)
        tries = self.settings.retries + 1
        if isinstance(item, Unreadable):
            reason = str(item.error)
            return None, BackfillFailure(index, item.label, reason, type(item.error).__name__)
        for attempt in range(1, tries + 1):
            try:
                return await self.work(item, context), None
            except Exception as exc:  # one bad item must not stop the run: report it
                if is_fatal(exc):
                    self.stop(exc)
                    return None, None
                if attempt < tries and is_transient(exc):
                    await anyio.sleep(retry_delay(exc, attempt, self.settings.retry_backoff))
                    continue
                reason = str(exc) or type(exc).__name__
                return None, BackfillFailure(
                    index, context.key, reason, type(exc).__name__, attempt
                )
        raise AssertionError("unreachable")  # pragma: no cover

    def _settle(self, index: int, failure: BackfillFailure | None) -> None:
        self.tracker.settled(index, failure)
        now = time.monotonic()
        if self.settings.checkpoint is not None and now - self.last_save >= (
            self.settings.save_interval
        ):
            self.last_save = now
            self.settings.checkpoint.save(self.tracker.checkpoint)
        if now - self.last_progress >= self.settings.progress_interval:
            self.last_progress = now
            self.progress()

    def settled(self) -> int:
        report = self.report
        return report.created + report.updated + report.unchanged + report.skipped + report.failed

    def progress(self) -> None:
        if self.settings.on_progress is None:
            return
        elapsed = time.monotonic() - self.started
        worked = self.settled() - self.report.skipped
        snapshot = BackfillProgress(
            kind=self.kind,
            total=self.total,
            settled=self.settled(),
            skipped=self.report.skipped,
            failed=self.report.failed,
            elapsed=elapsed,
            rate=worked / elapsed if elapsed > 0 else 0.0,
        )
        self.settings.on_progress(snapshot)

    def finish(self, interrupted: bool) -> BackfillReport:
        self.report.total = self.settled()
        self.report.elapsed = time.monotonic() - self.started
        self.report.interrupted = interrupted
        if self.settings.checkpoint is not None:
            self.settings.checkpoint.save(self.tracker.checkpoint)
        self.progress()
        return self.report


async def run_backfill(
    kind: str,
    items: Iterable[T] | AsyncIterable[T],
    work: Work[T],
    settings: RunSettings,
    *,
    total: int | None = None,
    source: str | None = None,
) -> BackfillReport:
    """Run ``work`` over ``items`` as `RunSettings` says.

    The checkpoint is saved even when cancelled (Ctrl-C) or stopped by a fatal error (401, 403,
    raised as is), so ``resume`` continues where this run stopped.
    """
    store = settings.checkpoint
    checkpoint = store.load(kind, source) if store is not None else Checkpoint(kind, source)
    run = _Run(kind, _aiter(items), work, settings, checkpoint, total)
    interrupted = True
    try:
        with run.scope:
            async with anyio.create_task_group() as group:
                for _ in range(settings.concurrency):
                    group.start_soon(run.worker)
        interrupted = run.fatal is not None
    finally:
        report = run.finish(interrupted)  # no await: runs to the end even when cancelled
    if run.fatal is not None:
        raise run.fatal
    return report


async def _aiter(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
