"""Local OpenMeter customers: uniqueness, attribution, soft delete and its 404/412 answers."""

from __future__ import annotations

import httpx
import pytest

from openmeter_billing import (
    ConflictError,
    NotFoundError,
    OpenMeterBilling,
    PreconditionFailedError,
    User,
)
from openmeter_billing.local import LocalOpenMeter


async def test_create_returns_ulid_and_timestamps_from_the_clock(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    customer = await om.customers.create(name="Acme", key="acme", subject_keys=["acme-sub"])
    assert len(customer.id) == 26
    assert customer.created_at == local.clock.now()
    assert customer.usage_attribution is not None
    assert customer.usage_attribution.subject_keys == ["acme-sub"]
    assert (await om.customers.get("acme")).id == customer.id
    assert (await om.customers.get(customer.id)).key == "acme"


async def test_taken_key_is_409_naming_the_existing_customer(om: OpenMeterBilling) -> None:
    first = await om.customers.create(name="Acme", key="acme")
    with pytest.raises(ConflictError) as caught:
        await om.customers.create(name="Other", key="acme")
    assert caught.value.conflicting_entity_id == first.id


async def test_subject_key_attributed_elsewhere_is_409(om: OpenMeterBilling) -> None:
    await om.customers.create(name="A", key="a", subject_keys=["shared"])
    with pytest.raises(ConflictError):
        await om.customers.create(name="B", key="b", subject_keys=["shared"])


async def test_customer_needs_a_key_or_subject_keys(raw: httpx.AsyncClient) -> None:
    response = await raw.post("/api/v1/customers", json={"name": "Nameless"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Bad Request"
    assert problem["extensions"]["validationErrors"][0]["field"] == "key"


async def test_missing_name_is_400_naming_the_field(raw: httpx.AsyncClient) -> None:
    response = await raw.post("/api/v1/customers", json={"key": "acme"})
    assert response.status_code == 400
    assert "name" in response.json()["detail"]


async def test_deleted_customer_is_404_by_key_200_by_id_and_412_for_changes(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    customer = await om.customers.create(name="Acme", key="acme")
    await om.customers.delete("acme")
    with pytest.raises(NotFoundError):
        await om.customers.get("acme")
    by_id = await om.customers.get(customer.id)
    assert by_id.deleted_at == local.clock.now()
    with pytest.raises(PreconditionFailedError):
        await om.request("DELETE", f"/api/v1/customers/{customer.id}")
    assert (await om.customers.delete(customer.id)).deleted is False  # the client's replay
    with pytest.raises(PreconditionFailedError):
        await om.customers.update(customer.id, name="Back", key="acme")
    with pytest.raises(PreconditionFailedError):
        await om.customers.access(customer.id)


async def test_key_of_deleted_customer_can_be_reused(om: OpenMeterBilling) -> None:
    old = await om.customers.create(name="Acme", key="acme")
    await om.customers.delete("acme")
    new = await om.customers.create(name="Acme again", key="acme")
    assert new.id != old.id
    assert (await om.customers.get("acme")).id == new.id


async def test_put_replaces_every_field(om: OpenMeterBilling) -> None:
    await om.customers.create(name="Acme", key="acme", primary_email="billing@acme.test")
    updated = await om.customers.update("acme", name="Acme Inc", key="acme")
    assert updated.name == "Acme Inc"
    assert updated.primary_email is None


async def test_list_filters_partially_and_pages(om: OpenMeterBilling) -> None:
    for i in range(5):
        await om.customers.create(name=f"Customer {i}", key=f"cust-{i}")
    await om.customers.create(name="Other", key="zzz")
    page = await om.customers.list(key="CUST", page_size=2)
    assert page.total_count == 5
    assert [c.key for c in page.items] == ["cust-0", "cust-1"]
    everyone = [c.key async for c in om.customers.list(page_size=2)]
    assert everyone == ["cust-0", "cust-1", "cust-2", "cust-3", "cust-4", "zzz"]


async def test_sync_creates_once_and_then_updates(om: OpenMeterBilling) -> None:
    ada = User(id="ada", email="ada@example.com", name="Ada")
    first = await om.customers.sync(ada)
    again = await om.customers.sync(ada)
    renamed = await om.customers.sync(User(id="ada", email="ada@example.com", name="Ada L."))
    assert first.id == again.id == renamed.id
    assert renamed.name == "Ada L."
    assert [c.id async for c in om.customers.list()] == [first.id]


async def test_currency_must_be_an_iso_code(raw: httpx.AsyncClient) -> None:
    response = await raw.post(
        "/api/v1/customers", json={"name": "A", "key": "a", "currency": "dollars"}
    )
    assert response.status_code == 400
    assert "currency" in response.json()["detail"]


async def test_entitlement_for_an_unknown_feature_is_404(om: OpenMeterBilling) -> None:
    await om.customers.create(name="A", key="a")
    with pytest.raises(NotFoundError) as caught:
        await om.entitlements.create(
            "a", {"type": "metered", "featureKey": "nope", "usagePeriod": {"interval": "MONTH"}}
        )
    assert "nope" in str(caught.value)
