"""The bounded in-memory queue between `events.submit` and the flusher (thread-safe, loop-free).

Items are ``(event id, encoded event)``: events are encoded once, at submit, and a batch body is
their bytes joined, so a retry sends the very same bytes. A `threading.Condition` (not an
asyncio primitive) guards it, so submitters on any thread and flushers on any event loop share
one queue; after a fork the engine replaces it.
"""

from __future__ import annotations

import collections
import threading
import time

from .options import OverflowPolicy, QueueFullError

__all__ = ["Item", "MemoryQueue"]

Item = tuple[str, bytes]


class MemoryQueue:
    """A FIFO of encoded events bounded in count and bytes, with an overflow policy."""

    def __init__(self, max_events: int, max_bytes: int) -> None:
        self._items: collections.deque[Item] = collections.deque()
        self._bytes = 0
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        self.accepted = 0  # events `offer` queued (counted under the lock, for the stats)

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: Item) -> int:
        """The fast path: queue ``item`` if it fits and return the new length, else 0."""
        size = len(item[1])
        with self._lock:
            if len(self._items) < self._max_events and self._bytes + size <= self._max_bytes:
                self._items.append(item)
                self._bytes += size
                self.accepted += 1
                return len(self._items)
        return 0

    def put(
        self, item: Item, policy: OverflowPolicy, block_timeout: float, may_block: bool
    ) -> list[str]:
        """Queue ``item``; return the ids dropped to make room (or ``[item id]`` if it was)."""
        size = len(item[1])
        with self._lock:
            if self._fits(size):
                self._append(item, size)
                return []
            if policy == "drop_newest":
                return [item[0]]
            if policy == "drop_oldest":
                return self._evict_for(item, size)
            if policy == "block" and may_block and self._wait_for_room(size, block_timeout):
                self._append(item, size)
                return []
        raise QueueFullError(
            f"the ingest queue is full ({self._max_events} events / {self._max_bytes} bytes); "
            "the event was not queued (raise max_queue_events, use a durable outbox, or pick "
            "another overflow policy)",
            event_id=item[0],
        )

    def _fits(self, size: int) -> bool:
        return len(self._items) < self._max_events and self._bytes + size <= self._max_bytes

    def _append(self, item: Item, size: int) -> None:
        self._items.append(item)
        self._bytes += size

    def _evict_for(self, item: Item, size: int) -> list[str]:
        dropped: list[str] = []
        while self._items and not self._fits(size):
            old_id, old_body = self._items.popleft()
            self._bytes -= len(old_body)
            dropped.append(old_id)
        if not self._fits(size):  # one event larger than the whole queue
            return [*dropped, item[0]]
        self._append(item, size)
        return dropped

    def _wait_for_room(self, size: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._fits(size):
            left = deadline - time.monotonic()
            if left <= 0 or not self._room.wait(left):
                return self._fits(size)
        return True

    def take(self, max_events: int, max_bytes: int) -> list[Item]:
        """Remove and return the oldest events that fit one batch (at least one if any)."""
        with self._lock:
            batch: list[Item] = []
            total = 2  # the brackets of the JSON array
            while self._items and len(batch) < max_events:
                size = len(self._items[0][1]) + 1
                if batch and total + size > max_bytes:
                    break
                item = self._items.popleft()
                batch.append(item)
                total += size
                self._bytes -= len(item[1])
            if batch:
                self._room.notify_all()
            return batch

    def take_all(self) -> list[Item]:
        """Remove everything (for reporting what shutdown could not send)."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            self._room.notify_all()
            return items

    def put_back(self, items: list[Item]) -> None:
        """Return a batch that was taken but not sent to the front (ignores the bounds)."""
        with self._lock:
            for item in reversed(items):
                self._items.appendleft(item)
                self._bytes += len(item[1])
