"""The cache's read model on a controllable clock: fresh, stale, stale-if-error, miss, fallback."""

from __future__ import annotations

import asyncio

import pytest
from cache.conftest import FakeClock, Upstream, make_client, seed, until

from openmeter_billing import EntitlementCache, NotFoundError, OpenMeterBilling


async def burn(client: OpenMeterBilling, tokens: float) -> None:
    await client.events.ingest(type="tokens", customer="acme", data={"tokens": tokens})


async def test_a_fresh_value_answers_from_memory_without_a_request(
    om: OpenMeterBilling, upstream: Upstream, clock: FakeClock
) -> None:
    first = await om.entitlements.value("acme", "tokens")
    assert (first.source, first.age, first.balance) == ("live", 0.0, 100)
    clock.advance(29)
    again = [await om.entitlements.value("acme", "tokens") for _ in range(10)]
    assert upstream.value_reads() == 1
    assert {v.source for v in again} == {"cache"}
    assert again[0].age == 29
    assert await om.entitlements.has("acme", "tokens") is True
    assert await om.usage.has("acme", "tokens") is True
    assert upstream.value_reads() == 1
    assert "source" not in again[0].to_dict()  # not OpenMeter's data


async def test_a_stale_value_is_served_while_exactly_one_refresh_runs(
    om: OpenMeterBilling, upstream: Upstream, clock: FakeClock
) -> None:
    await om.entitlements.value("acme", "tokens")
    await burn(om, 40)
    clock.advance(31)
    upstream.mode = "hang"  # the refresh waits, so every read below sees the stale value
    stale = await asyncio.gather(*(om.entitlements.value("acme", "tokens") for _ in range(50)))
    assert {(v.source, v.balance) for v in stale} == {("stale", 100)}
    await until(lambda: upstream.value_reads() == 2)
    upstream.mode = "ok"
    upstream.released.set()
    await until(lambda: om.cache is not None and om.cache.stats.refreshes == 1)
    await until(lambda: om.cache is not None and om.cache.peek("acme", "tokens") is not None)
    refreshed = await om.entitlements.value("acme", "tokens")
    assert (refreshed.source, refreshed.balance) == ("cache", 60)
    assert upstream.value_reads() == 2


async def test_per_feature_ttl(upstream: Upstream, clock: FakeClock) -> None:
    cache = EntitlementCache(ttl=30, feature_ttl={"f1": 5}, clock=clock, rate=1000)
    async with make_client(upstream, cache) as client:
        await seed(client, features=2)
        await client.entitlements.value("acme", "tokens")
        await client.entitlements.value("acme", "f1")
        clock.advance(6)
        assert (await client.entitlements.value("acme", "tokens")).source == "cache"
        assert (await client.entitlements.value("acme", "f1")).source == "stale"


async def test_after_a_failed_refresh_the_old_value_answers_up_to_stale_if_error(
    upstream: Upstream, clock: FakeClock
) -> None:
    cache = EntitlementCache(ttl=30, stale_if_error=600, clock=clock, rate=1000, miss_timeout=0.2)
    async with make_client(upstream, cache) as client:
        await seed(client)
        await client.entitlements.value("acme", "tokens")
        upstream.mode = "down"
        clock.advance(31)
        assert (await client.entitlements.value("acme", "tokens")).source == "stale"
        await until(lambda: cache.stats.errors == 1)
        during = [await client.entitlements.value("acme", "tokens") for _ in range(100)]
        assert {(v.source, v.has_access, v.balance) for v in during} == {("stale_error", True, 100)}
        clock.advance(600)  # past the bound: nothing usable is left, the fallback denies
        gone = await client.entitlements.value("acme", "tokens")
        assert (gone.source, gone.has_access, gone.age) == ("fallback", False, None)


async def test_an_expired_value_past_stale_while_revalidate_waits_for_openmeter(
    om: OpenMeterBilling, upstream: Upstream, clock: FakeClock
) -> None:
    await om.entitlements.value("acme", "tokens")
    await burn(om, 10)
    clock.advance(30 + 60 + 1)
    value = await om.entitlements.value("acme", "tokens")
    assert (value.source, value.balance) == ("live", 90)


async def test_one_thousand_concurrent_cold_reads_send_one_request(
    om: OpenMeterBilling, upstream: Upstream
) -> None:
    upstream.mode = "hang"
    reads = [asyncio.ensure_future(om.entitlements.value("acme", "tokens")) for _ in range(1000)]
    await until(lambda: upstream.value_reads() == 1)
    upstream.mode = "ok"
    upstream.released.set()
    values = await asyncio.gather(*reads)
    assert upstream.value_reads() == 1
    assert {v.balance for v in values} == {100}


