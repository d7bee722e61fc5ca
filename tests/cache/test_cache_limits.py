"""The token bucket, the refresher under it, configuration errors, and the sync fast path."""

from __future__ import annotations

import pickle

import pytest
from cache.conftest import FakeClock, Upstream, make_client, seed, until

from openmeter_billing import (
    ConfigurationError,
    EntitlementCache,
    OpenMeterBilling,
)
from openmeter_billing.cache import TokenBucket
from openmeter_billing.local import LocalOpenMeter


def test_the_bucket_grants_its_burst_then_its_rate(clock: FakeClock) -> None:
    bucket = TokenBucket(10, clock=clock)
    granted = sum(bucket.take(priority=True) == 0 for _ in range(100))
    assert granted == 10
    assert bucket.take(priority=True) == pytest.approx(0.1)
    clock.advance(0.5)
    assert sum(bucket.take(priority=True) == 0 for _ in range(100)) == 5


def test_refreshes_leave_a_reserve_for_cold_misses(clock: FakeClock) -> None:
    bucket = TokenBucket(10, clock=clock)  # reserve: 2 of the 10
    assert sum(bucket.take(priority=False) == 0 for _ in range(100)) == 8
    assert bucket.take(priority=False) > 0
    assert sum(bucket.take(priority=True) == 0 for _ in range(100)) == 2


def test_a_pause_grants_nothing_until_it_ends(clock: FakeClock) -> None:
    bucket = TokenBucket(10, clock=clock)
    bucket.pause(2)
    assert bucket.take(priority=True) == pytest.approx(2)
    clock.advance(2.2)
    assert bucket.take(priority=True) == 0


async def test_background_refreshes_stay_within_the_rate(
    upstream: Upstream, clock: FakeClock
) -> None:
    cache = EntitlementCache(ttl=10, clock=clock, rate=5)  # burst 5, reserve 1: 4 refreshes
    customers = ["acme", *(f"c{i}" for i in range(1, 10))]  # one key each: no bulk refresh
    async with make_client(upstream, cache) as client:
        await seed(client)
        for customer in customers[1:]:
            await client.customers.create(name=customer, key=customer)
            await client.entitlements.create(customer, {"type": "boolean", "featureKey": "tokens"})
        for customer in customers:  # fresh=True reads skip the bucket: it stays full
            await client.entitlements.value(customer, "tokens", fresh=True)
        clock.advance(11)
        upstream.paths.clear()
        answers = [await client.entitlements.value(c, "tokens") for c in customers]
        assert {a.source for a in answers} == {"stale"}
        await until(lambda: upstream.value_reads() == 4)
        await until(lambda: cache.stats.refreshes == 4)
        assert upstream.value_reads() == 4  # the bucket is empty until the clock moves
        clock.advance(1.2)  # 6 tokens' worth, capped at the burst of 5, less the reserve: 4
        await until(lambda: upstream.value_reads() == 8)
        clock.advance(1.2)
        await until(lambda: upstream.value_reads() == 10)
        assert (await client.entitlements.value("c9", "tokens")).source == "cache"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"ttl": 0}, "ttl"),
        ({"ttl": "30"}, "ttl"),
        ({"feature_ttl": {"x": -1}}, "feature_ttl['x']"),
        ({"stale_if_error": -1}, "stale_if_error"),
        ({"max_size": 0}, "max_size"),
        ({"miss_timeout": float("inf")}, "miss_timeout"),
        ({"fallback": "open"}, "fallback"),
        ({"feature_fallback": {"x": "allow"}}, "feature_fallback['x']"),
        ({"rate": 0}, "rate"),
        ({"refresh_concurrency": 0}, "refresh_concurrency"),
    ],
)
def test_bad_settings_name_the_setting(options: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigurationError, match=field.replace("[", r"\[")):
        EntitlementCache(**options)  # type: ignore[arg-type]


def test_a_cache_serves_one_client_and_must_be_a_cache() -> None:
    local = LocalOpenMeter()
    cache = EntitlementCache()
    local.client(cache=cache)
    with pytest.raises(ConfigurationError, match="one cache per client"):
        local.client(cache=cache)
    with pytest.raises(ConfigurationError, match="EntitlementCache"):
        local.client(cache={"ttl": 30})  # type: ignore[arg-type]


async def test_with_options_copies_share_the_cache(
    om: OpenMeterBilling, upstream: Upstream
) -> None:
    await om.entitlements.value("acme", "tokens")
    copy = om.with_options(timeout=2)
    assert (await copy.entitlements.value("acme", "tokens")).source == "cache"
    assert copy.cache is om.cache


async def test_cached_values_pickle_without_the_clock_or_secrets(om: OpenMeterBilling) -> None:
    await om.entitlements.value("acme", "tokens")
    value = await om.entitlements.value("acme", "tokens")
    restored = pickle.loads(pickle.dumps(value))
    assert (restored.balance, restored.source) == (100, "cache")


def test_the_sync_client_answers_a_fresh_cached_value_without_the_thread_hop() -> None:
    local = LocalOpenMeter()
    with local.sync_client(cache=EntitlementCache(), max_retries=0) as client:
        client.meters.create(
            slug="tokens", event_type="tokens", aggregation="SUM", value_property="$.tokens"
        )
        client.features.create(key="tokens", name="Tokens", meter_slug="tokens")
        client.customers.create(name="Acme", key="acme")
        client.entitlements.create("acme", {"type": "boolean", "featureKey": "tokens"})
        assert client.entitlements.value("acme", "tokens").source == "live"
        hops = []
        run = client._loop.run

        def counting(func):  # type: ignore[no-untyped-def]
            hops.append(func)
            return run(func)

        client._loop.run = counting  # type: ignore[method-assign]
        assert client.entitlements.value("acme", "tokens").source == "cache"
        assert client.entitlements.has("acme", "tokens") is True
        assert client.usage.has("acme", "tokens") is True
        assert hops == []
        assert client.entitlements.value("acme", "tokens", fresh=True).source == "live"
        assert len(hops) == 1
        assert client.cache is not None and client.cache.stats.hits >= 3
