"""customers.sync and upsert against a mocked OpenMeter: create, update, replay, store."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from _payloads import CUSTOMER_ID, customer_json
from conftest import API_KEY, BASE_URL

from openmeter_billing import (
    ConflictError,
    InMemoryCustomerIdStore,
    OpenMeterBilling,
    User,
)

ID = CUSTOMER_ID


def customer(**overrides: object) -> dict[str, object]:
    """Ada's customer as OpenMeter returns it after a sync."""
    body = customer_json(
        name="Ada",
        key="u1",
        primaryEmail="ada@example.com",
        usageAttribution={"subjectKeys": ["u1"]},
        metadata={"user_id": "u1", "email": "ada@example.com"},
    )
    body.update(overrides)
    return body


def not_found() -> httpx.Response:
    return httpx.Response(
        404,
        json={"title": "Not Found", "status": 404, "detail": "customer not found"},
        headers={"content-type": "application/problem+json"},
    )


async def test_first_sync_creates_and_stores_the_id(
    api: respx.MockRouter, sleeps: list[float]
) -> None:
    store = InMemoryCustomerIdStore()
    api.get("/api/v1/customers/u1").mock(return_value=not_found())
    create = api.post("/api/v1/customers").respond(201, json=customer())
    async with OpenMeterBilling(
        api_key=API_KEY, base_url=BASE_URL, customer_id_store=store
    ) as client:
        result = await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada"))
    assert result.id == ID
    assert json.loads(create.calls.last.request.content) == {
        "key": "u1",
        "name": "Ada",
        "primaryEmail": "ada@example.com",
        "usageAttribution": {"subjectKeys": ["u1"]},
        "metadata": {"user_id": "u1", "email": "ada@example.com"},
    }
    assert store.ids == {"u1": ID}


async def test_second_sync_updates_changed_fields_and_keeps_the_rest(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    existing = customer(
        description="VIP",
        metadata={"user_id": "u1", "email": "old@example.com", "crm": "42"},
        usageAttribution={"subjectKeys": ["u1", "legacy-subject"]},
        primaryEmail="old@example.com",
    )
    api.get("/api/v1/customers/u1").respond(200, json=existing)
    put = api.put(f"/api/v1/customers/{ID}").respond(200, json=customer())
    create = api.post("/api/v1/customers")
    await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada"))
    assert create.call_count == 0
    sent = json.loads(put.calls.last.request.content)
    assert sent["primaryEmail"] == "ada@example.com"
    assert sent["description"] == "VIP"  # PUT replaces: untouched fields are carried over
    assert sent["metadata"] == {"user_id": "u1", "email": "ada@example.com", "crm": "42"}
    assert sent["usageAttribution"] == {"subjectKeys": ["u1", "legacy-subject"]}


async def test_sync_without_changes_sends_no_update(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get("/api/v1/customers/u1").respond(200, json=customer())
    put = api.put(f"/api/v1/customers/{ID}")
    result = await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada"))
    assert put.call_count == 0
    assert result.id == ID


async def test_replay_after_a_lost_create_response_is_safe(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    # First attempt: the create reached OpenMeter but the response was lost. Replay: 404 no
    # longer happens, the customer exists, and no duplicate is created.
    get = api.get("/api/v1/customers/u1").mock(
        side_effect=[not_found(), httpx.Response(200, json=customer())]
    )
    create = api.post("/api/v1/customers").mock(side_effect=httpx.ReadError("connection reset"))
    with pytest.raises(Exception, match="Connection error"):
        await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada"))
    result = await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada"))
    assert result.id == ID
    assert create.call_count == 1 and get.call_count == 2


async def test_concurrent_create_conflict_falls_back_to_update(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get("/api/v1/customers/u1").mock(
        side_effect=[not_found(), httpx.Response(200, json=customer(name="Other"))]
    )
    api.post("/api/v1/customers").respond(
        409, json={"title": "Conflict", "status": 409, "detail": "key taken"}
    )
    put = api.put(f"/api/v1/customers/{ID}").respond(200, json=customer())
    result = await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada"))
    assert put.call_count == 1 and result.name == "Ada"


async def test_store_is_not_written_when_id_unchanged(
    api: respx.MockRouter, sleeps: list[float]
) -> None:
    calls: list[tuple[str, str]] = []

    class Store:
        async def get(self, key: str) -> str | None:
            return ID

        async def set(self, key: str, customer_id: str, principal: object) -> None:
            calls.append((key, customer_id))

    api.get("/api/v1/customers/u1").respond(200, json=customer())
    async with OpenMeterBilling(
        api_key=API_KEY, base_url=BASE_URL, customer_id_store=Store()
    ) as client:
        await client.customers.sync(User(id="u1", email="ada@example.com", name="Ada"))
    assert calls == []


async def test_upsert_creates_on_404_and_never_raises_it(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get("/api/v1/customers/acme").mock(return_value=not_found())
    api.post("/api/v1/customers").respond(201, json=customer(key="acme", name="Acme"))
    result = await client.customers.upsert(key="acme", name="Acme")
    assert result.key == "acme"


async def test_other_errors_from_get_propagate(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get("/api/v1/customers/acme").respond(409, json={"title": "Conflict", "status": 409})
    with pytest.raises(ConflictError):
        await client.customers.upsert(key="acme", name="Acme")
