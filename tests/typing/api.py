"""Typed usage of the public API. Checked by `mypy --strict`, never executed."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from typing_extensions import assert_type

from openmeter_billing import (
    AsyncPage,
    Identity,
    OpenMeterBilling,
    Organization,
    SyncOpenMeterBilling,
    SyncPage,
    User,
    UserResolver,
)
from openmeter_billing.local import Clock, LocalOpenMeter
from openmeter_billing.types import (
    CloudEvent,
    Customer,
    CustomerAccess,
    Entitlement,
    EntitlementGrant,
    EntitlementMeteredCreateInputs,
    EntitlementValue,
    Feature,
    Meter,
    MeterQueryResult,
    PortalToken,
    RecurringPeriodCreateInput,
)


async def async_usage() -> None:
    identity = Identity(user=UserResolver(key="user:{id}"))
    async with OpenMeterBilling(api_key="k", identity=identity) as client:
        user = User(id="1", email="a@b.c")
        org = Organization(id="acme")
        assert_type(await client.customers.sync(user), Customer)
        assert_type(await client.customers.access(org), CustomerAccess)
        page = await client.customers.list(page_size=10)
        assert_type(page, AsyncPage[Customer])
        async for customer in client.customers.list():
            assert_type(customer, Customer)
        assert_type(await client.events.ingest(type="t", customer=user, data={"n": 1}), CloudEvent)
        assert_type(
            await client.events.ingest_batch([{"type": "t"}], customer=org), list[CloudEvent]
        )
        assert_type(await client.entitlements.value(org, "ai_tokens"), EntitlementValue)
        assert_type(await client.entitlements.has(org, "ai_tokens"), bool)
        body = EntitlementMeteredCreateInputs(
            feature_key="ai_tokens", usage_period=RecurringPeriodCreateInput(interval="MONTH")
        )
        assert_type(await client.entitlements.create(org, body), Entitlement)
        grant = await client.entitlements.grants.create(
            org, "ai_tokens", {"amount": 10, "effectiveAt": datetime.now(timezone.utc)}
        )
        assert_type(grant, EntitlementGrant)
        assert_type(await client.features.get("ai_tokens"), Feature)
        assert_type(await client.meters.list(), list[Meter])
        assert_type(await client.meters.query("tokens", window_size="DAY"), MeterQueryResult)
        assert_type(await client.portal.create_token(customer=user), PortalToken)
        fast = client.with_options(timeout=2.0, max_retries=0)
        assert_type(fast, OpenMeterBilling)


def sync_usage() -> None:
    with SyncOpenMeterBilling(base_url="http://127.0.0.1:8888") as client:
        user = User(id="1")
        assert_type(client.customers.sync(user), Customer)
        assert_type(client.entitlements.value(user, "ai_tokens"), EntitlementValue)
        assert_type(client.entitlements.has(user, "ai_tokens"), bool)
        customers = client.customers.list()
        assert_type(customers, SyncPage[Customer])
        for customer in customers:
            assert_type(customer, Customer)
        assert_type(client.entitlements.grants.list(user, "ai_tokens"), SyncPage[EntitlementGrant])
        assert_type(client.events.ingest(type="t", customer=user), CloudEvent)
        client.entitlements.reset(user, "ai_tokens", retain_anchor=True)


async def local_usage() -> None:
    local = LocalOpenMeter(start=datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert_type(local.clock, Clock)
    assert_type(local.clock.advance(days=31), datetime)
    assert_type(local.snapshot(), dict[str, Any])
    assert_type(LocalOpenMeter.routes(), list[tuple[str, str]])
    async with local.client(max_retries=0) as client:
        assert_type(client, OpenMeterBilling)
    with local.sync_client() as blocking:
        assert_type(blocking, SyncOpenMeterBilling)
