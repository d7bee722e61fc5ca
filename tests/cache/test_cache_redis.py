"""The shared tier against a real Redis: many servers, one upstream read, one bucket.

``OPENMETER_BILLING_TEST_REDIS_URL`` points at the server (``eval "$(bash .ci/redis.sh)"`` starts a
throwaway one). Without it these tests skip, except under CI (``CI=true``), where they fail.
Each test uses its own key prefix. "Servers" are clients with their own RedisEntitlementCache on
one Local OpenMeter, as app servers share one OpenMeter.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

import pytest
from cache.conftest import Upstream, make_client, seed, until

from openmeter_billing import ConfigurationError, OpenMeterBilling
from openmeter_billing.cache import RedisEntitlementCache

pytestmark = pytest.mark.redis
REDIS_ENV = "OPENMETER_BILLING_TEST_REDIS_URL"


def _redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    reason = None
    if not url:
        reason = f"{REDIS_ENV} is not set"
    else:
        parts = urlsplit(url)
        try:
            socket.create_connection((parts.hostname, parts.port or 6379), timeout=1).close()
        except OSError as exc:
            reason = f"no Redis at {parts.hostname}:{parts.port}: {exc}"
    if reason is None:
        assert url is not None
        return url
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f'{reason} (CI=true requires Redis: run `eval "$(bash .ci/redis.sh)"`)')
    pytest.skip(f'{reason}; run `eval "$(bash .ci/redis.sh)"` to test the Redis tier')


Servers = Callable[..., "asyncio.Future[list[OpenMeterBilling]]"]


@pytest.fixture
async def servers(upstream: Upstream) -> AsyncIterator[Any]:
    """``await servers(n, **cache_options)``: n clients sharing one Redis prefix and OpenMeter."""
    url = _redis_url()
    prefix = f"test-{secrets.token_hex(4)}"
    async with AsyncExitStack() as stack:

        async def make(count: int, **options: Any) -> list[OpenMeterBilling]:
            options.setdefault("rate", 1000)
            made = []
            for _ in range(count):
                cache = RedisEntitlementCache(url, prefix=prefix, **options)
                made.append(await stack.enter_async_context(make_client(upstream, cache)))
            return made

        yield make


async def test_a_value_one_server_read_answers_on_another_without_a_request(
    servers: Any, upstream: Upstream
) -> None:
    a, b = await servers(2)
    await seed(a)
    upstream.paths.clear()
    first = await a.entitlements.value("acme", "tokens")
    second = await b.entitlements.value("acme", "tokens")
    assert (first.source, second.source, second.balance) == ("live", "cache", 100)
    assert upstream.value_reads() == 1
    assert b.cache is not None and b.cache.stats.shared_hits == 1


async def test_twenty_servers_with_concurrent_cold_reads_send_one_request(
    servers: Any, upstream: Upstream
) -> None:
    fleet = await servers(20, miss_timeout=5.0)  # peers wait for the lock holder, even when slow
    await seed(fleet[0])
    upstream.paths.clear()
    upstream.mode = "hang"
    reads = [
        asyncio.ensure_future(server.entitlements.value("acme", "tokens"))
        for server in fleet
        for _ in range(50)
    ]
    await until(lambda: upstream.value_reads() == 1)
    upstream.mode = "ok"
    upstream.released.set()
    values = await asyncio.gather(*reads)
    assert {v.balance for v in values} == {100}
    assert upstream.value_reads() == 1


async def test_the_token_bucket_is_shared_by_every_server(servers: Any) -> None:
    fleet = await servers(10, rate=5.0, burst=5.0)
    buckets = [server.cache.limiter for server in fleet]
    started = time.monotonic()
    granted = 0
    for _ in range(5):
        for bucket in buckets:
            granted += await bucket.acquire(priority=True) == 0
    elapsed = time.monotonic() - started
    assert granted <= 5 + 5 * elapsed + 1  # one second's burst plus the refill, for all ten


async def test_an_invalidation_on_one_server_reaches_the_others(
    servers: Any, upstream: Upstream
) -> None:
    a, b = await servers(2)
    await seed(a)
    await a.entitlements.value("acme", "tokens")
    await b.entitlements.value("acme", "tokens")
    assert b.cache is not None and b.cache.peek("acme", "tokens") is not None
    await asyncio.sleep(0.2)  # both listeners subscribed
    await a.entitlements.grants.create(
        "acme", "tokens", {"amount": 50, "effectiveAt": "2025-03-10T08:00:30Z"}
    )
    await until(lambda: b.cache is not None and b.cache.peek("acme", "tokens") is None)
    assert (await b.entitlements.value("acme", "tokens")).balance == 150


async def test_a_server_starting_during_an_outage_answers_from_redis_not_the_fallback(
    servers: Any, upstream: Upstream
) -> None:
    (a,) = await servers(1, ttl=1.0, miss_timeout=0.3)
    await seed(a)
    await a.entitlements.value("acme", "tokens")
    await asyncio.sleep(1.1)  # past the TTL everywhere
    upstream.mode = "down"
    (late,) = await servers(1, ttl=1.0, miss_timeout=0.3)
    value = await late.entitlements.value("acme", "tokens")
    assert (value.source, value.has_access, value.balance) == ("stale_error", True, 100)


async def test_redis_down_means_each_server_works_alone(upstream: Upstream) -> None:
    _redis_url()  # the same skip rule as the other tests
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    cache = RedisEntitlementCache(f"redis://127.0.0.1:{port}/0", rate=1000)
    async with make_client(upstream, cache) as client:
        await seed(client)
        assert (await client.entitlements.value("acme", "tokens")).source == "live"
        assert (await client.entitlements.value("acme", "tokens")).source == "cache"


def test_bad_redis_arguments_are_refused_before_any_connection() -> None:
    with pytest.raises(ConfigurationError, match="redis:// "):
        RedisEntitlementCache("localhost:6379")
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisEntitlementCache("redis://localhost", prefix="")
    assert "secret" not in repr(RedisEntitlementCache("redis://:secret@localhost:6379/0"))
