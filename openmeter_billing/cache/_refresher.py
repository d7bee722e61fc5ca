"""The background service that refreshes stale cache entries under the token bucket."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..types.entitlements import EntitlementValue
    from ._cache import EntitlementCache

__all__ = ["Refresher"]


class Refresher:
    """Runs under the client's runtime on every event loop the client uses.

    Its state lives in the cache behind a lock (the queue of keys to refresh), so a new event loop
    or a forked child simply starts another `run` over the same queue. Refreshes go through the
    cache's single-flight, so a key never has two reads in flight, and take tokens without
    priority, so waiting callers always go first.
    """

    name = "entitlement-cache-refresher"

    def __init__(self, cache: EntitlementCache) -> None:
        self._cache = cache

    async def run(self) -> None:
        """Refresh queued keys, most recently read first, until cancelled."""
        cache = self._cache
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        cache._queue.register(loop, wake)
        running: set[asyncio.Task[EntitlementValue]] = set()
        try:
            while True:
                key = cache._queue.pop() if len(running) < cache.refresh_concurrency else None
                if key is None:
                    wake.clear()
                    if len(cache._queue) == 0 or len(running) >= cache.refresh_concurrency:
                        await wake.wait()  # set by a stale read or a finished refresh
                    continue
                wait = await cache.limiter.acquire(priority=False)
                if wait > 0:
                    cache._queue.requeue(key)
                    await asyncio.sleep(min(wait, 0.25))
                    continue
                cache.stats.refreshes += 1
                task = cache._flight(key, priority=False, token_taken=True)
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: wake.set())
        finally:
            cache._queue.unregister(loop)

    async def drain(self) -> None:
        """Nothing to hand over: a refresh not done is simply done by the next reader."""