async def test_a_cold_miss_past_its_deadline_gets_the_feature_fallback(
    upstream: Upstream, clock: FakeClock
) -> None:
    cache = EntitlementCache(
        clock=clock, miss_timeout=0.05, rate=1000, feature_fallback={"f1": "fail_open"}
    )
    async with make_client(upstream, cache) as client:
        await seed(client, features=2)
        upstream.mode = "hang"
        closed = await client.entitlements.value("acme", "tokens")
        opened = await client.entitlements.value("acme", "f1")
        assert (closed.source, closed.has_access) == ("fallback", False)
        assert (opened.source, opened.has_access) == ("fallback", True)
        upstream.mode = "ok"
        upstream.released.set()  # the read goes on and fills the cache for the next caller
        await until(lambda: cache.peek("acme", "tokens") is not None)
        assert (await client.entitlements.value("acme", "tokens")).balance == 100


async def test_an_outage_on_a_cold_key_answers_the_fallback_at_once_after_the_first_failure(
    upstream: Upstream, clock: FakeClock
) -> None:
    cache = EntitlementCache(clock=clock, rate=1000, fallback="fail_open")
    async with make_client(upstream, cache) as client:
        await seed(client)
        upstream.mode = "status"
        values = [await client.entitlements.value("acme", "tokens") for _ in range(20)]
        assert {(v.source, v.has_access) for v in values} == {("fallback", True)}
        assert upstream.value_reads() == 1  # the failure is remembered for a second
        clock.advance(1.5)
        await client.entitlements.value("acme", "tokens")
        assert upstream.value_reads() == 2


async def test_client_errors_are_raised_not_hidden_behind_the_fallback(
    om: OpenMeterBilling,
) -> None:
    with pytest.raises(NotFoundError):
        await om.entitlements.value("acme", "no_such_feature")


async def test_fresh_true_asks_openmeter_and_updates_the_cache(
    om: OpenMeterBilling, upstream: Upstream
) -> None:
    await om.entitlements.value("acme", "tokens")
    await burn(om, 25)
    assert (await om.entitlements.value("acme", "tokens")).balance == 100
    live = await om.entitlements.value("acme", "tokens", fresh=True)
    assert (live.source, live.balance) == ("live", 75)
    assert (await om.entitlements.value("acme", "tokens")).balance == 75
    assert await om.entitlements.has("acme", "tokens", fresh=True) is True
    assert upstream.value_reads() == 3


async def test_the_least_recently_used_value_is_evicted_at_max_size(
    upstream: Upstream, clock: FakeClock
) -> None:
    cache = EntitlementCache(clock=clock, rate=1000, max_size=2)
    async with make_client(upstream, cache) as client:
        await seed(client, features=3)
        upstream.paths.clear()
        for feature in ("tokens", "f1", "tokens", "f2"):  # f1 is now the least recently used
            await client.entitlements.value("acme", feature)
        assert len(cache) == 2 and cache.stats.evictions == 1
        assert cache.peek("acme", "f1") is None
        assert cache.peek("acme", "tokens") is not None


async def test_a_429_pauses_upstream_reads_for_its_retry_after(
    upstream: Upstream, clock: FakeClock
) -> None:
    cache = EntitlementCache(clock=clock, rate=1000, miss_timeout=0.2)
    async with make_client(upstream, cache) as client:
        await seed(client, features=2)
        upstream.mode, upstream.status, upstream.headers = "status", 429, {"Retry-After": "2"}
        assert (await client.entitlements.value("acme", "tokens")).source == "fallback"
        upstream.mode = "ok"
        reads = upstream.value_reads()
        assert (await client.entitlements.value("acme", "f1")).source == "fallback"  # paused
        assert upstream.value_reads() == reads
        clock.advance(2.1)  # the waiting read goes out once the pause is over
        await until(lambda: cache.peek("acme", "f1") is not None)
        assert upstream.value_reads() == reads + 1


async def test_principals_and_ids_are_cached_under_the_resolved_key(
    om: OpenMeterBilling, upstream: Upstream
) -> None:
    customer = await om.customers.get("acme")
    by_id = await om.entitlements.value(customer.id, "tokens")
    assert by_id.source == "live"
    assert (await om.entitlements.value(customer.id, "tokens")).source == "cache"


async def test_time_bypasses_the_cache(om: OpenMeterBilling, upstream: Upstream) -> None:
    from cache.conftest import START

    await om.entitlements.value("acme", "tokens")
    value = await om.entitlements.value("acme", "tokens", time=START)
    assert value.source == "live" and upstream.value_reads() == 2


async def test_stale_keys_of_one_customer_are_refreshed_with_one_access_request(
    upstream: Upstream, clock: FakeClock
) -> None:
    cache = EntitlementCache(clock=clock, rate=1000, refresh_concurrency=1)
    async with make_client(upstream, cache) as client:
        await seed(client, features=4)
        features = ["tokens", "f1", "f2", "f3"]
        for feature in features:
            await client.entitlements.value("acme", feature)
        await client.events.ingest(type="tokens", customer="acme", data={"tokens": 10})
        clock.advance(31)
        upstream.paths.clear()
        for feature in features:  # four stale reads queue four refreshes before any runs
            assert (await client.entitlements.value("acme", feature)).source == "stale"
        await until(lambda: all(cache.peek("acme", f) is not None for f in features))
        assert [p.rsplit("/", 1)[-1] for p in upstream.paths] == ["access"]
        assert {(await client.entitlements.value("acme", f)).balance for f in features} == {90}
