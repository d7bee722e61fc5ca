"""The background service that refreshes stale cache entries under the token bucket."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ._rules import is_unavailable

if TYPE_CHECKING:
    from ._cache import EntitlementCache
    from ._entry import Key

__all__ = ["Refresher", "refresh_customer"]

logger = logging.getLogger("openmeter_billing")


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
        running: set[asyncio.Task[Any]] = set()
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
                siblings = cache._queue.take_customer(key[0]) if cache._fetch_all else []
                if siblings:  # several of one customer's keys are due: one access request
                    cache.stats.refreshes += 1 + len(siblings)
                    task: asyncio.Task[Any] = loop.create_task(
                        refresh_customer(cache, [key, *siblings])
                    )
                else:
                    cache.stats.refreshes += 1
                    task = cache._flight(key, priority=False, token_taken=True)
                running.add(task)
                task.add_done_callback(running.discard)
                task.add_done_callback(lambda _: wake.set())
        finally:
            cache._queue.unregister(loop)

    async def drain(self) -> None:
        """Nothing to hand over: a refresh not done is simply done by the next reader."""


async def refresh_customer(cache: EntitlementCache, keys: list[Key]) -> None:
    """Refresh several of one customer's keys with one access request (all their features).

    Keys the answer does not name (a feature without an entitlement) go back to the queue and
    are read one by one; a write to the customer meanwhile discards the answer.
    """
    assert cache._fetch_all is not None
    customer = keys[0][0]
    epochs = {key: cache._epoch_of(key) for key in keys}
    cache.stats.upstream += 1
    try:
        values = await cache._fetch_all(customer)
    except Exception as exc:
        if not is_unavailable(exc):
            logger.warning("refreshing %d cached values failed", len(keys), exc_info=True)
        for key in keys:
            cache._read_failed(key)
        return
    now = cache.clock()
    for key in keys:
        value = values.get(key[1])
        if value is None:
            cache._queue.requeue(key)
        elif epochs[key] == cache._epoch_of(key):
            await cache._shared_write(key, value, now)
            cache.store(key[0], key[1], value, fetched_at=now)
