"""Local OpenMeter ingestion: exact content types, CloudEvents validation, dedupe, attribution."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from openmeter_billing import OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter

from .conftest import make_metered

EVENT = {"id": "e1", "source": "test", "specversion": "1.0", "type": "tokens", "subject": "acme"}


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/cloudevents+json", EVENT),
        ("application/cloudevents-batch+json", [EVENT]),
        ("application/json", EVENT),
        ("application/json", [EVENT]),
    ],
)
async def test_accepted_content_types(
    raw: httpx.AsyncClient, content_type: str, body: object
) -> None:
    response = await raw.post(
        "/api/v1/events", content=json.dumps(body), headers={"content-type": content_type}
    )
    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "text/plain", "application/cloudevents"]
)
async def test_any_other_content_type_is_400(raw: httpx.AsyncClient, content_type: str) -> None:
    response = await raw.post(
        "/api/v1/events", content=json.dumps(EVENT), headers={"content-type": content_type}
    )
    assert response.status_code == 400
    assert "invalid content type" in response.json()["detail"]


@pytest.mark.parametrize("missing", ["id", "source", "type", "subject", "specversion"])
async def test_required_cloudevent_fields(raw: httpx.AsyncClient, missing: str) -> None:
    event = {k: v for k, v in EVENT.items() if k != missing}
    response = await raw.post(
        "/api/v1/events",
        content=json.dumps(event),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert response.status_code == 400
    assert missing in response.json()["detail"]


async def test_batch_is_all_or_nothing_on_validation(
    raw: httpx.AsyncClient, local: LocalOpenMeter
) -> None:
    bad = [EVENT, {**EVENT, "id": "e2", "data": "not an object"}]
    response = await raw.post(
        "/api/v1/events",
        content=json.dumps(bad),
        headers={"content-type": "application/cloudevents-batch+json"},
    )
    assert response.status_code == 400
    assert "events[1].data" in response.json()["detail"]
    assert local.snapshot()["events"] == []


async def test_duplicates_by_source_and_id_are_dropped_silently(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await make_metered(
        om, entitlement={"usagePeriod": {"interval": "MONTH"}, "issue": {"amount": 100}}
    )
    for _ in range(3):
        await om.events.ingest(type="tokens", customer="acme", data={"value": 7}, id="same")
    await om.events.ingest(
        type="tokens", customer="acme", data={"value": 7}, id="same", source="other"
    )
    value = await om.entitlements.value("acme", "tokens")
    assert value.usage == 14
    assert len(local.snapshot()["events"]) == 2


async def test_missing_time_is_stamped_with_the_emulator_clock(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await om.customers.create(name="Acme", key="acme")
    local.clock.advance(days=3)
    await om.events.ingest(type="tokens", customer="acme", data={"value": 1})
    listed = await om.events.list()
    assert listed[0].event.time == local.clock.now()


async def test_events_are_attributed_by_key_id_and_subject_keys(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await make_metered(
        om, entitlement={"usagePeriod": {"interval": "MONTH"}, "issue": {"amount": 100}}
    )
    acme = await om.customers.get("acme")
    await om.customers.update("acme", name="Acme", key="acme", subject_keys=["acme-legacy"])
    for subject in ("acme", acme.id, "acme-legacy", "someone-else"):
        await om.events.ingest(type="tokens", subject=subject, data={"value": 1})
    value = await om.entitlements.value("acme", "tokens")
    assert value.usage == 3
    listed = await om.events.list(subject="acme-legacy")
    assert [e.customer_id for e in listed] == [acme.id]


async def test_event_without_a_usable_value_is_listed_with_a_validation_error(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await make_metered(
        om, entitlement={"usagePeriod": {"interval": "MONTH"}, "issue": {"amount": 100}}
    )
    await om.events.ingest(type="tokens", customer="acme", data={"value": "lots"})
    listed = await om.events.list()
    assert listed[0].validation_error
    assert (await om.entitlements.value("acme", "tokens")).usage == 0


async def test_event_list_defaults_to_the_last_72_hours(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await om.customers.create(name="Acme", key="acme")
    await om.events.ingest(type="tokens", customer="acme", id="old")
    local.clock.advance(days=4)
    await om.events.ingest(type="tokens", customer="acme", id="new")
    assert [e.event.id for e in await om.events.list()] == ["new"]
    earlier = await om.events.list(from_=local.clock.now() - timedelta(days=5))
    assert [e.event.id for e in earlier] == ["new", "old"]
