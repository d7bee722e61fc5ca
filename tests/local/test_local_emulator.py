"""Local OpenMeter as a transport: routing errors, auth, clock, reset, snapshot, observers."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import _spec
import httpx
import pytest

from openmeter_billing import AuthenticationError, InvalidInputError, OpenMeterBilling
from openmeter_billing.local import Clock, LocalOpenMeter


async def test_unknown_route_is_404_problem(raw: httpx.AsyncClient) -> None:
    response = await raw.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["instance"].startswith("urn:request:")


async def test_wrong_method_is_405(raw: httpx.AsyncClient) -> None:
    response = await raw.patch("/api/v1/customers")
    assert response.status_code == 405


async def test_malformed_json_is_400(raw: httpx.AsyncClient) -> None:
    response = await raw.post(
        "/api/v1/customers", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


async def test_api_key_is_enforced_when_set() -> None:
    local = LocalOpenMeter(api_key="secret-key-123")
    async with local.client(api_key="wrong", max_retries=0) as bad:
        with pytest.raises(AuthenticationError):
            await bad.customers.create(name="A", key="a")
    async with local.client(api_key="secret-key-123") as good:
        assert (await good.customers.create(name="A", key="a")).key == "a"
    assert "secret-key-123" not in repr(local)


def test_clock_is_frozen_until_moved() -> None:
    start = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
    clock = Clock(start)
    assert clock.now() == start
    assert clock.advance(days=1, hours=2) == start + timedelta(days=1, hours=2)
    assert clock.set(start) == start
    with pytest.raises(InvalidInputError):
        clock.advance(minutes=-1)
    with pytest.raises(InvalidInputError):
        Clock(datetime(2025, 1, 1))  # naive


def test_default_clock_starts_mid_minute() -> None:
    now = LocalOpenMeter().clock.now()
    assert now.second == 30 and now.tzinfo is not None


async def test_reset_forgets_everything(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    await om.customers.create(name="A", key="a")
    assert len(local.snapshot()["customers"]) == 1
    local.reset()
    snapshot = local.snapshot()
    assert snapshot["customers"] == [] and snapshot["events"] == []


async def test_snapshot_is_json_ready(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    import json

    await om.customers.create(name="A", key="a")
    await om.events.ingest(type="t", customer="a", data={"n": 1})
    snapshot = local.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["events"][0]["subject"] == "a"


async def test_observer_sees_every_exchange(om: OpenMeterBilling, local: LocalOpenMeter) -> None:
    seen: list[tuple[str, int]] = []
    remove = local.add_observer(lambda req, resp: seen.append((req.method, resp.status_code)))
    await om.customers.create(name="A", key="a")
    remove()
    await om.customers.get("a")
    assert seen == [("POST", 201)]


def test_sync_client_on_local_openmeter() -> None:
    local = LocalOpenMeter()
    with local.sync_client() as client:
        client.customers.create(name="A", key="a")
        assert client.customers.get("a").name == "A"


def test_every_route_exists_in_the_spec() -> None:
    paths = _spec.document()["paths"]
    documented = {
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }
    served = LocalOpenMeter.routes()
    assert served, "no routes registered"
    missing = [route for route in served if route not in documented]
    assert missing == []


def test_route_templates_use_the_spec_parameter_names() -> None:
    for _, template in LocalOpenMeter.routes():
        assert re.fullmatch(r"(/[A-Za-z0-9_\-]+|/\{[A-Za-z]+\})+", template), template
