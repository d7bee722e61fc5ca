"""Pacing for bulk work: a request-rate limit, and which failures are worth another try."""

from __future__ import annotations

import random
import time

import anyio

from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    OperationInProgressError,
    PermissionDeniedError,
)
from .._http import parse_retry_after

__all__ = ["RateLimiter", "is_fatal", "is_transient", "retry_delay"]

#: Longest pause between two tries of one item.
MAX_DELAY = 30.0


class RateLimiter:
    """At most ``rate`` acquisitions per second, with bursts of up to ``burst``.

    A token bucket on the monotonic clock. Create it inside the event loop that uses it (anyio
    locks belong to one loop); a backfill makes one per run.
    """

    def __init__(self, rate: float, *, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst if burst is not None else min(rate, 10.0))
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = anyio.Lock()

    async def acquire(self) -> None:
        """Wait until one more request fits under the rate."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await anyio.sleep((1.0 - self._tokens) / self.rate)


def is_fatal(error: BaseException) -> bool:
    """Whether every other item would fail alike (bad token, no permission): stop the run."""
    return isinstance(error, (AuthenticationError, PermissionDeniedError))


def is_transient(error: BaseException) -> bool:
    """Whether trying again later may succeed: network trouble, 408, 409 in flight, 429, 5xx."""
    if isinstance(error, (APIConnectionError, OperationInProgressError)):
        return True
    if isinstance(error, APIStatusError):
        return error.status_code in (408, 429) or error.status_code >= 500
    return False


def retry_delay(error: BaseException, attempt: int, base: float) -> float:
    """Seconds before try ``attempt + 1``: ``Retry-After`` when sent, else jittered backoff."""
    if isinstance(error, APIStatusError):
        hinted = parse_retry_after(error.response.headers)
        if hinted is not None:
            return min(MAX_DELAY, hinted)
    backoff = min(MAX_DELAY, base * 2.0 ** (attempt - 1))
    return backoff * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not security
