"""Mapping rules beyond the fixtures: API versions, cancel sequences, unknown plans and types."""

from __future__ import annotations

import json
from typing import Any

from providers._deliveries import FIXTURES, adapter, sign
from providers.test_mapping_golden import CATALOG, resolve

from openmeter_billing.providers import MappedEvent


def deliver(provider: str, payload: dict[str, Any], delivery_id: str = "dlv_1") -> MappedEvent:
    body = json.dumps(payload).encode()
    a = adapter(provider, resolve_customer=resolve, tolerance=10**10)
    return a.map(a.verify(sign(provider, body, delivery_id=delivery_id), body), catalog=CATALOG)


def load(provider: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / provider / f"{name}.json").read_text())


def test_stripe_before_basil_reads_periods_from_the_subscription() -> None:
    payload = load("stripe", "customer.subscription.created")
    sub = payload["data"]["object"]
    item = sub["items"]["data"][0]
    sub["current_period_start"] = item.pop("current_period_start")
    sub["current_period_end"] = item.pop("current_period_end")
    (event,) = deliver("stripe", payload).billing_events
    assert event.current_period_end is not None
    assert int(event.current_period_end.timestamp()) == sub["current_period_end"]


def test_stripe_invoice_before_basil_links_the_subscription_at_top_level() -> None:
    payload = load("stripe", "invoice.payment_succeeded")
    invoice = payload["data"]["object"]
    invoice["subscription"] = invoice.pop("parent")["subscription_details"]["subscription"]
    (event,) = deliver("stripe", payload).billing_events
    assert (event.type, event.subscription_id, event.plan) == (
        "invoice.paid",
        "sub_1RMgafCMHTTliF5imBKfvfyV",
        "pro",
    )


def test_stripe_undoing_a_scheduled_cancel_is_uncanceled() -> None:
    payload = load("stripe", "customer.subscription.updated.cancel_at_period_end")
    sub = payload["data"]["object"]
    sub.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
    payload["data"]["previous_attributes"] = {"cancel_at_period_end": True, "cancel_at": 1769536454}
    (event,) = deliver("stripe", payload).billing_events
    assert event.type == "subscription.uncanceled" and not event.cancel_at_period_end


def test_polar_cancel_keeps_access_then_revoke_ends_it() -> None:
    base = load("polar", "subscription.created")
    canceled = {**base, "type": "subscription.canceled"}
    canceled["data"] = {
        **base["data"],
        "cancel_at_period_end": True,
        "ends_at": base["data"]["current_period_end"],
    }
    revoked = {
        **base,
        "type": "subscription.revoked",
        "data": {**base["data"], "status": "canceled"},
    }
    (first,) = deliver("polar", canceled).billing_events
    (second,) = deliver("polar", revoked, "dlv_2").billing_events
    assert (first.type, first.cancel_at_period_end) == ("subscription.canceled", True)
    assert second.type == "subscription.revoked"


def test_unknown_plan_is_rejected_not_applied() -> None:
    payload = load("stripe", "customer.subscription.created")
    for item in payload["data"]["object"]["items"]["data"]:
        item["price"]["product"] = "prod_unknown"
        item["price"]["id"] = "price_unknown"
        item.pop("plan", None)
    mapped = deliver("stripe", payload)
    assert (
        mapped.billing_events == ()
        and mapped.rejected
        and mapped.rejected.startswith("unknown_plan")
    )


def test_unknown_event_type_is_reported_not_an_error() -> None:
    mapped = deliver(
        "stripe",
        {"id": "evt_x", "type": "issuing_card.created", "created": 1, "data": {"object": {}}},
    )
    assert mapped.unknown_type and mapped.billing_events == ()


def test_stripe_addon_item_carries_its_quantity() -> None:
    payload = load("stripe", "customer.subscription.created")
    items = payload["data"]["object"]["items"]["data"]
    items.append({"price": {"id": "support:monthly", "product": "prod_support"}, "quantity": 2})
    (event,) = deliver("stripe", payload).billing_events
    assert dict(event.addons) == {"support": 2}
