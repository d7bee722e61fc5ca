"""Applies invalidations published by other servers to this server's in-memory tier."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

if TYPE_CHECKING:
    from .redis import RedisEntitlementCache

__all__ = ["InvalidationListener"]

logger = logging.getLogger("openmeter_billing")


class InvalidationListener:
    """A background service: subscribes to the cache's channel on each event loop."""

    name = "entitlement-cache-invalidations"

    def __init__(self, cache: RedisEntitlementCache) -> None:
        self._cache = cache

    async def run(self) -> None:
        """Listen until cancelled; reconnect (after a pause) when Redis goes away."""
        cache = self._cache
        try:
            while True:
                try:
                    await self._listen()
                except RedisError:
                    logger.warning("redis unavailable: invalidations from other servers paused")
                    await asyncio.sleep(1.0)
        finally:
            await asyncio.shield(cache._redis.close_this_loop())

    async def _listen(self) -> None:
        cache = self._cache
        pubsub = cache._redis.get().pubsub()
        try:
            await pubsub.subscribe(cache._key("invalidate"))
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    self._apply(message.get("data"))
        finally:
            await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]

    def _apply(self, data: object) -> None:
        try:
            body = json.loads(data)  # type: ignore[arg-type]
            if body.get("from") == self._cache._server_id:
                return
            feature = body.get("feature")
            for customer in body.get("customers") or [None]:
                self._cache.invalidate_local(customer, feature)
        except (ValueError, TypeError, AttributeError):
            logger.warning("ignored a malformed cache invalidation message")

    async def drain(self) -> None:
        """Nothing is pending: invalidations are applied as they arrive."""
