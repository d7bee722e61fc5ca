"""client.catalog: the construction-time catalog, pushed through the client."""

from __future__ import annotations

import json

import pytest
import respx
from conftest import API_KEY, BASE_URL

from openmeter_billing import ConfigurationError, OpenMeterBilling, SyncOpenMeterBilling
from openmeter_billing.catalog import define_catalog

CATALOG = define_catalog(
    meters={
        "tokens": {
            "key": "tokens",
            "event_type": "ai-tokens",
            "aggregation": "SUM",
            "value_property": "$.tokens",
        }
    },
    features={
        "ai_tokens": {"key": "ai_tokens", "name": "AI tokens", "type": "metered", "meter": "tokens"}
    },
    plans={
        "pro": {
            "key": "pro",
            "name": "Pro",
            "entitlements": {"ai_tokens": {"type": "metered", "amount": 1000, "reset": "month"}},
        }
    },
)


def empty_openmeter(api: respx.MockRouter) -> tuple[respx.Route, respx.Route]:
    api.get("/api/v1/meters").respond(200, json=[])
    api.get("/api/v1/features").respond(
        200, json={"items": [], "page": 1, "pageSize": 100, "totalCount": 0}
    )
    meter = api.post("/api/v1/meters").respond(
        201,
        json={
            "id": "01JEEEEEEEEEEEEEEEEEEEEEEE",
            "slug": "tokens",
            "aggregation": "SUM",
            "eventType": "ai-tokens",
            "valueProperty": "$.tokens",
            "createdAt": "2025-01-01T00:00:00Z",
            "updatedAt": "2025-01-01T00:00:00Z",
        },
    )
    feature = api.post("/api/v1/features").respond(
        201,
        json={
            "id": "01JBBBBBBBBBBBBBBBBBBBBBBB",
            "key": "ai_tokens",
            "name": "AI tokens",
            "meterSlug": "tokens",
            "createdAt": "2025-01-01T00:00:00Z",
            "updatedAt": "2025-01-01T00:00:00Z",
        },
    )
    return meter, feature


async def test_push_dry_run_then_apply(api: respx.MockRouter, sleeps: list[float]) -> None:
    meter, feature = empty_openmeter(api)
    async with OpenMeterBilling(api_key=API_KEY, base_url=BASE_URL, catalog=CATALOG) as client:
        plan = await client.catalog.push(dry_run=True)
        assert [a.action for a in plan.actions] == ["create", "create"]
        assert meter.call_count == 0
        assert feature.call_count == 0
        applied = await client.catalog.push()
    assert applied.applied
    assert json.loads(meter.calls.last.request.content)["slug"] == "tokens"
    assert json.loads(feature.calls.last.request.content)["meterSlug"] == "tokens"


def test_sync_facade_pushes_too(api: respx.MockRouter) -> None:
    meter, _ = empty_openmeter(api)
    with SyncOpenMeterBilling(api_key=API_KEY, base_url=BASE_URL, catalog=CATALOG) as client:
        assert client.catalog.definition is CATALOG
        client.catalog.push()
    assert meter.call_count == 1


async def test_no_catalog_is_a_configuration_error() -> None:
    async with OpenMeterBilling(base_url=BASE_URL) as client:
        with pytest.raises(ConfigurationError, match="catalog="):
            await client.catalog.push()
