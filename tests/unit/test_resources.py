"""Every resource method: the request it sends (method, path, query, headers, body) and what it returns."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest
import respx
from _payloads import (
    CUSTOMER_ID,
    ENT_ID,
    FEATURE_ID,
    GRANT_ID,
    METER_ID,
    NOW,
    customer_json,
    grant_json,
    metered_json,
)

from openmeter_billing import (
    InvalidInputError,
    OpenMeterBilling,
    Organization,
    SubjectMismatchError,
    User,
)
from openmeter_billing.types import (
    EntitlementBoolean,
    EntitlementGrantCreateInput,
    EntitlementMetered,
    EntitlementMeteredCreateInputs,
    EntitlementStatic,
    ExpirationPeriod,
    IssueAfterReset,
    RecurringPeriodCreateInput,
)


def page(
    items: list[dict[str, object]], page: int = 1, size: int = 100, total: int | None = None
) -> dict[str, object]:
    return {
        "items": items,
        "page": page,
        "pageSize": size,
        "totalCount": len(items) if total is None else total,
    }


def body_of(route: respx.Route) -> object:
    return json.loads(route.calls.last.request.content)


# --- customers -----------------------------------------------------------------------------------


async def test_customers_create_sends_camel_case_body(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.post("/api/v1/customers").respond(201, json=customer_json())
    customer = await client.customers.create(
        name="Acme",
        key="acme",
        primary_email="billing@acme.test",
        currency="USD",
        subject_keys=["acme"],
        metadata={"tier": "gold"},
        billing_address={"country": "US", "city": "NYC"},
    )
    assert body_of(route) == {
        "name": "Acme",
        "key": "acme",
        "primaryEmail": "billing@acme.test",
        "currency": "USD",
        "usageAttribution": {"subjectKeys": ["acme"]},
        "metadata": {"tier": "gold"},
        "billingAddress": {"country": "US", "city": "NYC"},
    }
    assert route.calls.last.request.headers["content-type"] == "application/json"
    assert customer.id == CUSTOMER_ID
    assert customer.subject_keys == ["acme"]
    assert customer.created_at == datetime(2025, 1, 1, tzinfo=timezone.utc)


async def test_customers_create_rejects_bad_input_before_the_network(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.post("/api/v1/customers")
    with pytest.raises(InvalidInputError) as caught:
        await client.customers.create(name="", key="acme")
    assert caught.value.field == "name"
    with pytest.raises(InvalidInputError, match="currency"):
        await client.customers.create(name="Acme", currency="dollars")
    assert route.call_count == 0


async def test_customers_get_update_delete_access(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    get = api.get("/api/v1/customers/acme").respond(200, json=customer_json())
    put = api.put("/api/v1/customers/acme").respond(200, json=customer_json(name="Acme 2"))
    delete = api.delete("/api/v1/customers/acme").respond(204)
    access = api.get("/api/v1/customers/acme/access").respond(
        200, json={"entitlements": {"ai_tokens": {"hasAccess": True, "balance": 5}, "sso": {}}}
    )
    assert (await client.customers.get("acme")).key == "acme"
    updated = await client.customers.update("acme", name="Acme 2")
    assert body_of(put) == {"name": "Acme 2"}
    assert updated.name == "Acme 2"
    assert (await client.customers.delete("acme")).deleted is True
    result = await client.customers.access("acme")
    assert result.has("ai_tokens") is True
    assert result.has("sso") is False  # hasAccess omitted means false
    assert result.has("missing") is False
    assert get.call_count == delete.call_count == access.call_count == 1


async def test_customers_list_pages_through_everything(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.get("/api/v1/customers").mock(
        side_effect=[
            httpx.Response(
                200, json=page([customer_json(key="a"), customer_json(key="b")], 1, 2, 5)
            ),
            httpx.Response(
                200, json=page([customer_json(key="c"), customer_json(key="d")], 2, 2, 5)
            ),
            httpx.Response(200, json=page([customer_json(key="e")], 3, 2, 5)),
        ]
    )
    keys = [c.key async for c in client.customers.list(page_size=2, name="ac")]
    assert keys == ["a", "b", "c", "d", "e"]
    params = [dict(call.request.url.params) for call in route.calls]
    assert [p["page"] for p in params] == ["1", "2", "3"]
    assert all(p["pageSize"] == "2" and p["name"] == "ac" for p in params)


async def test_customers_list_await_gives_first_page(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get("/api/v1/customers").mock(
        side_effect=[
            httpx.Response(200, json=page([customer_json(key="a")], 1, 1, 2)),
            httpx.Response(200, json=page([customer_json(key="b")], 2, 1, 2)),
        ]
    )
    first = await client.customers.list(page_size=1)
    assert [c.key for c in first.items] == ["a"]
    assert first.has_next_page()
    second = await first.get_next_page()
    assert [c.key for c in second.items] == ["b"]
    assert not second.has_next_page()


# --- entitlements --------------------------------------------------------------------------------


async def test_entitlement_value_with_time_and_missing_has_access(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.get("/api/v2/customers/acme/entitlements/ai_tokens/value").respond(
        200, json={"balance": 0, "usage": 1200, "overage": 200, "totalAvailableGrantAmount": 1000}
    )
    at = datetime(2025, 1, 15, 12, 30, tzinfo=timezone.utc)
    value = await client.entitlements.value("acme", "ai_tokens", time=at)
    assert route.calls.last.request.url.params["time"] == "2025-01-15T12:30:00Z"
    assert value.has_access is False
    assert (value.balance, value.usage, value.overage) == (0, 1200, 200)
    assert await client.entitlements.has("acme", "ai_tokens") is False


async def test_entitlement_value_refuses_naive_time(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    with pytest.raises(InvalidInputError, match="timezone-aware"):
        await client.entitlements.value("acme", "ai_tokens", time=datetime(2025, 1, 1))


async def test_entitlement_create_from_typed_model(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.post("/api/v2/customers/acme/entitlements").respond(201, json=metered_json())
    created = await client.entitlements.create(
        "acme",
        EntitlementMeteredCreateInputs(
            feature_key="ai_tokens",
            usage_period=RecurringPeriodCreateInput(
                interval="MONTH", anchor=datetime(2025, 1, 1, tzinfo=timezone.utc)
            ),
            issue=IssueAfterReset(amount=10_000, priority=1),
            is_soft_limit=False,
        ),
    )
    assert body_of(route) == {
        "type": "metered",
        "featureKey": "ai_tokens",
        "isSoftLimit": False,
        "usagePeriod": {"interval": "MONTH", "anchor": "2025-01-01T00:00:00Z"},
        "issue": {"amount": 10000.0, "priority": 1},
    }
    assert isinstance(created, EntitlementMetered)
    assert created.usage_period is not None and created.usage_period.interval_iso == "P1M"


async def test_entitlement_create_from_dict_boolean_and_static(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.post("/api/v2/customers/acme/entitlements").mock(
        side_effect=[
            httpx.Response(201, json=metered_json(type="boolean")),
            httpx.Response(201, json=metered_json(type="static", config='{"seats":10}')),
        ]
    )
    boolean = await client.entitlements.create("acme", {"type": "boolean", "featureKey": "sso"})
    static = await client.entitlements.create(
        "acme", {"type": "static", "featureKey": "seats", "config": {"seats": 10}}
    )
    assert isinstance(boolean, EntitlementBoolean)
    assert isinstance(static, EntitlementStatic) and static.config_value == {"seats": 10}
    assert json.loads(route.calls[1].request.content)["config"] == '{"seats":10}'


async def test_entitlement_create_rejects_bad_bodies_before_the_network(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.post("/api/v2/customers/acme/entitlements")
    with pytest.raises(InvalidInputError, match="usage_period|usagePeriod"):
        await client.entitlements.create("acme", {"type": "metered", "featureKey": "ai_tokens"})
    with pytest.raises(InvalidInputError, match="JSON object"):
        await client.entitlements.create(
            "acme", {"type": "static", "featureKey": "x", "config": "[1]"}
        )
    with pytest.raises(InvalidInputError):
        await client.entitlements.create(
            "acme",
            {"type": "metered", "featureKey": "Bad Key", "usagePeriod": {"interval": "MONTH"}},
        )
    with pytest.raises(InvalidInputError, match="interval"):
        await client.entitlements.create(
            "acme", {"type": "metered", "featureKey": "a", "usagePeriod": {"interval": "fortnight"}}
        )
    assert route.call_count == 0


async def test_entitlement_get_list_override_delete(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get("/api/v2/customers/acme/entitlements/ai_tokens").respond(200, json=metered_json())
    listing = api.get("/api/v2/customers/acme/entitlements").respond(
        200, json=page([metered_json(), metered_json(type="boolean")])
    )
    override = api.put("/api/v2/customers/acme/entitlements/ai_tokens/override").respond(
        201, json=metered_json(isSoftLimit=True)
    )
    delete = api.delete(f"/api/v2/customers/acme/entitlements/{ENT_ID}").respond(204)
    assert isinstance(await client.entitlements.get("acme", "ai_tokens"), EntitlementMetered)
    kinds = [e.type async for e in client.entitlements.list("acme", include_deleted=True)]
    assert kinds == ["metered", "boolean"]
    assert listing.calls.last.request.url.params["includeDeleted"] == "true"
    replaced = await client.entitlements.override(
        "acme",
        "ai_tokens",
        {
            "type": "metered",
            "featureKey": "ai_tokens",
            "usagePeriod": {"interval": "MONTH"},
            "isSoftLimit": True,
        },
    )
    assert isinstance(replaced, EntitlementMetered) and replaced.is_soft_limit
    assert body_of(override)["isSoftLimit"] is True  # type: ignore[index]
    await client.entitlements.delete("acme", ENT_ID)
    assert delete.call_count == 1


async def test_entitlement_history_and_reset(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    history = api.get("/api/v2/customers/acme/entitlements/ai_tokens/history").respond(
        200,
        json={
            "windowedHistory": [
                {
                    "period": {"from": NOW, "to": "2025-01-02T00:00:00Z"},
                    "usage": 5,
                    "balanceAtStart": 100,
                }
            ],
            "burndownHistory": [
                {
                    "period": {"from": NOW, "to": "2025-01-02T00:00:00Z"},
                    "usage": 5,
                    "overage": 0,
                    "balanceAtStart": 100,
                    "grantBalancesAtStart": {GRANT_ID: 100},
                    "balanceAtEnd": 95,
                    "grantBalancesAtEnd": {GRANT_ID: 95},
                    "grantUsages": [{"grantId": GRANT_ID, "usage": 5}],
                }
            ],
        },
    )
    reset = api.post("/api/v2/customers/acme/entitlements/ai_tokens/reset").respond(204)
    result = await client.entitlements.history(
        "acme", "ai_tokens", window_size="DAY", from_=datetime(2025, 1, 1, tzinfo=timezone.utc)
    )
    assert dict(history.calls.last.request.url.params) == {
        "windowSize": "DAY",
        "from": "2025-01-01T00:00:00Z",
    }
    assert result.windowed_history[0].balance_at_start == 100
    assert result.burndown_history[0].grant_usages[0].usage == 5
    await client.entitlements.reset("acme", "ai_tokens", retain_anchor=True, preserve_overage=False)
    assert body_of(reset) == {"retainAnchor": True, "preserveOverage": False}


async def test_entitlements_access_returns_values_by_feature(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get("/api/v1/customers/acme/access").respond(
        200, json={"entitlements": {"ai_tokens": {"hasAccess": True}}}
    )
    access = await client.entitlements.access("acme")
    assert access["ai_tokens"].has_access is True


# --- grants --------------------------------------------------------------------------------------


async def test_grants_create_list_all_pages_and_void(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    create = api.post("/api/v2/customers/acme/entitlements/ai_tokens/grants").respond(
        201, json=grant_json()
    )
    api.get("/api/v2/customers/acme/entitlements/ai_tokens/grants").mock(
        side_effect=[
            httpx.Response(200, json=page([grant_json(id="01JD0000000000000000000001")], 1, 1, 2)),
            httpx.Response(200, json=page([grant_json(id="01JD0000000000000000000002")], 2, 1, 2)),
        ]
    )
    void = api.delete(f"/api/v1/grants/{GRANT_ID}").respond(204)
    grant = await client.entitlements.grants.create(
        "acme",
        "ai_tokens",
        EntitlementGrantCreateInput(
            amount=1000,
            effective_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
            priority=1,
            expiration=ExpirationPeriod(duration="YEAR", count=1),
            max_rollover_amount=1000,
            metadata={"idempotency_key": "checkout:cs_123"},
        ),
    )
    assert body_of(create) == {
        "amount": 1000.0,
        "effectiveAt": "2025-01-01T00:00:00Z",
        "priority": 1,
        "expiration": {"duration": "YEAR", "count": 1},
        "maxRolloverAmount": 1000.0,
        "metadata": {"idempotency_key": "checkout:cs_123"},
    }
    assert grant.id == GRANT_ID
    ids = [g.id async for g in client.entitlements.grants.list("acme", "ai_tokens", page_size=1)]
    assert ids == ["01JD0000000000000000000001", "01JD0000000000000000000002"]
    await client.entitlements.grants.void(GRANT_ID, at=datetime(2025, 1, 2, tzinfo=timezone.utc))
    assert void.calls.last.request.url.params["at"] == "2025-01-02T00:00:00Z"


async def test_grant_create_rejects_non_positive_amount(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        await client.entitlements.grants.create(
            "acme", "ai_tokens", {"amount": 0, "effectiveAt": NOW}
        )
    assert caught.value.field == "amount"


# --- events --------------------------------------------------------------------------------------


async def test_ingest_single_event_defaults(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.post("/api/v1/events").respond(204)
    event = await client.events.ingest(type="ai-tokens", customer="acme", data={"tokens": 850})
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/cloudevents+json"
    sent = json.loads(request.content)
    assert sent["id"] == event.id and len(event.id) == 36
    assert sent["source"] == "openmeter-billing"
    assert sent["specversion"] == "1.0"
    assert sent["subject"] == "acme"
    assert sent["data"] == {"tokens": 850}
    # No time is sent: OpenMeter stamps the event on receipt, so its clock decides.
    assert "time" not in sent
    assert event.time is None


async def test_ingest_batch_uses_batch_content_type_and_principal_subject(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.post("/api/v1/events").respond(204)
    org = Organization(id="acme-inc", name="Acme")
    events = await client.events.ingest_batch(
        [
            {"type": "ai-tokens", "data": {"tokens": 1}},
            {"type": "ai-tokens", "data": {"tokens": 2}, "id": "fixed"},
        ],
        customer=org,
    )
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/cloudevents-batch+json"
    sent = json.loads(request.content)
    assert [e["subject"] for e in sent] == ["acme-inc", "acme-inc"]
    assert sent[1]["id"] == "fixed" and events[1].id == "fixed"


async def test_ingest_refuses_subject_of_another_customer(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.post("/api/v1/events")
    user = User(id="u1")
    with pytest.raises(SubjectMismatchError) as caught:
        await client.events.ingest(type="ai-tokens", customer=user, subject="u2", data={})
    assert caught.value.field == "event.subject"
    with pytest.raises(SubjectMismatchError):
        await client.events.ingest_batch([{"type": "t", "subject": "someone-else"}], customer=user)
    with pytest.raises(SubjectMismatchError):
        await client.events.ingest(type="t", customer="acme", subject="other")
    assert route.call_count == 0
    route.respond(204)
    await client.events.ingest(type="t", customer=user, subject="u1")  # its own subject is fine


async def test_ingest_validation_errors_name_the_field(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    with pytest.raises(InvalidInputError, match="subject"):
        await client.events.ingest(type="t")
    with pytest.raises(InvalidInputError) as caught:
        await client.events.ingest(type="t", customer="acme", time=datetime(2025, 1, 1))
    assert caught.value.field == "event.time"
    with pytest.raises(InvalidInputError, match="non-empty"):
        await client.events.ingest_batch([])


async def test_events_list(api: respx.MockRouter, client: OpenMeterBilling) -> None:
    route = api.get("/api/v1/events").respond(
        200,
        json=[
            {
                "event": {
                    "id": "e1",
                    "source": "s",
                    "specversion": "1.0",
                    "type": "t",
                    "subject": "acme",
                    "time": NOW,
                },
                "customerId": CUSTOMER_ID,
                "ingestedAt": NOW,
                "storedAt": NOW,
            }
        ],
    )
    events = await client.events.list(
        subject="acme", limit=10, customer_ids=[CUSTOMER_ID, CUSTOMER_ID]
    )
    assert route.calls.last.request.url.params.get_list("customerId") == [CUSTOMER_ID, CUSTOMER_ID]
    assert events[0].event.id == "e1" and events[0].customer_id == CUSTOMER_ID


# --- features, meters, portal --------------------------------------------------------------------


def feature_json(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": FEATURE_ID,
        "key": "ai_tokens",
        "name": "AI tokens",
        "meterSlug": "tokens",
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    body.update(overrides)
    return body


def meter_json(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": METER_ID,
        "slug": "tokens",
        "aggregation": "SUM",
        "eventType": "ai-tokens",
        "valueProperty": "$.tokens",
        "createdAt": NOW,
        "updatedAt": NOW,
    }
    body.update(overrides)
    return body


async def test_features(api: respx.MockRouter, client: OpenMeterBilling) -> None:
    create = api.post("/api/v1/features").respond(201, json=feature_json())
    api.get("/api/v1/features/ai_tokens").respond(200, json=feature_json())
    listing = api.get("/api/v1/features").respond(200, json=page([feature_json()]))
    delete = api.delete("/api/v1/features/ai_tokens").respond(204)
    feature = await client.features.create(
        key="ai_tokens",
        name="AI tokens",
        meter_slug="tokens",
        meter_group_by_filters={"model": "gpt"},
    )
    assert body_of(create) == {
        "key": "ai_tokens",
        "name": "AI tokens",
        "meterSlug": "tokens",
        "meterGroupByFilters": {"model": "gpt"},
    }
    assert feature.meter_slug == "tokens"
    assert (await client.features.get("ai_tokens")).id == FEATURE_ID
    assert [f.key async for f in client.features.list(include_archived=True)] == ["ai_tokens"]
    assert listing.calls.last.request.url.params["page"] == "1"
    await client.features.delete("ai_tokens")
    assert delete.call_count == 1
    with pytest.raises(InvalidInputError):
        await client.features.create(key="AI Tokens", name="bad key")


async def test_meters(api: respx.MockRouter, client: OpenMeterBilling) -> None:
    create = api.post("/api/v1/meters").respond(201, json=meter_json())
    api.get("/api/v1/meters").respond(200, json=[meter_json()])
    api.get("/api/v1/meters/tokens").respond(200, json=meter_json())
    update = api.put("/api/v1/meters/tokens").respond(200, json=meter_json(name="Tokens"))
    delete = api.delete("/api/v1/meters/tokens").respond(204)
    query = api.get("/api/v1/meters/tokens/query").respond(
        200,
        json={
            "data": [
                {
                    "value": 42,
                    "windowStart": NOW,
                    "windowEnd": "2025-01-02T00:00:00Z",
                    "subject": None,
                    "groupBy": {"model": "gpt"},
                }
            ]
        },
    )
    meter = await client.meters.create(
        slug="tokens",
        event_type="ai-tokens",
        aggregation="SUM",
        value_property="$.tokens",
        group_by={"model": "$.model"},
    )
    assert body_of(create) == {
        "slug": "tokens",
        "eventType": "ai-tokens",
        "aggregation": "SUM",
        "valueProperty": "$.tokens",
        "groupBy": {"model": "$.model"},
    }
    assert meter.value_property == "$.tokens"
    assert [m.slug for m in await client.meters.list()] == ["tokens"]
    assert (await client.meters.get("tokens")).id == METER_ID
    assert (await client.meters.update("tokens", name="Tokens")).name == "Tokens"
    assert body_of(update) == {"name": "Tokens"}
    result = await client.meters.query(
        "tokens",
        window_size="DAY",
        from_=datetime(2025, 1, 1, tzinfo=timezone.utc),
        subject=["a", "b"],
        group_by=["subject"],
        filter_group_by={"model": "gpt"},
    )
    params = query.calls.last.request.url.params
    assert params.get_list("subject") == ["a", "b"] and params["filterGroupBy[model]"] == "gpt"
    assert result.data[0].value == 42 and result.data[0].group_by == {"model": "gpt"}
    await client.meters.delete("tokens")
    assert delete.call_count == 1
    with pytest.raises(InvalidInputError, match="value_property"):
        await client.meters.create(
            slug="calls", event_type="api", aggregation="COUNT", value_property="$.x"
        )


async def test_portal_tokens(api: respx.MockRouter, client: OpenMeterBilling) -> None:
    create = api.post("/api/v1/portal/tokens").respond(
        200,
        json={
            "id": "01JFFFFFFFFFFFFFFFFFFFFFFF",
            "subject": "u1",
            "token": "portal-secret-token",
            "expiresAt": NOW,
        },
    )
    api.get("/api/v1/portal/tokens").respond(
        200, json=[{"id": "01JFFFFFFFFFFFFFFFFFFFFFFF", "subject": "u1"}]
    )
    invalidate = api.post("/api/v1/portal/tokens/invalidate").respond(204)
    token = await client.portal.create_token(customer=User(id="u1"), allowed_meter_slugs=["tokens"])
    assert body_of(create) == {"subject": "u1", "allowedMeterSlugs": ["tokens"]}
    assert token.token == "portal-secret-token"
    assert "portal-secret-token" not in repr(token)
    assert [t.subject for t in await client.portal.list_tokens(limit=5)] == ["u1"]
    await client.portal.invalidate(subject="u1")
    assert body_of(invalidate) == {"subject": "u1"}
    with pytest.raises(InvalidInputError):
        await client.portal.create_token()


async def test_customer_argument_accepts_principal(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.get("/api/v2/customers/u42/entitlements/ai_tokens/value").respond(
        200, json={"hasAccess": True}
    )
    assert await client.entitlements.has(User(id="u42"), "ai_tokens") is True
    assert route.call_count == 1
    with pytest.raises(InvalidInputError, match="customer"):
        await client.entitlements.value("", "ai_tokens")
