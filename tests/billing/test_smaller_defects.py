"""Issue 9, item 8: usage errors are plain, consume serialises in process, top-ups use the server's
clock from the first call, deleted customers leave the id store, resolver hints fit the scope,
and a catalog written with every default works end to end on Local OpenMeter."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
import respx
from _payloads import metered_json
from billing.test_billing_helpers import START, event
from conftest import API_KEY, BASE_URL

from openmeter_billing import (
    IdentityResolutionError,
    InsufficientBalanceError,
    NotFoundError,
    OpenMeterBilling,
    Organization,
)
from openmeter_billing.billing.ledger import InMemoryLedger
from openmeter_billing.catalog import define_catalog
from openmeter_billing.catalog.dsl import DEFAULT_TOPUP_PRIORITY
from openmeter_billing.identity import Identity, InMemoryCustomerIdStore, OrganizationResolver
from openmeter_billing.local import LocalOpenMeter


async def tokens_client(local: LocalOpenMeter, grant: float | None) -> OpenMeterBilling:
    client = local.client(max_retries=0)
    await client.meters.create(
        slug="tokens", event_type="tokens", aggregation="SUM", value_property="$.tokens"
    )
    await client.features.create(key="tokens", name="Tokens", meter_slug="tokens")
    await client.customers.create(name="Acme", key="acme")
    if grant is not None:
        await client.entitlements.create(
            "acme",
            {
                "type": "metered",
                "featureKey": "tokens",
                "usagePeriod": {"interval": "MONTH"},
                "issue": {"amount": grant},
            },
        )
    return client


async def test_usage_on_a_missing_entitlement_raises_not_found_not_a_group() -> None:
    async with await tokens_client(LocalOpenMeter(start=START), grant=None) as client:
        with pytest.raises(NotFoundError):
            await client.usage.balance("acme", "tokens")
        with pytest.raises(NotFoundError):
            await client.usage.consume("acme", "tokens", 1)


async def test_two_concurrent_consumes_cannot_spend_one_balance_twice() -> None:
    outcomes: list[str] = []
    async with await tokens_client(LocalOpenMeter(start=START), grant=795) as client:

        async def spend() -> None:
            try:
                await client.usage.consume("acme", "tokens", 795)
                outcomes.append("spent")
            except InsufficientBalanceError:
                outcomes.append("refused")

        async with anyio.create_task_group() as group:
            group.start_soon(spend)
            group.start_soon(spend)
        assert sorted(outcomes) == ["refused", "spent"]
        assert (await client.usage.balance("acme", "tokens")).usage == 795


async def test_usage_openmeter_has_not_counted_yet_is_still_spent(api: respx.MockRouter) -> None:
    """OpenMeter counts events a little after ingest: the balance read lags behind."""
    path = "/api/v2/customers/acme/entitlements/tokens"
    api.get(path).respond(200, json=metered_json(featureKey="tokens"))
    lagging = {"hasAccess": True, "balance": 795, "usage": 0, "overage": 0}
    api.get(f"{path}/value").respond(200, json=lagging)
    api.post("/api/v1/events").respond(204)
    async with OpenMeterBilling(api_key=API_KEY, base_url=BASE_URL, max_retries=0) as client:
        send = client.usage.consume
        first = await send("acme", "tokens", 300, event_type="tokens", data={}, idempotency_key="a")
        replay = await send(
            "acme", "tokens", 300, event_type="tokens", data={}, idempotency_key="a"
        )
        assert first.events[0].id == replay.events[0].id  # OpenMeter counts it once
        assert replay.balance_before == 495
        with pytest.raises(InsufficientBalanceError) as caught:
            await send("acme", "tokens", 500, event_type="tokens", data={})
        assert caught.value.balance == 495
        # Once OpenMeter has counted the usage, its numbers are the truth again.
        counted = {"hasAccess": True, "balance": 495, "usage": 300, "overage": 0}
        api.get(f"{path}/value").respond(200, json=counted)
        assert (
            await send("acme", "tokens", 495, event_type="tokens", data={})
        ).balance_before == 495


async def test_a_top_up_from_a_fresh_client_is_dated_by_the_server_clock() -> None:
    local = LocalOpenMeter(start=START)  # far from this machine's clock
    catalog = defaults_catalog()
    async with local.client(catalog=catalog, max_retries=0) as setup:
        await setup.catalog.push()
        await setup.customers.create(name="Acme", key="acme", subject_keys=["acme"])
    local.clock.advance(hours=1)
    async with local.client(catalog=catalog, max_retries=0) as fresh:  # has seen no Date header
        result = await fresh.topups.grant("acme", "pack", idempotency_key="checkout:1")
    assert abs(result.grant.effective_at - local.clock.now()) < timedelta(minutes=1)


async def test_deleting_a_customer_forgets_its_stored_id() -> None:
    store = InMemoryCustomerIdStore()
    async with LocalOpenMeter().client(customer_id_store=store, max_retries=0) as client:
        org = Organization(id="o_1", name="Org")
        synced = await client.customers.sync(org)
        assert store.ids == {"o_1": synced.id}
        await client.customers.delete(org)
        assert store.ids == {}
        again = await client.customers.create(name="Other", key="other")
        store.set("other", again.id, None)
        await client.customers.delete(again.id)  # by id: the key is looked up
        assert store.ids == {}


async def test_a_store_without_delete_still_lets_customers_be_deleted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class OldStore:
        def __init__(self) -> None:
            self.ids: dict[str, str] = {}

        def get(self, key: str) -> str | None:
            return self.ids.get(key)

        def set(self, key: str, customer_id: str, principal: object) -> None:
            self.ids[key] = customer_id

    store = OldStore()
    client = LocalOpenMeter().client(customer_id_store=store, max_retries=0)  # type: ignore[arg-type]
    async with client:
        await client.customers.sync(Organization(id="o_1", name="Org"))
        await client.customers.delete("o_1")
    assert "has no delete(key)" in caplog.text


async def test_an_unresolvable_organization_gets_the_organization_resolver_hint() -> None:
    class Workspace:
        id = "w_1"

    identity = Identity(organization=OrganizationResolver(accepts=Workspace))
    with pytest.raises(IdentityResolutionError) as caught:
        await identity.resolve_key(Organization(id="o_1", name="Org"))
    assert "OrganizationResolver(accepts=Organization, key='org:{id}')" in str(caught.value)
    assert "UserResolver" not in str(caught.value)


ONCE = {"amount": 500, "currency": "USD", "interval": "one_time"}


def defaults_catalog() -> Any:
    """Every optional field left out: the catalog's defaults must all be valid for OpenMeter."""
    return define_catalog(
        {
            "meters": {
                "tokens": {
                    "event_type": "tokens",
                    "aggregation": "SUM",
                    "value_property": "$.tokens",
                }
            },
            "features": {
                "ai_tokens": {"type": "metered", "meter": "tokens"},
                "api_access": {"type": "boolean"},
                "tier": {"type": "static", "config": {"level": 1}},
            },
            "plans": {
                "free": {"entitlements": {"ai_tokens": 100, "tier": {"type": "static"}}},
                "pro": {
                    "entitlements": {
                        "ai_tokens": 1000,
                        "api_access": True,
                        "tier": {"type": "static"},
                    }
                },
            },
            "addons": {"extra": {"entitlements": {"ai_tokens": 500}}},
            "topups": {"pack": {"feature": "ai_tokens", "amount": 5000, "prices": {"once": ONCE}}},
        }
    )


