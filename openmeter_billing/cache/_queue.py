"""Thread-safe bookkeeping of the cache: the refresh queue and cached entitlement terms."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import OrderedDict
from collections.abc import Collection

from ..types.entitlements import Entitlement
from ._entry import Key

__all__ = ["Definitions", "RefreshQueue"]


class RefreshQueue:
    """Keys waiting for a background refresh, most recently read last; wakes every refresher.

    Loop-agnostic (a lock, and ``call_soon_threadsafe`` to wake a refresher on another loop), so
    the sync facade's loop thread, a second event loop and a forked child all share it.
    """

    def __init__(self) -> None:
        self._pending: OrderedDict[Key, None] = OrderedDict()
        self._wakers: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def __contains__(self, key: object) -> bool:
        return key in self._pending  # one dict lookup: atomic, no lock needed

    def push(self, key: Key) -> None:
        """Queue ``key`` (again: it moves to the end) and wake the refreshers."""
        with self._lock:
            self._pending[key] = None
            self._pending.move_to_end(key)
            wakers = list(self._wakers.items())
        for loop, event in wakers:
            _wake(loop, event)

    def pop(self) -> Key | None:
        """The most recently read key, or None."""
        with self._lock:
            if not self._pending:
                return None
            key, _ = self._pending.popitem(last=True)
            return key

    def take_customer(self, customer: str) -> list[Key]:
        """Remove and return every queued key of ``customer`` (for one bulk refresh)."""
        with self._lock:
            keys = [key for key in self._pending if key[0] == customer]
            for key in keys:
                del self._pending[key]
            return keys

    def requeue(self, key: Key) -> None:
        """Put back a key the rate limit did not allow yet (behind newer reads)."""
        with self._lock:
            self._pending[key] = None
            self._pending.move_to_end(key, last=False)

    def register(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        """A refresher runs on ``loop``: set ``event`` when work arrives."""
        with self._lock:
            self._wakers[loop] = event

    def unregister(self, loop: asyncio.AbstractEventLoop) -> None:
        """The refresher on ``loop`` stopped."""
        with self._lock:
            self._wakers.pop(loop, None)


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        event.set()
    elif not loop.is_closed():
        with contextlib.suppress(RuntimeError):  # closed between the check and the call
            loop.call_soon_threadsafe(event.set)


class Definitions:
    """Entitlements (terms, usage period) that ``usage.balance`` read, each with its expiry."""

    def __init__(self, max_size: int) -> None:
        self._items: dict[Key, tuple[Entitlement, float]] = {}
        self._max_size = max_size

    def get(self, key: Key, now: float) -> Entitlement | None:
        """The entitlement if it has not expired at ``now``."""
        found = self._items.get(key)
        return None if found is None or now >= found[1] else found[0]

    def put(self, key: Key, entitlement: Entitlement, expires: float) -> None:
        """Keep ``entitlement`` until ``expires`` (everything goes when the table is full)."""
        if len(self._items) >= self._max_size:
            self._items.clear()
        self._items[key] = (entitlement, expires)

    def drop(self, customers: Collection[str] | None, feature_key: str | None) -> None:
        """Forget the customers' (everyone's) entitlements, of one feature or all."""
        for key in list(self._items):
            if (customers is None or key[0] in customers) and feature_key in (None, key[1]):
                del self._items[key]
