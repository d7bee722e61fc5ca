"""client.usage against a mocked OpenMeter: balance, consume, refund."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from _payloads import CUSTOMER_ID as CID
from _payloads import NOW, metered_json

from openmeter_billing import InsufficientBalanceError, InvalidInputError, OpenMeterBilling

ENT = "/api/v2/customers/acme/entitlements/ai_tokens"


def entitlement(soft: bool = False) -> dict[str, object]:
    return metered_json(isSoftLimit=soft)


def mock_feature(
    api: respx.MockRouter, aggregation: str = "SUM", value_property: str | None = "$.usage.tokens"
) -> None:
    api.get("/api/v1/features/ai_tokens").respond(
        200,
        json={
            "id": "01JBBBBBBBBBBBBBBBBBBBBBBB",
            "key": "ai_tokens",
            "name": "AI",
            "meterSlug": "tokens",
            "createdAt": NOW,
            "updatedAt": NOW,
        },
    )
    meter: dict[str, object] = {
        "id": "01JEEEEEEEEEEEEEEEEEEEEEEE",
        "slug": "tokens",
        "aggregation": aggregation,
        "eventType": "ai-tokens",
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    if value_property:
        meter["valueProperty"] = value_property
    api.get("/api/v1/meters/tokens").respond(200, json=meter)


async def test_balance_combines_entitlement_and_value(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get(ENT).respond(200, json=entitlement())
    api.get(ENT + "/value").respond(
        200, json={"hasAccess": True, "balance": 700, "usage": 300, "overage": 0}
    )
    balance = await client.usage.balance("acme", "ai_tokens")
    assert balance.customer_id == CID
    assert (balance.balance, balance.usage, balance.overage) == (700, 300, 0)
    assert balance.next_reset is not None and balance.next_reset.month == 2
    assert balance.soft_limit is False


async def test_consume_sends_event_shaped_by_the_meter(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get(ENT).respond(200, json=entitlement())
    api.get(ENT + "/value").respond(200, json={"hasAccess": True, "balance": 700, "usage": 300})
    mock_feature(api)
    ingest = api.post("/api/v1/events").respond(204)
    result = await client.usage.consume("acme", "ai_tokens", 200, idempotency_key="req-1")
    sent = json.loads(ingest.calls.last.request.content)
    assert sent[0]["type"] == "ai-tokens"
    assert sent[0]["data"] == {"usage": {"tokens": 200}}
    assert sent[0]["subject"] == "acme"
    assert result.estimated_balance == 500
    again = await client.usage.consume("acme", "ai_tokens", 200, idempotency_key="req-1")
    assert again.events[0].id == result.events[0].id  # OpenMeter drops the duplicate


async def test_consume_beyond_balance_raises_unless_soft_limit(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get(ENT).mock(
        side_effect=[
            httpx.Response(200, json=entitlement()),
            httpx.Response(200, json=entitlement(soft=True)),
        ]
    )
    api.get(ENT + "/value").respond(200, json={"hasAccess": True, "balance": 50})
    mock_feature(api)
    ingest = api.post("/api/v1/events").respond(204)
    with pytest.raises(InsufficientBalanceError) as caught:
        await client.usage.consume("acme", "ai_tokens", 100)
    assert (caught.value.balance, caught.value.requested) == (50, 100)
    assert ingest.call_count == 0
    result = await client.usage.consume("acme", "ai_tokens", 100)  # soft limit: allowed
    assert result.estimated_balance == 0
    assert ingest.call_count == 1


async def test_consume_on_count_meter_sends_one_event_per_unit(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get(ENT).respond(200, json=entitlement())
    api.get(ENT + "/value").respond(200, json={"hasAccess": True, "balance": 10})
    mock_feature(api, aggregation="COUNT", value_property=None)
    ingest = api.post("/api/v1/events").respond(204)
    await client.usage.consume("acme", "ai_tokens", 3)
    sent = json.loads(ingest.calls.last.request.content)
    assert len(sent) == 3
    assert len({e["id"] for e in sent}) == 3
    with pytest.raises(InvalidInputError, match="whole number"):
        await client.usage.consume("acme", "ai_tokens", 1.5)


async def test_refund_creates_a_compensating_grant_once(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    grant = {
        "id": "01JDDDDDDDDDDDDDDDDDDDDDDD",
        "entitlementId": "01JCCCCCCCCCCCCCCCCCCCCCCC",
        "amount": 25,
        "effectiveAt": NOW,
        "createdAt": NOW,
        "updatedAt": NOW,
        "metadata": {"openmeter_billing.idempotency_key": "refund:req-9"},
    }
    listing = api.get(ENT + "/grants").mock(
        side_effect=[
            httpx.Response(200, json={"items": [], "page": 1, "pageSize": 100, "totalCount": 0}),
            httpx.Response(
                200, json={"items": [grant], "page": 1, "pageSize": 100, "totalCount": 1}
            ),
        ]
    )
    create = api.post(ENT + "/grants").respond(201, json=grant)
    first = await client.usage.refund(
        "acme", "ai_tokens", 25, reason="failed request", idempotency_key="refund:req-9"
    )
    body = json.loads(create.calls.last.request.content)
    assert body["amount"] == 25
    assert body["metadata"]["openmeter_billing.reason"] == "failed request"
    second = await client.usage.refund(
        "acme", "ai_tokens", 25, reason="failed request", idempotency_key="refund:req-9"
    )
    assert second.id == first.id
    assert create.call_count == 1
    assert listing.call_count == 2
