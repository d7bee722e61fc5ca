"""Settings, counters and callback payloads of the ingest pipeline (``events.submit``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal

from .._exceptions import ConfigurationError, OpenMeterBillingError

__all__ = [
    "DeadLetter",
    "IngestOptions",
    "IngestStats",
    "OverflowPolicy",
    "QueueFullError",
]

OverflowPolicy = Literal["block", "drop_newest", "drop_oldest", "raise"]
_POLICIES = ("block", "drop_newest", "drop_oldest", "raise")


class QueueFullError(OpenMeterBillingError):
    """`events.submit` found the memory queue full (policy ``raise``, or ``block`` timed out).

    The event was not queued; ``event_id`` is the id it would have had, so a retry can reuse it.
    """

    def __init__(self, message: str, *, event_id: str) -> None:
        super().__init__(message)
        self.event_id = event_id


@dataclass(frozen=True)
class DeadLetter:
    """An event OpenMeter refused on its own (HTTP 400 after the batch was split to find it).

    Retrying it would fail again, so it is taken out of the stream and handed to
    ``on_dead_letter`` (and, with a durable outbox, kept in its dead-letter table).
    """

    event_id: str
    body: bytes
    status: int
    reason: str


@dataclass(frozen=True)
class IngestOptions:
    """How `events.submit` queues and sends events. Every limit is a bound you can reason about.

    Args:
        batch_size: Events per request at most (a full batch wakes the flusher at once).
        batch_bytes: Request body size at most, in bytes.
        flush_interval: Seconds a partial batch may wait before it is sent.
        max_in_flight: Batches sent concurrently.
        max_queue_events: Memory queue bound, in events (durable outboxes are bound by disk).
        max_queue_bytes: Memory queue bound, in bytes of encoded events.
        overflow: What a full memory queue does with a new event: ``block`` (wait up to
            ``block_timeout``, then raise `QueueFullError`; inside an event loop's own thread it
            cannot wait for the flusher on that loop and raises at once), ``drop_newest``,
            ``drop_oldest`` or ``raise``. Dropped ids reach ``on_drop``.
        block_timeout: Seconds ``block`` waits for room.
        max_attempts: Sends of one batch before a memory-mode client gives up on it (its ids
            reach ``on_drop`` with reason ``retries exhausted``). Durable outboxes always retry
            transient failures until they succeed. None: retry forever in memory mode too.
        initial_backoff: First retry delay in seconds (doubles, up to 25 % jitter).
        max_backoff: Longest retry delay, also the cap on a server's ``Retry-After``.
        drain_timeout: Seconds close/exit spends sending what is queued (None: the client's
            drain timeout, 2 s).
        remember_sent: How many delivered events `events.reconcile` can check and re-send.
        on_drop: ``(ids, reason)`` for events that will never be sent (overflow, shutdown in
            memory mode, retries exhausted).
        on_error: ``(ids, exception)`` after each failed send of a batch (it will be retried).
        on_dead_letter: Receives a `DeadLetter` for each event OpenMeter rejected.
        on_submitted: ``(event_id, subject, type)`` right after an event is queued or committed:
            the place for a local cache (entitlement balances) to hear about usage.

    Callbacks run on the flusher's thread or the submitting thread; keep them short, they must
    not raise (an exception is logged and ignored).
    """

    batch_size: int = 500
    batch_bytes: int = 1_000_000
    flush_interval: float = 1.0
    max_in_flight: int = 4
    max_queue_events: int = 100_000
    max_queue_bytes: int = 64 * 1024 * 1024
    overflow: OverflowPolicy = "block"
    block_timeout: float = 1.0
    max_attempts: int | None = 12
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    drain_timeout: float | None = None
    remember_sent: int = 10_000
    on_drop: Callable[[Sequence[str], str], object] | None = field(default=None, repr=False)
    on_error: Callable[[Sequence[str], BaseException], object] | None = field(
        default=None, repr=False
    )
    on_dead_letter: Callable[[DeadLetter], object] | None = field(default=None, repr=False)
    on_submitted: Callable[[str, str, str], object] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in _POSITIVE_INTS and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigurationError(
                    f"IngestOptions.{item.name} must be a positive integer, got {value!r}"
                )
            if item.name in _POSITIVE_FLOATS and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise ConfigurationError(
                    f"IngestOptions.{item.name} must be a positive number of seconds, got {value!r}"
                )
        if self.overflow not in _POLICIES:
            raise ConfigurationError(
                f"IngestOptions.overflow must be one of {', '.join(_POLICIES)}; "
                f"got {self.overflow!r}"
            )
        attempts: object = self.max_attempts
        if attempts is not None and (not isinstance(attempts, int) or attempts < 1):
            raise ConfigurationError(
                f"IngestOptions.max_attempts must be a positive integer or None, got "
                f"{self.max_attempts!r}"
            )
        if self.drain_timeout is not None and self.drain_timeout <= 0:
            raise ConfigurationError("IngestOptions.drain_timeout must be positive or None")
        if self.remember_sent < 0:
            raise ConfigurationError("IngestOptions.remember_sent must be 0 or more")


_POSITIVE_INTS = frozenset(
    {"batch_size", "batch_bytes", "max_in_flight", "max_queue_events", "max_queue_bytes"}
)
_POSITIVE_FLOATS = frozenset({"flush_interval", "block_timeout", "initial_backoff", "max_backoff"})


@dataclass(frozen=True)
class IngestStats:
    """A snapshot of the pipeline's counters since the client was made (per process).

    ``submitted`` = ``sent`` + ``dropped`` + ``dead_lettered`` + ``pending`` once everything
    settled (``pending``: queued in memory or in flight; with an outbox, rows of this process not
    yet delivered are counted there). ``retried`` counts failed sends that were tried again.
    """

    submitted: int
    sent: int
    retried: int
    dropped: int
    dead_lettered: int
    pending: int


class Counters:
    """Thread-safe counters behind `IngestStats`."""

    __slots__ = ("_lock", "dead_lettered", "dropped", "retried", "sent", "submitted")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.submitted = self.sent = self.retried = self.dropped = self.dead_lettered = 0

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + amount)

    def snapshot(self, pending: int, queued: int = 0) -> IngestStats:
        """The counters now; ``queued``: events the memory queue's fast path counted itself."""
        with self._lock:
            return IngestStats(
                submitted=self.submitted + queued,
                sent=self.sent,
                retried=self.retried,
                dropped=self.dropped,
                dead_lettered=self.dead_lettered,
                pending=pending,
            )
