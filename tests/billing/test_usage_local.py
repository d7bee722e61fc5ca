"""client.usage against Local OpenMeter: consume, the hard limit, refunds, and the server's clock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from openmeter_billing import InsufficientBalanceError, OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter

START = datetime(2025, 3, 10, 8, 0, 30, tzinfo=timezone.utc)


@pytest.fixture
async def om() -> OpenMeterBilling:
    local = LocalOpenMeter(start=START)
    client = local.client(max_retries=0)
    await client.meters.create(
        slug="tokens", event_type="tokens", aggregation="SUM", value_property="$.tokens"
    )
    await client.features.create(key="tokens", name="Tokens", meter_slug="tokens")
    await client.customers.create(name="Acme", key="acme")
    return client


async def entitle(om: OpenMeterBilling, amount: float, *, soft: bool = False) -> None:
    await om.entitlements.create(
        "acme",
        {
            "type": "metered",
            "featureKey": "tokens",
            "usagePeriod": {"interval": "MONTH"},
            "issue": {"amount": amount},
            "isSoftLimit": soft,
        },
    )


async def test_consume_ingests_usage_and_estimates_the_balance(om: OpenMeterBilling) -> None:
    await entitle(om, 100)
    result = await om.usage.consume("acme", "tokens", 30)
    assert (result.balance_before, result.estimated_balance) == (100, 70)
    assert (await om.usage.balance("acme", "tokens")).balance == 70


async def test_consume_past_a_hard_limit_raises_and_sends_nothing(om: OpenMeterBilling) -> None:
    await entitle(om, 10)
    with pytest.raises(InsufficientBalanceError):
        await om.usage.consume("acme", "tokens", 11)
    assert (await om.usage.balance("acme", "tokens")).usage == 0


async def test_consume_past_a_soft_limit_is_allowed(om: OpenMeterBilling) -> None:
    await entitle(om, 10, soft=True)
    await om.usage.consume("acme", "tokens", 15)
    balance = await om.usage.balance("acme", "tokens")
    assert (balance.overage, balance.has_access) == (5, True)


async def test_refund_is_a_grant_effective_by_the_servers_clock_and_replays(
    om: OpenMeterBilling,
) -> None:
    """The emulator's clock is in 2025: a refund stamped with this machine's clock would start
    in the future and not count. The client reads OpenMeter's time from its Date header."""
    await entitle(om, 100)
    await om.usage.consume("acme", "tokens", 40)
    grant = await om.usage.refund("acme", "tokens", 25, reason="outage", idempotency_key="r1")
    assert grant.effective_at == START.replace(second=0)
    again = await om.usage.refund("acme", "tokens", 25, reason="outage", idempotency_key="r1")
    assert again.id == grant.id
    assert (await om.usage.balance("acme", "tokens")).balance == 85


async def test_server_clock_follows_the_date_header() -> None:
    local = LocalOpenMeter(start=START)
    async with local.client() as client:
        await client.customers.create(name="A", key="a")
        seen = client._http.server_clock.now()
        assert abs((seen - START).total_seconds()) < 5
        local.clock.advance(days=40)
        await client.customers.get("a")
        assert abs((client._http.server_clock.now() - local.clock.now()).total_seconds()) < 5
