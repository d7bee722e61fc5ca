"""What keeps two `usage.consume` calls in one process from spending the same balance twice.

OpenMeter counts an event a little after it is ingested, so a balance read right after a consume
may not show it yet. The guard serialises consumes per customer and feature, and remembers the
usage this process sent until OpenMeter's reported usage catches up (or the period resets, or a
minute passes). Other processes are not covered: see docs/topups.md ("consume is advisory").
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

import anyio

__all__ = ["ConsumeGuard"]

#: How long sent usage is assumed not yet counted. OpenMeter counts events within seconds;
#: after this the server's numbers are trusted again even if they never caught up.
PENDING_TTL = 60.0

GuardKey = tuple[str, str]


@dataclass
class _Pending:
    period_start: datetime | None
    base_usage: float  # OpenMeter's usage when the first of these events was sent
    expires: float
    amounts: dict[str, float] = field(default_factory=dict)  # by event id: a replay counts once

    def unreflected(self, usage: float) -> float:
        return max(self.base_usage + sum(self.amounts.values()) - usage, 0.0)


class ConsumeGuard:
    """Per-(customer, feature) locks plus the usage sent but not yet counted by OpenMeter."""

    def __init__(self, ttl: float = PENDING_TTL) -> None:
        self._ttl = ttl
        self._locks: dict[GuardKey, tuple[anyio.Lock, int]] = {}
        self._pending: dict[GuardKey, _Pending] = {}

    @asynccontextmanager
    async def hold(self, key: GuardKey) -> AsyncIterator[None]:
        """Exclusive use of ``key`` in this process; the lock is dropped when nobody waits."""
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or anyio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def unreflected(self, key: GuardKey, period_start: datetime | None, usage: float) -> float:
        """Usage this process sent that OpenMeter's ``usage`` does not include yet."""
        pending = self._pending.get(key)
        if pending is None:
            return 0.0
        missing = pending.unreflected(usage)
        stale = time.monotonic() > pending.expires or pending.period_start != period_start
        if stale or missing == 0:
            del self._pending[key]
            return 0.0
        return missing

    def record(
        self,
        key: GuardKey,
        period_start: datetime | None,
        usage: float,
        sent: Iterable[tuple[str, float]],
    ) -> None:
        """Remember events just sent (by id), against OpenMeter's ``usage`` read before them."""
        pending = self._pending.get(key)
        if pending is None:
            pending = _Pending(period_start, usage, 0.0)
            self._pending[key] = pending
        pending.expires = time.monotonic() + self._ttl
        pending.amounts.update(sent)
