"""Strict input: every bad value fails with the library's typed error, naming the field, before
any request leaves (a catch-all respx route records anything that does)."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
import respx
from conftest import API_KEY, BASE_URL

from openmeter_billing import (
    CatalogError,
    ConfigurationError,
    InvalidInputError,
    OpenMeterBilling,
    SyncOpenMeterBilling,
)
from openmeter_billing.billing.events import BillingEvent
from openmeter_billing.catalog import define_catalog

NAN, INF = math.nan, math.inf
HUGE = 10**5000  # Python refuses str() of ints this long


@pytest.fixture
def wire(api: respx.MockRouter) -> respx.MockRouter:
    """Answers anything, so a request that should never be sent is recorded, not refused."""
    api.route().respond(200, json={})
    return api


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"tokens": NAN}, "event.data.tokens"),
        ({"tokens": INF}, "event.data.tokens"),
        ({"usage": {"tokens": -INF}}, "event.data.usage.tokens"),
        ({"tokens": HUGE}, "event.data.tokens"),
        ({"tokens": object()}, "event.data.tokens"),
        ({"items": [1, NAN]}, "event.data.items[1]"),
        ({"by": {1: 2}}, "event.data.by"),
    ],
)
async def test_event_data_that_json_cannot_carry_is_refused(
    client: OpenMeterBilling, wire: respx.MockRouter, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await client.events.ingest(type="ai-tokens", data=data, customer="acme")
    assert caught.value.field == field
    assert caught.value.hint
    assert not wire.calls


async def test_event_batch_names_the_event_at_fault(
    client: OpenMeterBilling, wire: respx.MockRouter
) -> None:
    events = [{"type": "t", "data": {"v": 1}}, {"type": "t", "data": {"v": NAN}}]
    with pytest.raises(InvalidInputError) as caught:
        await client.events.ingest_batch(events, customer="acme")
    assert caught.value.field == "events[1].data.v"
    assert not wire.calls


async def test_finite_event_data_is_still_sent(
    client: OpenMeterBilling, wire: respx.MockRouter
) -> None:
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    await client.events.ingest(
        type="t", data={"v": 1.5, "n": None, "at": when, "tags": ["a"]}, customer="acme"
    )
    assert len(wire.calls) == 1


@pytest.mark.parametrize(
    "amount", [NAN, INF, -INF, 0, -1, True, "5", pytest.param(HUGE, id="huge")]
)
async def test_usage_amounts_must_be_finite_and_positive(
    client: OpenMeterBilling, wire: respx.MockRouter, amount: Any
) -> None:
    with pytest.raises(InvalidInputError) as consumed:
        await client.usage.consume("acme", "ai_tokens", amount)
    with pytest.raises(InvalidInputError) as refunded:
        await client.usage.refund("acme", "ai_tokens", amount, reason="r", idempotency_key="k")
    assert consumed.value.field == refunded.value.field == "amount"
    assert not wire.calls


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": INF}, "amount"),
        ({"amount": NAN}, "amount"),
        ({"amount": 10, "maxRolloverAmount": INF}, "maxRolloverAmount"),
        ({"amount": 10, "minRolloverAmount": -1}, "minRolloverAmount"),
        ({"amount": 10, "annotations": {"x": NAN}}, "annotations.x"),
    ],
)
async def test_grant_bodies_refuse_non_finite_numbers(
    client: OpenMeterBilling, wire: respx.MockRouter, body: dict[str, Any], field: str
) -> None:
    body = {"effectiveAt": datetime(2026, 1, 1, tzinfo=timezone.utc), **body}
    with pytest.raises(InvalidInputError) as caught:
        await client.entitlements.grants.create("acme", "ai_tokens", body)
    assert caught.value.field is not None and caught.value.field.endswith(field)
    assert not wire.calls


async def test_raw_requests_refuse_nan_bodies(
    client: OpenMeterBilling, wire: respx.MockRouter
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await client.request("POST", "/api/v1/x", json={"value": NAN})
    assert caught.value.field == "json.value"
    assert not wire.calls


@pytest.mark.parametrize("amount", [NAN, INF, pytest.param(HUGE, id="huge")])
def test_catalog_amounts_must_be_finite(amount: Any) -> None:
    data: dict[str, Any] = {
        "meters": {"tokens": {"event_type": "t", "aggregation": "SUM", "value_property": "$.v"}},
        "features": {"ai_tokens": {"type": "metered", "meter": "tokens"}},
        "plans": {"pro": {"entitlements": {"ai_tokens": {"amount": amount, "reset": "month"}}}},
        "topups": {"pack": {"feature": "ai_tokens", "amount": amount}},
    }
    with pytest.raises(CatalogError) as caught:
        define_catalog(data)
    paths = {issue.path for issue in caught.value.issues}
    assert {"plans.pro.entitlements.ai_tokens.amount", "topups.pack.amount"} <= paths
    assert "finite" in str(caught.value)


@pytest.mark.parametrize("addons", [{"x": -1}, {"x": 0}, {"x": 1.5}, {"x": True}])
def test_billing_event_addon_quantities_are_whole_and_positive(addons: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        BillingEvent(
            type="subscription.active",
            provider="stripe",
            provider_event_id="evt_1",
            occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
            customer="acme",
            addons=addons,
        )
    assert caught.value.field == "addons.x"
    assert caught.value.hint and "quantity" in caught.value.hint


CONFIG_CASES: list[tuple[dict[str, Any], str]] = [
    ({"api_key": b"om_x"}, "decode"),
    ({"api_key": "om_x\r\nX-Evil: 1"}, "control characters"),
    ({"api_key": "om_x\n"}, "control characters"),
    ({"api_key": " om_x"}, "whitespace"),
    ({"default_headers": {"X-A": "1\r\nX-Evil: 1"}}, "line breaks"),
    ({"default_headers": {"X A": "1"}}, "header name"),
    ({"default_headers": {"X-A": 1}}, "must be a str"),
    ({"base_url": "http://"}, "no host"),
    ({"base_url": "https://"}, "no host"),
    ({"base_url": b"https://openmeter.cloud"}, "must be a str"),
    ({"timeout": -1}, "positive number"),
    ({"timeout": 0}, "positive number"),
    ({"timeout": NAN}, "positive number"),
    ({"timeout": httpx.Timeout(5, connect=-1)}, "connect"),
    ({"max_retries": "3"}, "must be an int"),
    ({"max_retries": True}, "must be an int"),
    ({"max_retries": -1}, "between 0"),
    ({"max_retries": 10**6}, "between 0"),
]


@pytest.mark.parametrize(("kwargs", "message"), CONFIG_CASES)
@pytest.mark.parametrize("make", [OpenMeterBilling, SyncOpenMeterBilling])
def test_bad_client_settings_fail_at_construction(
    make: Callable[..., Any], kwargs: dict[str, Any], message: str
) -> None:
    settings = {"api_key": API_KEY, "base_url": BASE_URL, **kwargs}
    with pytest.raises(ConfigurationError, match=message) as caught:
        make(**settings)
    assert API_KEY not in str(caught.value)
    assert "om_x" not in str(caught.value)


PER_CALL = [c for c in CONFIG_CASES if not {"api_key", "base_url"} & set(c[0])]


@pytest.mark.parametrize(("kwargs", "message"), PER_CALL)
async def test_with_options_checks_the_same_rules(
    client: OpenMeterBilling, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        client.with_options(**kwargs)


async def test_the_key_from_the_environment_is_checked_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENMETER_TOKEN", "om_from_file\n")
    with pytest.raises(ConfigurationError, match="strip"):
        OpenMeterBilling(base_url=BASE_URL)
