"""Local OpenMeter entitlements: types, conflicts, values (v1/v2 quirks), access, override, delete."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from openmeter_billing import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    OpenMeterBilling,
    PreconditionFailedError,
)
from openmeter_billing.local import LocalOpenMeter

from .conftest import make_metered

MONTHLY = {"usagePeriod": {"interval": "MONTH"}, "issue": {"amount": 1000}}


async def test_metered_entitlement_with_issue_burns_down(om: OpenMeterBilling) -> None:
    await make_metered(om, entitlement=MONTHLY)
    await om.events.ingest(type="tokens", customer="acme", data={"value": 250})
    value = await om.entitlements.value("acme", "tokens")
    assert (value.has_access, value.balance, value.usage, value.overage) == (True, 750, 250, 0)
    assert value.total_available_grant_amount == 1000


async def test_metered_entitlement_response_shape(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await make_metered(om)
    ent = await om.entitlements.create(
        "acme", {"type": "metered", "featureKey": "tokens", **MONTHLY}
    )
    data = ent.model_dump(by_alias=True)
    assert data["type"] == "metered"
    assert data["usagePeriod"]["interval"] == "MONTH"
    assert data["usagePeriod"]["intervalISO"] == "P1M"
    start = local.clock.now().replace(second=0)
    assert data["measureUsageFrom"] == start
    assert data["currentUsagePeriod"]["from"] == start
    assert data["currentUsagePeriod"]["to"] == start.replace(month=2)
    assert data["customerKey"] == "acme"


async def test_second_active_entitlement_for_a_feature_is_409_with_conflicting_id(
    om: OpenMeterBilling,
) -> None:
    await make_metered(om)
    first = await om.entitlements.create(
        "acme", {"type": "metered", "featureKey": "tokens", **MONTHLY}
    )
    with pytest.raises(ConflictError) as caught:
        await om.entitlements.create("acme", {"type": "metered", "featureKey": "tokens", **MONTHLY})
    assert caught.value.conflicting_entity_id == first.id


async def test_boolean_and_static_values(om: OpenMeterBilling, raw: httpx.AsyncClient) -> None:
    await om.customers.create(name="Acme", key="acme")
    await om.features.create(key="sso", name="SSO")
    await om.features.create(key="seats", name="Seats")
    await om.entitlements.create("acme", {"type": "boolean", "featureKey": "sso"})
    await om.entitlements.create(
        "acme", {"type": "static", "featureKey": "seats", "config": '{"seats": 5}'}
    )
    assert (await om.entitlements.value("acme", "sso")).has_access
    seats = await om.entitlements.value("acme", "seats")
    assert seats.has_access
    assert json.loads(seats.config or "") == {"seats": 5}
    v2 = (await raw.get("/api/v2/customers/acme/entitlements/seats/value")).json()
    assert v2 == {"hasAccess": True, "config": '{"seats": 5}'}


async def test_static_config_must_be_a_json_object_string(raw: httpx.AsyncClient) -> None:
    await raw.post("/api/v1/customers", json={"name": "A", "key": "acme"})
    await raw.post("/api/v1/features", json={"key": "seats", "name": "Seats"})
    response = await raw.post(
        "/api/v2/customers/acme/entitlements",
        json={"type": "static", "featureKey": "seats", "config": "[1, 2]"},
    )
    assert response.status_code == 400
    assert "config" in response.json()["detail"]


async def test_no_entitlement_is_200_without_access_in_both_versions(
    om: OpenMeterBilling, raw: httpx.AsyncClient
) -> None:
    await make_metered(om)
    v2 = await raw.get("/api/v2/customers/acme/entitlements/tokens/value")
    v1 = await raw.get("/api/v1/customers/acme/entitlements/tokens/value")
    assert (v2.status_code, v2.json()) == (200, {})
    assert (v1.status_code, v1.json()) == (200, {"hasAccess": False})
    assert not await om.entitlements.has("acme", "tokens")


async def test_v2_value_omits_false_has_access_v1_keeps_it(
    om: OpenMeterBilling, raw: httpx.AsyncClient
) -> None:
    await make_metered(
        om, entitlement={"usagePeriod": {"interval": "MONTH"}, "issue": {"amount": 10}}
    )
    await om.events.ingest(type="tokens", customer="acme", data={"value": 15})
    v2 = (await raw.get("/api/v2/customers/acme/entitlements/tokens/value")).json()
    v1 = (await raw.get("/api/v1/customers/acme/entitlements/tokens/value")).json()
    assert "hasAccess" not in v2
    assert v2["overage"] == 5 and "grantBalances" in v2
    assert v1["hasAccess"] is False and "grantBalances" not in v1


async def test_soft_limit_keeps_access_when_exhausted(om: OpenMeterBilling) -> None:
    await make_metered(om, entitlement={**MONTHLY, "isSoftLimit": True})
    await om.events.ingest(type="tokens", customer="acme", data={"value": 5000})
    value = await om.entitlements.value("acme", "tokens")
    assert value.has_access and value.balance == 0 and value.overage == 4000


async def test_unknown_feature_value_is_404(om: OpenMeterBilling) -> None:
    await om.customers.create(name="Acme", key="acme")
    with pytest.raises(NotFoundError):
        await om.entitlements.value("acme", "nope")


async def test_customer_access_lists_active_entitlements(
    om: OpenMeterBilling, raw: httpx.AsyncClient
) -> None:
    await make_metered(
        om, entitlement={"usagePeriod": {"interval": "MONTH"}, "issue": {"amount": 1}}
    )
    await om.features.create(key="sso", name="SSO")
    await om.entitlements.create("acme", {"type": "boolean", "featureKey": "sso"})
    await om.events.ingest(type="tokens", customer="acme", data={"value": 2})
    access = await om.entitlements.access("acme")
    assert access["sso"].has_access
    assert not access["tokens"].has_access
    body = (await raw.get("/api/v1/customers/acme/access")).json()
    assert "hasAccess" not in body["entitlements"]["tokens"]


async def test_override_replaces_terms_and_returns_201(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await make_metered(om, entitlement=MONTHLY)
    old = await om.entitlements.get("acme", "tokens")
    new = await om.entitlements.override(
        "acme",
        "tokens",
        {
            "type": "metered",
            "featureKey": "tokens",
            "usagePeriod": {"interval": "MONTH"},
            "issue": {"amount": 5000},
        },
    )
    assert new.id != old.id
    assert (await om.entitlements.value("acme", "tokens")).balance == 5000
    listed = [e.id async for e in om.entitlements.list("acme", include_deleted=True)]
    assert listed == [old.id, new.id]


async def test_delete_is_historical(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    await make_metered(om, entitlement=MONTHLY)
    before = local.clock.now()
    local.clock.advance(minutes=10)
    await om.entitlements.delete("acme", "tokens")
    assert not await om.entitlements.has("acme", "tokens")
    earlier = await om.entitlements.value("acme", "tokens", time=before)
    assert earlier.has_access and earlier.balance == 1000


async def test_usage_period_shorter_than_an_hour_is_400(om: OpenMeterBilling) -> None:
    await make_metered(om)
    with pytest.raises(BadRequestError):
        await om.entitlements.create(
            "acme",
            {"type": "metered", "featureKey": "tokens", "usagePeriod": {"interval": "PT30M"}},
        )


async def test_metered_entitlement_needs_a_feature_with_a_meter(om: OpenMeterBilling) -> None:
    await om.customers.create(name="Acme", key="acme")
    await om.features.create(key="plain", name="Plain")
    with pytest.raises(BadRequestError) as caught:
        await om.entitlements.create("acme", {"type": "metered", "featureKey": "plain", **MONTHLY})
    assert "meter" in str(caught.value)


async def test_issue_and_grants_are_mutually_exclusive(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await make_metered(om)
    with pytest.raises(BadRequestError):
        await om.entitlements.create(
            "acme",
            {
                "type": "metered",
                "featureKey": "tokens",
                **MONTHLY,
                "grants": [{"amount": 5, "effectiveAt": local.clock.now().isoformat()}],
            },
        )


async def test_entitlements_of_a_deleted_customer_are_412(om: OpenMeterBilling) -> None:
    await make_metered(om, entitlement=MONTHLY)
    acme = await om.customers.get("acme")
    await om.customers.delete("acme")
    with pytest.raises(PreconditionFailedError):
        await om.entitlements.value(acme.id, "tokens")


async def test_measure_usage_from_current_period_start_counts_earlier_usage(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await make_metered(om)
    anchor = local.clock.now().replace(day=1, hour=0, minute=0, second=0)
    await om.events.ingest(
        type="tokens", customer="acme", data={"value": 40}, time=anchor + timedelta(days=2)
    )
    await om.entitlements.create(
        "acme",
        {
            "type": "metered",
            "featureKey": "tokens",
            "usagePeriod": {"interval": "MONTH", "anchor": anchor.isoformat()},
            "measureUsageFrom": "CURRENT_PERIOD_START",
            "issue": {"amount": 100},
        },
    )
    value = await om.entitlements.value("acme", "tokens")
    assert (value.usage, value.balance) == (40, 60)