async def test_a_catalog_of_defaults_works_end_to_end_on_local_openmeter() -> None:
    local = LocalOpenMeter(start=START)
    catalog = defaults_catalog()
    async with local.client(catalog=catalog, ledger=InMemoryLedger(), max_retries=0) as client:
        await client.catalog.push()
        await client.customers.create(name="Acme", key="acme", subject_keys=["acme"])
        at = START
        await client.billing.apply_event(event("subscription.active", at=at, addons={"extra": 1}))
        bought = await client.topups.grant("acme", "pack", idempotency_key="checkout:1")
        assert bought.grant.priority == DEFAULT_TOPUP_PRIORITY
        balance = await client.usage.balance("acme", "ai_tokens")
        assert balance.balance == 1000 + 500 + 5000
        await client.usage.consume("acme", "ai_tokens", 10)
        # A downgrade re-issues the live top-up on the new entitlement: still a valid priority.
        local.clock.advance(days=1)
        later = at + timedelta(days=1)
        await client.billing.apply_event(
            event("subscription.updated", at=later, plan="free", previous_plan="pro")
        )
        await client.billing.apply_event(
            event("subscription.revoked", at=later + timedelta(hours=1))
        )
        replay = await client.topups.grant("acme", "pack", idempotency_key="checkout:1")
        assert replay.created is False
    assert datetime.now(timezone.utc) > START  # the fixture clock was far from the host's
