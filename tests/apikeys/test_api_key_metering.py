"""API-key metering on Local OpenMeter: the helper, the ASGI middleware, and what never leaves."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from openmeter_billing import (
    Identity,
    InvalidInputError,
    Organization,
    OrganizationResolver,
    User,
)
from openmeter_billing.apikeys import ApiKeyMeter, ApiKeyUse
from openmeter_billing.local import LocalOpenMeter

START = datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc)
SECRET = "sk_live_abcdefghijklmnop"


@pytest.fixture
def local() -> LocalOpenMeter:
    return LocalOpenMeter(start=START)


def sent_events(local: LocalOpenMeter) -> list[dict[str, Any]]:
    return [e for e in local.snapshot()["events"] if e["type"] == "api-key.verified"]


async def test_record_sends_one_event_to_the_owner_without_key_material(
    local: LocalOpenMeter,
) -> None:
    identity = Identity(organization=OrganizationResolver(key="org:{id}"))
    async with local.client(identity=identity) as client:
        org = Organization(id="acme", name="Acme")
        await client.customers.sync(org)
        meter = ApiKeyMeter(client)
        event = await meter.record(
            ApiKeyUse(
                key_id="key_123",
                owner=org,
                route="POST /v1/completions",
                name="Production",
                remaining=99,
                rate_limit_max=100,
                rate_limit_window=60,
                permissions={"files": ["read"]},
            )
        )
    assert event is not None
    [stored] = sent_events(local)
    assert stored["subject"] == "org:acme"
    assert stored["customerId"] is not None  # attributed to the synced customer
    assert stored["data"] == {
        "key_id": "key_123",
        "key_name": "Production",
        "owner": "org:acme",
        "route": "POST /v1/completions",
        "remaining": 99,
        "rate_limit_enabled": True,
        "rate_limit_max": 100,
        "rate_limit_window": 60,
        "permissions": {"files": ["read"]},
    }
    assert SECRET not in json.dumps(stored)


async def test_a_request_id_makes_retries_count_once(local: LocalOpenMeter) -> None:
    async with local.client() as client:
        meter = ApiKeyMeter(client)
        use = ApiKeyUse(key_id="k1", owner=User(id="u1"), request_id="req-7")
        first = await meter.record(use)
        second = await meter.record(use)
    assert first is not None
    assert second is not None
    assert first.id == second.id
    assert len(sent_events(local)) == 1


async def test_owner_resolver_maps_the_key_to_its_team(local: LocalOpenMeter) -> None:
    owners = {"key_team": Organization(id="team-org")}
    async with local.client() as client:
        meter = ApiKeyMeter(client, owner=lambda use: owners[use.key_id], event_type="calls")
        await meter.record(ApiKeyUse(key_id="key_team", owner="ignored"))
    [stored] = [e for e in local.snapshot()["events"] if e["type"] == "calls"]
    assert stored["subject"] == "team-org"


async def test_failures_are_logged_not_raised_unless_asked(
    local: LocalOpenMeter, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[str] = []
    failing = LocalOpenMeter(api_key="right")
    async with failing.client(api_key="wrong", base_url="http://127.0.0.1") as client:
        meter = ApiKeyMeter(client, on_error=lambda exc, use: errors.append(type(exc).__name__))
        assert await meter.record(ApiKeyUse(key_id="k1", owner="acme")) is None
        strict = ApiKeyMeter(client, raise_errors=True)
        with pytest.raises(Exception, match="401"):
            await strict.record(ApiKeyUse(key_id="k1", owner="acme"))
    assert errors == ["AuthenticationError"]
    assert "API-key metering failed for key k1" in caplog.text


@pytest.mark.parametrize(
    ("use", "field"),
    [
        (ApiKeyUse(key_id="", owner="acme"), "key_id"),
        (ApiKeyUse(key_id="k", owner="acme", metadata={"api_key": SECRET}), "metadata.api_key"),
        (
            ApiKeyUse(key_id="k", owner="acme", metadata={"Client-Secret": "x"}),
            "metadata.Client-Secret",
        ),
    ],
)
async def test_bad_uses_fail_before_any_request(
    local: LocalOpenMeter, use: ApiKeyUse, field: str
) -> None:
    seen: list[str] = []
    local.add_observer(lambda request, response: seen.append(request.method))
    async with local.client() as client:
        with pytest.raises(InvalidInputError) as raised:
            await ApiKeyMeter(client).record(use)
    assert raised.value.field == field
    assert seen == []


async def test_asgi_middleware_meters_verified_requests_after_the_response(
    local: LocalOpenMeter,
) -> None:
    keys = {SECRET: ("key_123", User(id="u1"))}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        status = 200 if scope["path"] != "/missing" else 404
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def identify(scope: Any) -> ApiKeyUse | None:
        headers = dict(scope["headers"])
        found = keys.get(headers.get(b"x-api-key", b"").decode())
        return None if found is None else ApiKeyUse(key_id=found[0], owner=found[1])

    async with local.client() as client:
        wrapped = ApiKeyMeter(client).asgi(app, identify)
        transport = httpx.ASGITransport(app=wrapped)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            assert (await http.get("/v1/files", headers={"x-api-key": SECRET})).text == "ok"
            await http.post("/missing", headers={"x-api-key": SECRET})
            await http.get("/v1/files", headers={"x-api-key": "wrong"})
            await http.get("/v1/files")
    events = sent_events(local)
    assert [(e["subject"], e["data"]["route"], e["data"]["metadata"]) for e in events] == [
        ("u1", "GET /v1/files", {"status": "200"}),
        ("u1", "POST /missing", {"status": "404"}),
    ]
    assert SECRET not in json.dumps(events)
