"""Local OpenMeter grants, resets, history and rollover, driven through HTTP with the clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from openmeter_billing import BadRequestError, NotFoundError, OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter

from .conftest import make_metered

JAN1 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def at(day: int, month: int = 1, hour: int = 0) -> datetime:
    return datetime(2025, month, day, hour, tzinfo=timezone.utc)


@pytest.fixture
def local() -> LocalOpenMeter:
    """Grant tests start on 2025-01-01 00:00:30 UTC, the start of a monthly period."""
    return LocalOpenMeter(start=JAN1 + timedelta(seconds=30))


async def monthly(om: OpenMeterBilling, **extra: object) -> None:
    await make_metered(
        om,
        entitlement={
            "usagePeriod": {"interval": "MONTH", "anchor": JAN1.isoformat()},
            "measureUsageFrom": JAN1.isoformat(),
            **extra,
        },
    )


async def use(om: OpenMeterBilling, amount: float | str, when: datetime) -> None:
    await om.events.ingest(type="tokens", customer="acme", data={"value": amount}, time=when)


async def test_worked_example_from_openmeter_docs(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    """Reference section 5.8: priorities, expiry, overage, forgiven at reset, a later grant."""
    await monthly(om)
    await om.entitlements.grants.create(
        "acme", "tokens", {"amount": 100, "priority": 1, "effectiveAt": JAN1.isoformat()}
    )
    await om.entitlements.grants.create(
        "acme",
        "tokens",
        {
            "amount": 50,
            "effectiveAt": JAN1.isoformat(),
            "expiration": {"duration": "DAY", "count": 19},
        },
    )
    await use(om, 120, at(10))
    local.clock.set(at(11))
    v = await om.entitlements.value("acme", "tokens")
    assert (v.balance, v.usage, v.overage, v.total_available_grant_amount) == (30, 120, 0, 150)
    await use(om, 40, at(25))
    local.clock.set(at(26))
    v = await om.entitlements.value("acme", "tokens")
    assert (v.balance, v.overage, v.has_access) == (0, 10, False)
    local.clock.set(at(2, month=2))
    v = await om.entitlements.value("acme", "tokens")
    assert (v.balance, v.usage, v.overage) == (0, 0, 0)
    await om.entitlements.grants.create(
        "acme", "tokens", {"amount": 100, "effectiveAt": at(2, month=2).isoformat()}
    )
    assert (await om.entitlements.value("acme", "tokens")).balance == 100


async def test_preserved_overage_is_paid_by_the_next_grant(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await monthly(om, preserveOverageAtReset=True)
    await om.entitlements.grants.create(
        "acme", "tokens", {"amount": 100, "effectiveAt": JAN1.isoformat()}
    )
    await use(om, 110, at(10))
    local.clock.set(at(2, month=2))
    await om.entitlements.grants.create(
        "acme", "tokens", {"amount": 100, "effectiveAt": at(2, month=2).isoformat()}
    )
    v = await om.entitlements.value("acme", "tokens")
    assert (v.balance, v.overage) == (90, 0)


async def test_grant_defaults_are_the_v2_ones(om: OpenMeterBilling, raw: httpx.AsyncClient) -> None:
    await monthly(om)
    response = await raw.post(
        "/api/v2/customers/acme/entitlements/tokens/grants",
        json={"amount": 40, "effectiveAt": "2025-01-01T00:00:45Z"},
    )
    assert response.status_code == 201
    grant = response.json()
    assert grant["priority"] == 0
    assert grant["maxRolloverAmount"] == 40
    assert grant["minRolloverAmount"] == 0
    assert grant["effectiveAt"] == "2025-01-01T00:00:00Z"
    assert "expiresAt" not in grant


async def test_issue_grant_restores_the_allowance_every_period(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await monthly(om, issue={"amount": 100})
    await use(om, 30, at(5))
    local.clock.set(at(10))
    assert (await om.entitlements.value("acme", "tokens")).balance == 70
    local.clock.set(at(5, month=2))
    assert (await om.entitlements.value("acme", "tokens")).balance == 100


async def test_top_up_grant_rolls_over_up_to_its_max(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await monthly(om, issue={"amount": 100})
    await om.entitlements.grants.create(
        "acme",
        "tokens",
        {"amount": 50, "priority": 5, "effectiveAt": JAN1.isoformat(), "maxRolloverAmount": 20},
    )
    await use(om, 110, at(3))
    local.clock.set(at(2, month=2))
    v = await om.entitlements.value("acme", "tokens")
    # Issue grant burnt first (priority 1): 100 used, top-up paid 10 -> 40 left, capped at 20.
    assert v.balance == 120
    assert sorted(v.grant_balances.values()) == [20, 100]


async def test_grant_effective_mid_period_pays_down_overage(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await monthly(om, issue={"amount": 100})
    await use(om, 130, at(5))
    local.clock.set(at(6))
    assert (await om.entitlements.value("acme", "tokens")).overage == 30
    await om.entitlements.grants.create(
        "acme", "tokens", {"amount": 50, "effectiveAt": at(6).isoformat()}
    )
    v = await om.entitlements.value("acme", "tokens")
    assert (v.balance, v.overage, v.has_access) == (20, 0, True)


async def test_expired_grant_stops_counting(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    await monthly(om)
    await om.entitlements.grants.create(
        "acme",
        "tokens",
        {
            "amount": 10,
            "effectiveAt": JAN1.isoformat(),
            "expiration": {"duration": "HOUR", "count": 2},
        },
    )
    assert (await om.entitlements.value("acme", "tokens")).balance == 10
    local.clock.set(JAN1 + timedelta(hours=2))
    assert (await om.entitlements.value("acme", "tokens")).balance == 0


async def test_recurring_grant_refills(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    await monthly(om)
    await om.entitlements.grants.create(
        "acme",
        "tokens",
        {"amount": 10, "effectiveAt": JAN1.isoformat(), "recurrence": {"interval": "DAY"}},
    )
    await use(om, 8, at(1, hour=5))
    local.clock.set(at(1, hour=6))
    assert (await om.entitlements.value("acme", "tokens")).balance == 2
    local.clock.set(at(2, hour=1))
    assert (await om.entitlements.value("acme", "tokens")).balance == 10


async def test_grant_before_the_current_period_is_400(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await monthly(om)
    local.clock.set(at(3, month=2))
    with pytest.raises(BadRequestError) as caught:
        await om.entitlements.grants.create(
            "acme", "tokens", {"amount": 5, "effectiveAt": at(20).isoformat()}
        )
    assert "effectiveAt" in str(caught.value)


async def test_grant_amount_must_be_positive(raw: httpx.AsyncClient, om: OpenMeterBilling) -> None:
    await monthly(om)
    response = await raw.post(
        "/api/v2/customers/acme/entitlements/tokens/grants",
        json={"amount": 0, "effectiveAt": JAN1.isoformat()},
    )
    assert response.status_code == 400


async def test_grants_only_for_metered_entitlements(om: OpenMeterBilling) -> None:
    await om.customers.create(name="Acme", key="acme")
    await om.features.create(key="sso", name="SSO")
    await om.entitlements.create("acme", {"type": "boolean", "featureKey": "sso"})
    with pytest.raises(BadRequestError):
        await om.entitlements.grants.create(
            "acme", "sso", {"amount": 5, "effectiveAt": JAN1.isoformat()}
        )


async def test_void_removes_the_remaining_balance_not_past_burn(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await monthly(om)
    grant = await om.entitlements.grants.create(
        "acme", "tokens", {"amount": 100, "effectiveAt": JAN1.isoformat()}
    )
    await use(om, 30, at(2))
    local.clock.set(at(3))
    await om.entitlements.grants.void(grant.id)
    v = await om.entitlements.value("acme", "tokens")
    assert (v.balance, v.usage) == (0, 30)
    with pytest.raises(BadRequestError):
        await om.entitlements.grants.void(grant.id)
    with pytest.raises(NotFoundError):
        await om.entitlements.grants.void("01JAAAAAAAAAAAAAAAAAAAAAAA")


async def test_void_in_the_future_is_400(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    await monthly(om)
    grant = await om.entitlements.grants.create(
        "acme", "tokens", {"amount": 100, "effectiveAt": JAN1.isoformat()}
    )
    with pytest.raises(BadRequestError):
        await om.entitlements.grants.void(grant.id, at=local.clock.now() + timedelta(hours=1))


async def test_grants_list_pages_through_everything(om: OpenMeterBilling) -> None:
    await monthly(om)
    for amount in range(1, 6):
        await om.entitlements.grants.create(
            "acme", "tokens", {"amount": amount, "effectiveAt": JAN1.isoformat()}
        )
    amounts = [g.amount async for g in om.entitlements.grants.list("acme", "tokens", page_size=2)]
    assert amounts == [1, 2, 3, 4, 5]


async def test_manual_reset_starts_a_new_period_and_moves_the_anchor(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await monthly(om, issue={"amount": 100})
    await use(om, 60, at(5))
    local.clock.set(at(10))
    await om.entitlements.reset("acme", "tokens")
    v = await om.entitlements.value("acme", "tokens")
    assert (v.usage, v.balance) == (0, 100)
    ent = await om.entitlements.get("acme", "tokens")
    data = ent.model_dump(by_alias=True)
    assert data["currentUsagePeriod"]["from"] == at(10)
    assert data["currentUsagePeriod"]["to"] == at(10, month=2)


async def test_reset_rules(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    await monthly(om, issue={"amount": 100})
    local.clock.set(at(10))
    with pytest.raises(BadRequestError):
        await om.entitlements.reset("acme", "tokens", effective_at=at(11))  # future
    await om.entitlements.reset("acme", "tokens", retain_anchor=True)
    with pytest.raises(BadRequestError):
        await om.entitlements.reset("acme", "tokens")  # same minute again
    ent = (await om.entitlements.get("acme", "tokens")).model_dump(by_alias=True)
    assert ent["currentUsagePeriod"]["to"] == at(1, month=2)


async def test_history_windows_and_burndown(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    await monthly(om, issue={"amount": 100})
    await use(om, 10, at(1, hour=1))
    await use(om, 20, at(2, hour=1))
    local.clock.set(at(3))
    history = await om.entitlements.history(
        "acme", "tokens", window_size="DAY", from_=JAN1, to=at(3)
    )
    data = history.model_dump(by_alias=True)
    windows = [(w["usage"], w["balanceAtStart"]) for w in data["windowedHistory"]]
    assert windows == [(10, 100), (20, 90)]
    assert data["burndownHistory"][0]["balanceAtStart"] == 100


async def test_history_needs_a_window_size(raw: httpx.AsyncClient, om: OpenMeterBilling) -> None:
    await monthly(om, issue={"amount": 100})
    response = await raw.get("/api/v2/customers/acme/entitlements/tokens/history")
    assert response.status_code == 400
    assert "windowSize" in response.json()["detail"]


async def test_history_before_measure_usage_from_is_400(om: OpenMeterBilling) -> None:
    await monthly(om, issue={"amount": 100})
    with pytest.raises(BadRequestError):
        await om.entitlements.history(
            "acme", "tokens", window_size="DAY", from_=JAN1 - timedelta(days=1)
        )


async def test_unique_count_counts_distinct_values_within_the_period(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await make_metered(
        om,
        aggregation="UNIQUE_COUNT",
        entitlement={
            "usagePeriod": {"interval": "MONTH", "anchor": JAN1.isoformat()},
            "measureUsageFrom": JAN1.isoformat(),
            "issue": {"amount": 100},
        },
    )
    for i in range(20):
        await use(om, f"user-{i % 10}", at(2) + timedelta(hours=i))
    local.clock.set(at(5))
    assert (await om.entitlements.value("acme", "tokens")).usage == 10


async def test_latest_meter_grants_act_as_limits(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await make_metered(
        om,
        aggregation="LATEST",
        entitlement={
            "usagePeriod": {"interval": "MONTH", "anchor": JAN1.isoformat()},
            "measureUsageFrom": JAN1.isoformat(),
            "issue": {"amount": 10},
        },
    )
    await use(om, 12, at(2))
    await use(om, 4, at(3))
    local.clock.set(at(4))
    v = await om.entitlements.value("acme", "tokens")
    assert (v.usage, v.balance, v.has_access) == (4, 6, True)
