"""Read your writes: the client's own changes reach its cached answers at once."""

from __future__ import annotations

from billing.test_billing_helpers import CATALOG, START, prepare
from billing.test_webhooks import SECRET, signed, subscription_event
from cache.conftest import FakeClock, Upstream, make_client

from openmeter_billing import EntitlementCache, OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.providers import Stripe


async def billing_client(clock: FakeClock) -> tuple[OpenMeterBilling, Upstream]:
    upstream = Upstream(LocalOpenMeter(start=START))
    cache = EntitlementCache(ttl=3600, clock=clock, rate=1000)
    client = make_client(
        upstream, cache, catalog=CATALOG, providers=[Stripe(webhook_secret=SECRET)]
    )
    await prepare(client)
    return client, upstream


async def test_a_webhook_that_grants_a_plan_shows_in_the_next_cached_check(
    clock: FakeClock,
) -> None:
    client, _ = await billing_client(clock)
    async with client:
        assert await client.entitlements.has("acme", "api_access") is False  # cached for 1 h
        body = subscription_event()
        result = await client.webhooks.handle("stripe", headers=signed(body), body=body)
        assert result.outcome == "applied", result.reason
        value = await client.entitlements.value("acme", "api_access")
        assert (value.source, value.has_access) == ("live", True)


async def test_a_top_up_grant_raises_the_cached_balance_at_once(clock: FakeClock) -> None:
    client, _ = await billing_client(clock)
    async with client:
        body = subscription_event()
        await client.webhooks.handle("stripe", headers=signed(body), body=body)
        before = await client.entitlements.value("acme", "ai_tokens")
        await client.topups.grant("acme", "token_pack", idempotency_key="checkout:cs_1")
        after = await client.entitlements.value("acme", "ai_tokens")
        assert (before.balance, after.balance) == (100_000, 150_000)


async def test_consume_lowers_the_cached_balance_optimistically_until_a_refresh(
    om: OpenMeterBilling, upstream: Upstream
) -> None:
    await om.usage.balance("acme", "tokens")
    await om.usage.consume("acme", "tokens", 30)
    cached = await om.entitlements.value("acme", "tokens")
    assert (cached.source, cached.balance, cached.usage, cached.optimistic) == (
        "cache",
        70,
        30,
        True,
    )
    assert (await om.usage.balance("acme", "tokens")).balance == 70
    live = await om.entitlements.value("acme", "tokens", fresh=True)
    assert (live.balance, live.optimistic) == (70, False)
    assert (await om.entitlements.value("acme", "tokens")).optimistic is False


async def test_consuming_the_last_units_denies_from_the_cache(om: OpenMeterBilling) -> None:
    await om.usage.consume("acme", "tokens", 100)
    assert await om.entitlements.has("acme", "tokens") is False


async def test_refund_grant_delete_override_and_reset_drop_the_customers_values(
    om: OpenMeterBilling, upstream: Upstream
) -> None:
    assert om.cache is not None
    writes = [
        lambda: om.usage.refund("acme", "tokens", 5, reason="outage", idempotency_key="r1"),
        lambda: om.entitlements.grants.create(
            "acme", "tokens", {"amount": 5, "effectiveAt": "2025-03-10T08:00:30Z"}
        ),
        lambda: om.entitlements.reset("acme", "tokens"),
        lambda: om.entitlements.override(
            "acme",
            "tokens",
            {"type": "metered", "featureKey": "tokens", "usagePeriod": {"interval": "DAY"}},
        ),
        lambda: om.entitlements.delete("acme", "tokens"),
    ]
    for write in writes:
        await om.entitlements.value("acme", "tokens")
        assert om.cache.peek("acme", "tokens") is not None
        await write()
        assert om.cache.peek("acme", "tokens") is None, write
    assert (await om.entitlements.value("acme", "tokens")).has_access is False


async def test_invalidate_drops_a_customer_under_its_id_and_its_key(
    om: OpenMeterBilling, upstream: Upstream
) -> None:
    customer = await om.customers.get("acme")
    await om.usage.balance("acme", "tokens")  # reads the entitlement: id and key are linked
    await om.entitlements.value("acme", "tokens")
    await om.entitlements.value(customer.id, "tokens")
    assert await om.entitlements.invalidate(customer.id) == 2
    assert await om.entitlements.invalidate() == 0


async def test_voiding_a_grant_without_its_customer_drops_everything(
    om: OpenMeterBilling,
) -> None:
    assert om.cache is not None
    grant = await om.entitlements.grants.create(
        "acme", "tokens", {"amount": 5, "effectiveAt": "2025-03-10T08:00:30Z"}
    )
    await om.entitlements.value("acme", "tokens")
    await om.entitlements.grants.void(grant.id)
    assert len(om.cache) == 0


async def test_usage_balance_answers_from_memory_after_the_first_read(
    om: OpenMeterBilling, upstream: Upstream
) -> None:
    await om.usage.balance("acme", "tokens")
    requests = len(upstream.paths)
    balance = await om.usage.balance("acme", "tokens")
    assert balance.balance == 100 and len(upstream.paths) == requests


async def test_prefetch_reads_every_feature_of_a_customer_in_one_request(
    upstream: Upstream, clock: FakeClock
) -> None:
    from cache.conftest import seed

    cache = EntitlementCache(clock=clock, rate=1000)
    async with make_client(upstream, cache) as client:
        await seed(client, features=3)
        upstream.paths.clear()
        values = await client.entitlements.prefetch("acme")
        assert set(values) == {"tokens", "f1", "f2"}
        assert [await client.entitlements.has("acme", f) for f in values] == [True] * 3
        assert len(upstream.paths) == 1 and upstream.paths[0].endswith("/access")


async def test_a_read_in_flight_during_a_write_is_returned_but_not_cached(
    om: OpenMeterBilling, upstream: Upstream
) -> None:
    import asyncio

    from cache.conftest import until

    assert om.cache is not None
    await om.customers.create(name="Other", key="other")
    upstream.mode = "hang"
    reading = asyncio.ensure_future(om.entitlements.value("acme", "tokens"))
    other = asyncio.ensure_future(om.entitlements.value("other", "tokens"))
    await until(lambda: upstream.value_reads() == 2)
    await om.entitlements.invalidate("acme")  # a write to acme while its read is on the wire
    upstream.mode = "ok"
    upstream.released.set()
    assert (await reading).balance == 100
    await other
    assert om.cache.peek("acme", "tokens") is None  # may predate the write: not kept
    assert om.cache.peek("other", "tokens") is not None  # another customer: kept
