"""`RedisEntitlementCache`: one entitlement cache shared by every app server (extra ``redis``).

Each server keeps the in-memory tier in front (a fresh hit never leaves the process); behind it,
values and their read time live in Redis, so a server that starts (or restarts during an outage)
answers from what its peers read instead of denying. One server refreshes a key at a time (a
Redis lock); the others wait for its answer. The token bucket lives in Redis too, so 20 servers
together stay under OpenMeter's rate limit. Invalidations are published, and every server drops
its in-memory copy. If Redis itself fails, each server carries on alone (logged), as it would
without Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .._exceptions import ConfigurationError
from ..types.entitlements import EntitlementValue
from ._bucket import TokenBucket
from ._cache import EntitlementCache
from ._entry import Key

if TYPE_CHECKING:
    from .._runtime import Runtime

try:
    import redis.asyncio as aioredis
    from redis.exceptions import RedisError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "RedisEntitlementCache needs redis-py: pip install 'openmeter-billing[redis]'"
    ) from exc

__all__ = ["RedisEntitlementCache", "RedisTokenBucket"]

logger = logging.getLogger("openmeter_billing")

# KEYS[1]: the bucket hash. ARGV: rate, burst, floor (1 or 1+reserve). Redis's clock, so servers
# with skewed clocks share one bucket. Returns the seconds to wait ("0" when a token was taken).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, floor = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'paused')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
local paused = tonumber(state[3]) or 0
if now < paused then return tostring(paused - now) end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= floor then tokens = tokens - 1 else wait = (floor - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 60000)
return tostring(wait)
"""
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HSET', KEYS[1], 'paused', tostring(now + tonumber(ARGV[1])), 'tokens', '0')
redis.call('PEXPIRE', KEYS[1], 60000)
return 1
"""


class _Connections:
    """One redis-py client per event loop (its connections belong to the loop that opened them)."""

    def __init__(self, url: str | None, given: aioredis.Redis | None) -> None:
        self._url = url
        self._given = given
        self._clients: dict[asyncio.AbstractEventLoop, aioredis.Redis] = {}

    def get(self) -> aioredis.Redis:
        if self._given is not None:
            return self._given
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            assert self._url is not None
            client = aioredis.Redis.from_url(self._url, socket_timeout=0.5)
            self._clients[loop] = client
        return client

    async def close_this_loop(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


class RedisTokenBucket:
    """A `RateLimiter` kept in Redis: every server takes from the same bucket."""

    def __init__(self, cache: RedisEntitlementCache, rate: float, burst: float | None) -> None:
        self._cache = cache
        self._shape = TokenBucket(rate, burst=burst, clock=time.monotonic)  # for the numbers
        self._local = TokenBucket(rate, burst=burst, clock=time.monotonic)  # if Redis fails

    async def acquire(self, *, priority: bool) -> float:
        """Take a token from the shared bucket (the local one while Redis is unreachable)."""
        floor = 1.0 if priority else 1.0 + self._shape.reserve
        try:
            client = self._cache._redis.get()
            result = await client.eval(
                _TAKE, 1, self._cache._key("bucket"), self._shape.rate, self._shape.burst, floor
            )
            return float(result)
        except RedisError:
            logger.warning("redis unavailable: rate limiting this server alone", exc_info=True)
            return self._local.take(priority=priority)

    def pause(self, seconds: float) -> None:
        """Pause every server (written to Redis in the background) and this one at once."""
        self._local.pause(seconds)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        task = loop.create_task(self._pause(seconds))
        self._cache._background.add(task)
        task.add_done_callback(self._cache._background.discard)

    async def _pause(self, seconds: float) -> None:
        try:
            await self._cache._redis.get().eval(_PAUSE, 1, self._cache._key("bucket"), seconds)
        except RedisError:
            logger.warning("redis unavailable: could not share a rate-limit pause", exc_info=True)


class RedisEntitlementCache(EntitlementCache):
    """An `EntitlementCache` whose values, refresh locks and token bucket live in Redis.

    Example: ``OpenMeterBilling(cache=RedisEntitlementCache("redis://cache:6379/0"))``.

    Args:
        redis: A Redis URL (a connection pool per event loop is made from it), or your own
            ``redis.asyncio.Redis`` client (then used on its own event loop only).
        prefix: Namespace of every key, so several environments can share one Redis.
        lock_timeout: Seconds one server may hold a key's refresh lock.
        burst: Tokens the shared bucket may save up (default: one second's worth).
        **options: As for `EntitlementCache` (``ttl``, ``stale_if_error``, ``rate``, ...).
    """

    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        prefix: str = "openmeter-billing",
        lock_timeout: float = 5.0,
        burst: float | None = None,
        clock: Callable[[], float] = time.time,
        **options: Any,
    ) -> None:
        if isinstance(redis, str):
            if not redis.startswith(("redis://", "rediss://", "unix://")):
                raise ConfigurationError(
                    "redis must be a redis:// (or rediss://, unix://) URL or a "
                    "redis.asyncio.Redis client"
                )
            self._redis = _Connections(redis, None)
        elif isinstance(redis, aioredis.Redis):
            self._redis = _Connections(None, redis)
        else:
            raise ConfigurationError(
                f"redis must be a URL or a redis.asyncio.Redis client, got {type(redis).__name__}"
            )
        if not prefix or any(c in prefix for c in " \n"):
            raise ConfigurationError(f"prefix must be a non-empty word, got {prefix!r}")
        self.prefix = prefix
        self.lock_timeout = lock_timeout
        self._background: set[asyncio.Task[None]] = set()
        self._server_id = secrets.token_hex(8)
        super().__init__(clock=clock, **options)
        self.limiter = options.get("rate_limiter") or RedisTokenBucket(
            self, options.get("rate", 25.0), burst
        )

    def __repr__(self) -> str:  # never the URL: it may carry a password
        return f"<RedisEntitlementCache prefix={self.prefix!r} ttl={self.ttl:g}s size={len(self)}>"

    def attach(
        self,
        *,
        fetch_value: Callable[..., Awaitable[EntitlementValue]],
        fetch_all: Callable[[str], Awaitable[dict[str, EntitlementValue]]],
        runtime: Runtime,
    ) -> None:
        """Bind to a client and start the listener that applies other servers' invalidations."""
        from ._redis_listener import InvalidationListener

        super().attach(fetch_value=fetch_value, fetch_all=fetch_all, runtime=runtime)
        runtime.add_service(InvalidationListener(self))

    def _key(self, *parts: str) -> str:
        return ":".join([self.prefix, *(quote(part, safe="") for part in parts)])

    async def _shared_read(self, key: Key) -> tuple[EntitlementValue, float] | None:
        try:
            raw = await self._redis.get().get(self._key("value", *key))
        except RedisError:
            logger.warning("redis unavailable: reading OpenMeter directly", exc_info=True)
            return None
        if raw is None:
            return None
        try:
            stored = json.loads(raw)
            return EntitlementValue.model_validate(stored["value"]), float(stored["at"])
        except (ValueError, KeyError, TypeError):
            return None  # written by something else: ignore it and read OpenMeter

    async def _shared_write(self, key: Key, value: EntitlementValue, fetched_at: float) -> None:
        body = json.dumps({"value": value.to_dict(), "at": fetched_at}, separators=(",", ":"))
        keep = max(self.stale_if_error, self._ttl(key[1])) + 1
        try:
            pipe = self._redis.get().pipeline(transaction=False)
            pipe.set(self._key("value", *key), body, px=int(keep * 1000))
            pipe.sadd(self._key("customer", key[0]), key[1])
            pipe.pexpire(self._key("customer", key[0]), int(keep * 1000))
            pipe.delete(self._key("lock", *key))
            await pipe.execute()
        except RedisError:
            logger.warning("redis unavailable: value kept on this server only", exc_info=True)

    async def _shared_claim(self, key: Key) -> bool:
        try:
            taken = await self._redis.get().set(
                self._key("lock", *key),
                self._server_id,
                nx=True,
                px=int(self.lock_timeout * 1000),
            )
        except RedisError:
            return True  # no Redis, no coordination: read it ourselves
        return bool(taken)

    async def _shared_wait(
        self, key: Key, *, after: float | None
    ) -> tuple[EntitlementValue, float] | None:
        """Another server holds the lock: wait (up to ``miss_timeout``) for its answer."""
        deadline = time.monotonic() + self.miss_timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            found = await self._shared_read(key)
            if found is not None and (after is None or found[1] > after):
                return found
        return None

    async def _shared_invalidate(self, customers: list[str], feature_key: str | None) -> None:
        try:
            client = self._redis.get()
            doomed: list[str] = []
            for customer in customers:
                features = (
                    [feature_key]
                    if feature_key
                    else await client.smembers(self._key("customer", customer))
                )
                doomed += [self._key("value", customer, _text(f)) for f in features]
                if not feature_key:
                    doomed.append(self._key("customer", customer))
            if not customers:
                doomed += [k async for k in client.scan_iter(match=self._key("value") + ":*")]
            if doomed:
                await client.delete(*doomed)
            message = {"from": self._server_id, "customers": customers, "feature": feature_key}
            await client.publish(self._key("invalidate"), json.dumps(message))
        except RedisError:
            logger.warning("redis unavailable: invalidation applied on this server only")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
