"""Push: a terraform-like plan against OpenMeter (a stateful respx fake of its meter and feature
endpoints, every request checked against the spec by the shared ``api`` fixture)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from openmeter_billing import OpenMeterBilling
from openmeter_billing.catalog import Catalog, CatalogError, define_catalog
from openmeter_billing.catalog.push import push_catalog
from openmeter_billing.local import LocalOpenMeter

NOW = "2025-01-01T00:00:00Z"


class FakeOpenMeter:
    """Just enough of OpenMeter's meters and features API to push against."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.meters: dict[str, dict[str, Any]] = {}
        self.features: dict[str, dict[str, Any]] = {}
        self.writes: list[str] = []
        router.get("/api/v1/meters").mock(side_effect=self._list_meters)
        router.post("/api/v1/meters").mock(side_effect=self._create_meter)
        router.get("/api/v1/features").mock(side_effect=self._list_features)
        router.post("/api/v1/features").mock(side_effect=self._create_feature)
        router.delete(url__regex=r"/api/v1/features/(?P<key>[^/]+)$").mock(
            side_effect=self._archive_feature
        )

    def _list_meters(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=list(self.meters.values()))

    def _create_meter(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        meter = {"id": f"01J{len(self.meters):023d}", "createdAt": NOW, "updatedAt": NOW, **body}
        self.meters[body["slug"]] = meter
        self.writes.append(f"meter:{body['slug']}")
        return httpx.Response(201, json=meter)

    def _list_features(self, request: httpx.Request) -> httpx.Response:
        include_archived = request.url.params.get("includeArchived") == "true"
        items = [f for f in self.features.values() if include_archived or not f.get("archivedAt")]
        page = {"items": items, "page": 1, "pageSize": 100, "totalCount": len(items)}
        return httpx.Response(200, json=page)

    def _create_feature(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        feature = {
            "id": f"01K{len(self.features):023d}",
            "createdAt": NOW,
            "updatedAt": NOW,
            **body,
        }
        self.features[body["key"]] = feature
        self.writes.append(f"feature:{body['key']}")
        return httpx.Response(201, json=feature)

    def _archive_feature(self, request: httpx.Request, key: str) -> httpx.Response:
        self.features[key]["archivedAt"] = NOW
        self.writes.append(f"archive:{key}")
        return httpx.Response(204)


@pytest.fixture
def openmeter(api: respx.MockRouter) -> FakeOpenMeter:
    return FakeOpenMeter(api)


def _summary(plan: Any) -> list[tuple[str, str, str]]:
    return [(a.kind, a.key, a.action) for a in plan.actions]


async def test_first_push_creates_meters_then_features_and_second_push_is_unchanged(
    client: OpenMeterBilling, catalog: Catalog, openmeter: FakeOpenMeter
) -> None:
    first = await push_catalog(client, catalog)
    assert first.applied
    assert _summary(first) == [
        ("meter", "tokens", "create"),
        ("feature", "ai_tokens", "create"),
        ("feature", "api_access", "create"),
        ("feature", "support_tier", "create"),
        ("feature", "priority_support", "create"),
    ]
    assert openmeter.writes[0] == "meter:tokens"
    assert openmeter.features["ai_tokens"]["meterSlug"] == "tokens"
    assert openmeter.features["ai_tokens"]["metadata"]["openmeter_billing.managed"] == "true"

    second = await push_catalog(client, catalog)
    assert {a.action for a in second.actions} == {"unchanged"}
    assert len(openmeter.writes) == 5
    assert "0 create" in second.render()


async def test_dry_run_plans_but_changes_nothing(
    client: OpenMeterBilling, catalog: Catalog, openmeter: FakeOpenMeter
) -> None:
    plan = await push_catalog(client, catalog, dry_run=True)
    assert not plan.applied
    assert len(plan.changes) == 5
    assert openmeter.writes == []
    assert "dry run" in plan.render()


async def test_conflicting_definitions_are_listed_field_by_field_and_block_the_push(
    client: OpenMeterBilling, catalog_data: dict[str, Any], openmeter: FakeOpenMeter
) -> None:
    await push_catalog(client, define_catalog(catalog_data))
    catalog_data["meters"]["tokens"]["aggregation"] = "COUNT"
    del catalog_data["meters"]["tokens"]["value_property"]
    catalog_data["features"]["apiAccess"]["name"] = "API access"
    catalog_data["features"]["newFeature"] = {"key": "new_feature", "type": "boolean"}
    writes_before = list(openmeter.writes)

    plan = await push_catalog(client, define_catalog(catalog_data))

    assert not plan.applied
    assert openmeter.writes == writes_before  # not even the new feature
    meter, api_access = plan.conflicts
    assert [(d.field, d.catalog, d.openmeter) for d in meter.differences] == [
        ("aggregation", "COUNT", "SUM"),
        ("value_property", None, "$.tokens"),
    ]
    assert [(d.field, d.catalog, d.openmeter) for d in api_access.differences] == [
        ("name", "API access", "api_access")
    ]
    assert ("feature", "new_feature", "create") in _summary(plan)
    text = plan.render()
    assert "! meter tokens: conflict" in text
    assert "aggregation: catalog 'COUNT', OpenMeter 'SUM'" in text
    assert "resolve the conflicts" in text


async def test_features_missing_from_the_catalog_are_archived_only_with_the_flag(
    client: OpenMeterBilling, catalog_data: dict[str, Any], openmeter: FakeOpenMeter
) -> None:
    await push_catalog(client, define_catalog(catalog_data))
    openmeter.features["hand_made"] = {
        "id": "01H00000000000000000000000",
        "key": "hand_made",
        "name": "hand made",
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    del catalog_data["features"]["prioritySupport"]
    del catalog_data["addons"]["prioritySupport"]
    smaller = define_catalog(catalog_data)

    plan = await push_catalog(client, smaller)
    assert "archive" not in {a.action for a in plan.actions}
    assert "priority_support" in openmeter.features

    plan = await push_catalog(client, smaller, archive_missing=True)
    # Only features this library created are archived; hand-made ones are left alone.
    assert [(a.key, a.action) for a in plan.actions if a.action == "archive"] == [
        ("priority_support", "archive")
    ]
    assert openmeter.writes[-1] == "archive:priority_support"
    assert "hand_made" not in [w.split(":")[1] for w in openmeter.writes]


async def test_push_refuses_an_invalid_catalog_before_any_request(
    client: OpenMeterBilling,
    catalog_data: dict[str, Any],
    openmeter: FakeOpenMeter,
    api: respx.MockRouter,
) -> None:
    catalog_data["plans"]["pro"]["entitlements"]["apiAccess"] = 3
    with pytest.raises(CatalogError):
        await push_catalog(client, define_catalog(catalog_data, check=False))
    assert api.calls.call_count == 0


async def test_plan_serialises_to_json(
    client: OpenMeterBilling, catalog: Catalog, openmeter: FakeOpenMeter
) -> None:
    data = (await push_catalog(client, catalog, dry_run=True)).to_dict()
    assert data["dry_run"] is True
    assert data["actions"][0] == {
        "kind": "meter",
        "key": "tokens",
        "action": "create",
        "differences": [],
    }


async def test_push_against_local_openmeter_is_idempotent_and_detects_conflicts(
    catalog_data: dict[str, Any],
) -> None:
    async with LocalOpenMeter().client() as local:
        dry = await push_catalog(local, define_catalog(catalog_data), dry_run=True)
        assert len(dry.changes) == 5
        assert (
            await push_catalog(local, define_catalog(catalog_data), dry_run=True)
        ).changes == dry.changes
        first = await push_catalog(local, define_catalog(catalog_data))
        assert first.applied and len(first.changes) == 5
        second = await push_catalog(local, define_catalog(catalog_data))
        assert {a.action for a in second.actions} == {"unchanged"}
        catalog_data["meters"]["tokens"]["aggregation"] = "MAX"
        catalog_data["meters"]["tokens"]["event_type"] = "other"
        del catalog_data["features"]["aiTokens"]
        for plan in catalog_data["plans"].values():
            plan["entitlements"].pop("aiTokens")
        del catalog_data["topups"]
        conflict = await push_catalog(local, define_catalog(catalog_data))
        assert [(a.kind, a.key) for a in conflict.conflicts] == [("meter", "tokens")]
        assert not conflict.applied
