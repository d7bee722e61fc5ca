"""The foundation's workflows on Local OpenMeter: customer sync, and ingest-then-value."""

from __future__ import annotations

from datetime import datetime, timezone

import anyio
import pytest

from openmeter_billing import (
    InMemoryCustomerIdStore,
    Organization,
    User,
)
from openmeter_billing.local import LocalOpenMeter


@pytest.fixture
def local() -> LocalOpenMeter:
    return LocalOpenMeter(start=datetime(2025, 6, 1, 9, 0, 30, tzinfo=timezone.utc))


async def test_sync_creates_then_updates_only_what_changed(local: LocalOpenMeter) -> None:
    store = InMemoryCustomerIdStore()
    async with local.client(customer_id_store=store) as client:
        created = await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada"))
        seen: list[str] = []
        local.add_observer(lambda req, resp: seen.append(req.method))
        same = await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada"))
        renamed = await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada L."))
    assert created.id == same.id == renamed.id
    assert seen == ["GET", "GET", "PUT"]  # no PUT when nothing changed
    assert renamed.name == "Ada L."
    assert renamed.primary_email == "ada@example.com"
    assert store.get("u1") == created.id


async def test_concurrent_first_syncs_end_with_one_customer(local: LocalOpenMeter) -> None:
    async with local.client() as client:
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(client.customers.sync, Organization(id="acme", name="Acme"))
        customers = [c async for c in client.customers.list()]
    assert [c.key for c in customers] == ["acme"]


async def test_ingest_then_value_reflects_usage(local: LocalOpenMeter) -> None:
    async with local.client() as client:
        await client.meters.create(
            slug="tokens", event_type="ai-tokens", aggregation="SUM", value_property="$.tokens"
        )
        await client.features.create(key="tokens", name="Tokens", meter_slug="tokens")
        org = Organization(id="acme", name="Acme")
        await client.customers.sync(org)
        await client.entitlements.create(
            org,
            {
                "type": "metered",
                "featureKey": "tokens",
                "usagePeriod": {"interval": "MONTH"},
                "issue": {"amount": 1000},
            },
        )
        await client.events.ingest_batch(
            [{"type": "ai-tokens", "data": {"tokens": n}} for n in (100, 250)], customer=org
        )
        await client.events.ingest(type="ai-tokens", customer=org, data={"tokens": 50})
        value = await client.entitlements.value(org, "tokens")
        assert (value.usage, value.balance, value.has_access) == (400, 600, True)
        await client.events.ingest(type="ai-tokens", customer=org, data={"tokens": 700})
        assert not await client.entitlements.has(org, "tokens")


def test_sync_facade_runs_the_same_workflow(local: LocalOpenMeter) -> None:
    with local.sync_client() as client:
        client.meters.create(slug="calls", event_type="call", aggregation="COUNT")
        client.features.create(key="calls", name="Calls", meter_slug="calls")
        client.customers.sync(User(id="u1", email="ada@example.com"))
        client.entitlements.create(
            User(id="u1"),
            {
                "type": "metered",
                "featureKey": "calls",
                "usagePeriod": {"interval": "DAY"},
                "issue": {"amount": 2},
            },
        )
        for _ in range(3):
            client.events.ingest(type="call", customer=User(id="u1"))
        value = client.entitlements.value(User(id="u1"), "calls")
    assert (value.usage, value.balance, value.overage) == (3, 0, 1)
