"""Autumn's attach/check flow: ``client.webhooks.handle_billing_state`` on Local OpenMeter."""

from __future__ import annotations

import base64

import pytest
from billing.test_billing_helpers import CATALOG, CUSTOMER, active_entitlements, prepare

from openmeter_billing import ConfigurationError, InvalidInputError, OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.providers import Autumn, Stripe

AUTUMN_SECRET = "whsec_" + base64.b64encode(b"autumn-state-test-key-0123456789").decode()


async def autumn_client(local: LocalOpenMeter) -> OpenMeterBilling:
    client = local.client(
        catalog=CATALOG, max_retries=0, providers=[Autumn(webhook_secret=AUTUMN_SECRET)]
    )
    await prepare(client)
    return client


def test_billing_state_event_names_customer_plan_and_subscription() -> None:
    event = Autumn(webhook_secret=AUTUMN_SECRET).billing_state_event(
        {"customer_id": CUSTOMER, "product_id": "pro", "entity_id": "seat_1", "event_id": "e1"},
        catalog=CATALOG,
    )
    assert (event.type, event.customer, event.plan) == ("subscription.active", CUSTOMER, "pro")
    assert (event.provider, event.provider_event_id) == ("autumn", "e1")
    assert event.subscription_id == f"{CUSTOMER}/seat_1/pro"


async def test_attach_state_grants_the_plan_once_per_event_id(local: LocalOpenMeter) -> None:
    async with await autumn_client(local) as client:
        state = {"customer_id": CUSTOMER, "plan_id": "pro", "event_id": "attach-1"}
        first = await client.webhooks.handle_billing_state(state)
        again = await client.webhooks.handle_billing_state(state)
        assert (first.outcome, first.http_status, first.provider) == ("applied", 200, "autumn")
        assert (again.outcome, again.delivery_id) == ("duplicate", "attach-1")
        assert again.results == first.results
        features = await active_entitlements(client)
        assert {"ai_tokens", "api_access", "support_tier"} <= set(features)


async def test_expired_state_revokes_what_attach_granted(local: LocalOpenMeter) -> None:
    async with await autumn_client(local) as client:
        base = {"customer_id": CUSTOMER, "plan_id": "pro"}
        await client.webhooks.handle_billing_state({**base, "event_id": "attach-1"})
        ended = await client.webhooks.handle_billing_state(
            {**base, "type": "subscription.expired", "event_id": "expire-1"}
        )
        assert ended.outcome == "applied"
        assert "api_access" not in await active_entitlements(client)


async def test_bad_state_is_a_typed_error_before_any_change(local: LocalOpenMeter) -> None:
    async with await autumn_client(local) as client:
        with pytest.raises(InvalidInputError) as missing:
            await client.webhooks.handle_billing_state({"plan_id": "pro"})
        assert missing.value.field == "state.customer_id"
        with pytest.raises(InvalidInputError) as unknown:
            await client.webhooks.handle_billing_state({"customer_id": CUSTOMER, "plan_id": "gold"})
        assert unknown.value.field == "state.plan_id"
        assert await active_entitlements(client) == {}


async def test_without_an_autumn_adapter_it_says_how_to_configure(local: LocalOpenMeter) -> None:
    client = local.client(catalog=CATALOG, providers=[Stripe(webhook_secret="whsec_x")])
    async with client:
        with pytest.raises(ConfigurationError, match=r"providers=\[Autumn"):
            await client.webhooks.handle_billing_state({"customer_id": CUSTOMER})


def test_sync_twin_applies_once() -> None:
    local = LocalOpenMeter()
    with local.sync_client(
        catalog=CATALOG, max_retries=0, providers=[Autumn(webhook_secret=AUTUMN_SECRET)]
    ) as client:
        client.catalog.push()
        client.customers.create(name="Acme", key=CUSTOMER, subject_keys=[CUSTOMER])
        state = {"customer_id": CUSTOMER, "plan_id": "pro", "event_id": "check-7"}
        outcomes = [client.webhooks.handle_billing_state(state).outcome for _ in range(2)]
        assert outcomes == ["applied", "duplicate"]
