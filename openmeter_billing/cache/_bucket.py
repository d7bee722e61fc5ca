"""A token bucket that keeps upstream entitlement reads under OpenMeter's rate limit.

OpenMeter Cloud allows about 30 value reads per second per organisation. Cold misses (a caller is
waiting) come first; background refreshes only spend tokens above a reserve, so a burst of
refreshes can never make a waiting caller wait longer. Loop-agnostic (a lock, no asyncio
primitives), so one bucket serves every event loop and thread of a client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

__all__ = ["RateLimiter", "TokenBucket"]


@runtime_checkable
class RateLimiter(Protocol):
    """Grants upstream requests; `TokenBucket` in one process, a Redis bucket across servers."""

    async def acquire(self, *, priority: bool) -> float:
        """Take one token: 0.0 when taken, else the seconds to wait before asking again."""
        ...

    def pause(self, seconds: float) -> None:
        """Stop granting for ``seconds`` (the server answered 429 with ``Retry-After``)."""
        ...


class TokenBucket:
    """``rate`` tokens per second, up to ``burst`` saved; ``reserve`` kept for cold misses.

    Args:
        rate: Sustained upstream requests per second.
        burst: Tokens that may be saved up (default: one second's worth).
        reserve: Tokens that background refreshes may not spend (default: a fifth of ``burst``).
        clock: Seconds, monotonic in practice; injectable for tests.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        reserve: float | None = None,
        clock: Callable[[], float],
    ) -> None:
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self.reserve = reserve if reserve is not None else min(self.burst - 1.0, self.burst / 5)
        self._clock = clock
        self._tokens = self.burst
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<TokenBucket rate={self.rate:g}/s burst={self.burst:g}>"

    def take(self, *, priority: bool) -> float:
        """Synchronous `acquire`: 0.0 when a token was taken, else seconds until one is free."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return self._paused_until - now
            elapsed = max(0.0, now - self._updated)
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._updated = now
            floor = 1.0 if priority else 1.0 + self.reserve
            if self._tokens >= floor:
                self._tokens -= 1.0
                return 0.0
            return (floor - self._tokens) / self.rate

    async def acquire(self, *, priority: bool) -> float:
        """Take one token (see `RateLimiter.acquire`)."""
        return self.take(priority=priority)

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds``; the saved tokens are spent down to zero."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._tokens = 0.0
            self._updated = self._paused_until
