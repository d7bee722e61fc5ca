"""Local OpenMeter meters and features: OpenMeter's validation rules, queries and archiving."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from openmeter_billing import BadRequestError, ConflictError, NotFoundError, OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter


async def test_meter_crud(om: OpenMeterBilling) -> None:
    meter = await om.meters.create(
        slug="tokens", event_type="ai-tokens", aggregation="SUM", value_property="$.tokens"
    )
    assert meter.slug == "tokens"
    assert (await om.meters.get("tokens")).id == meter.id
    assert (await om.meters.get(meter.id)).slug == "tokens"
    assert [m.slug for m in await om.meters.list()] == ["tokens"]
    await om.meters.delete("tokens")
    with pytest.raises(NotFoundError):
        await om.meters.get("tokens")


async def test_meter_slug_taken_is_409(om: OpenMeterBilling) -> None:
    await om.meters.create(slug="calls", event_type="call", aggregation="COUNT")
    with pytest.raises(ConflictError):
        await om.meters.create(slug="calls", event_type="call", aggregation="COUNT")


async def test_sum_meter_needs_a_value_property(raw: httpx.AsyncClient) -> None:
    response = await raw.post(
        "/api/v1/meters", json={"slug": "t", "eventType": "t", "aggregation": "SUM"}
    )
    assert response.status_code == 400
    assert "valueProperty" in response.json()["detail"]


async def test_unknown_aggregation_is_400(raw: httpx.AsyncClient) -> None:
    response = await raw.post(
        "/api/v1/meters", json={"slug": "t", "eventType": "t", "aggregation": "MEDIAN"}
    )
    assert response.status_code == 400
    assert "aggregation" in response.json()["detail"]


async def test_feature_key_taken_is_409_and_free_again_after_archive(om: OpenMeterBilling) -> None:
    await om.meters.create(slug="m", event_type="m", aggregation="COUNT")
    first = await om.features.create(key="f", name="F", meter_slug="m")
    with pytest.raises(ConflictError):
        await om.features.create(key="f", name="F", meter_slug="m")
    await om.features.delete("f")
    archived = await om.features.get(first.id)
    assert archived.archived_at is not None
    second = await om.features.create(key="f", name="F2", meter_slug="m")
    assert second.id != first.id


@pytest.mark.parametrize("aggregation", ["AVG", "MIN", "MAX"])
async def test_features_refuse_avg_min_max_meters(om: OpenMeterBilling, aggregation: str) -> None:
    await om.meters.create(
        slug="m",
        event_type="m",
        aggregation=aggregation,
        value_property="$.v",  # type: ignore[arg-type]
    )
    with pytest.raises(BadRequestError) as caught:
        await om.features.create(key="f", name="F", meter_slug="m")
    assert aggregation in str(caught.value)


async def test_feature_on_unknown_meter_is_404(om: OpenMeterBilling) -> None:
    with pytest.raises(NotFoundError):
        await om.features.create(key="f", name="F", meter_slug="missing")


async def test_feature_group_by_filters_must_name_meter_group_bys(om: OpenMeterBilling) -> None:
    await om.meters.create(
        slug="m",
        event_type="m",
        aggregation="SUM",
        value_property="$.v",
        group_by={"model": "$.model"},
    )
    await om.features.create(
        key="ok", name="OK", meter_slug="m", meter_group_by_filters={"model": "a"}
    )
    with pytest.raises(BadRequestError):
        await om.features.create(
            key="bad", name="Bad", meter_slug="m", meter_group_by_filters={"region": "eu"}
        )


async def test_feature_list_is_a_bare_array_unless_page_is_sent(raw: httpx.AsyncClient) -> None:
    await raw.post("/api/v1/features", json={"key": "a", "name": "A"})
    await raw.post("/api/v1/features", json={"key": "b", "name": "B"})
    bare = (await raw.get("/api/v1/features")).json()
    paged = (await raw.get("/api/v1/features", params={"page": 1, "pageSize": 1})).json()
    assert [f["key"] for f in bare] == ["a", "b"]
    assert paged["totalCount"] == 2
    assert [f["key"] for f in paged["items"]] == ["a"]


async def test_feature_key_cannot_be_a_ulid(raw: httpx.AsyncClient) -> None:
    response = await raw.post(
        "/api/v1/features", json={"key": "01h0000000000000000000000a", "name": "X"}
    )
    assert response.status_code == 400


async def test_meter_query_windows_and_group_by(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await om.meters.create(
        slug="tokens",
        event_type="ai-tokens",
        aggregation="SUM",
        value_property="$.tokens",
        group_by={"model": "$.model"},
    )
    await om.customers.create(name="Acme", key="acme")
    start = local.clock.now()
    await om.events.ingest(type="ai-tokens", customer="acme", data={"tokens": 10, "model": "a"})
    local.clock.advance(hours=1)
    await om.events.ingest(type="ai-tokens", customer="acme", data={"tokens": "5", "model": "b"})
    local.clock.advance(hours=1)
    result = await om.meters.query(
        "tokens",
        from_=start.replace(minute=0, second=0),
        to=local.clock.now(),
        window_size="HOUR",
        group_by=["model"],
    )
    rows = sorted((r.window_start.hour, r.group_by["model"], r.value) for r in result.data)
    assert rows == [(10, "a", 10.0), (11, "b", 5.0)]
    total = await om.meters.query(
        "tokens", from_=start - timedelta(minutes=1), to=local.clock.now()
    )
    assert [r.value for r in total.data] == [15.0]


async def test_meter_counts_events_ingested_before_it_existed(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await om.customers.create(name="Acme", key="acme")
    await om.events.ingest(type="call", customer="acme")
    await om.meters.create(slug="calls", event_type="call", aggregation="COUNT")
    result = await om.meters.query(
        "calls",
        from_=datetime(2025, 1, 1, tzinfo=timezone.utc),
        to=local.clock.now() + timedelta(minutes=1),
    )
    assert [r.value for r in result.data] == [1.0]


async def test_meter_query_by_customer(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    await om.meters.create(slug="calls", event_type="call", aggregation="COUNT")
    acme = await om.customers.create(name="Acme", key="acme")
    globex = await om.customers.create(name="Globex", key="globex")
    for key in ("acme", "acme", "globex"):
        await om.events.ingest(type="call", customer=key)
    result = await om.meters.query(
        "calls",
        to=local.clock.now() + timedelta(minutes=1),
        filter_customer_id=[acme.id, globex.id],
        group_by=["customer_id"],
    )
    assert sorted((r.customer_id, r.value) for r in result.data) == sorted(
        [(acme.id, 2.0), (globex.id, 1.0)]
    )


async def test_group_by_customer_needs_a_customer_filter(raw: httpx.AsyncClient) -> None:
    await raw.post("/api/v1/meters", json={"slug": "c", "eventType": "c", "aggregation": "COUNT"})
    response = await raw.get("/api/v1/meters/c/query", params={"groupBy": "customer_id"})
    assert response.status_code == 400
    assert "filterCustomerId" in response.json()["detail"]
