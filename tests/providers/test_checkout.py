"""client.checkout.create and client.portal.billing_link: each provider's documented request shape
(respx), safe retries, typed errors before any call, and the customer key's round trip through
each provider's webhook mapping."""

from __future__ import annotations

import json
import pickle
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from providers._deliveries import SECRETS, fixture

from openmeter_billing import (
    ConfigurationError,
    InvalidInputError,
    OpenMeterBilling,
    ProviderAPIError,
    ProviderNotConfiguredError,
    ProviderUnsupportedError,
)
from openmeter_billing.catalog import AddOn, Feature, Meter, Plan, Price, TopUp, define_catalog
from openmeter_billing.providers import (
    Autumn,
    Creem,
    Dodo,
    Polar,
    ProviderEvent,
    Razorpay,
    Stripe,
    _api,
)

POLAR_PRODUCT = "260ea636-e7ac-452e-ae4c-8c0db35365ca"  # the fixtures' product ids
DODO_PRODUCT = "pdt_0NVPN65dLWspJhGZcSJ3d"
CREEM_PRODUCT = "prod_d1AY2Sadk9YAvLI0pj97f"
KEYS = {
    p: f"{p}_api_key_SECRET" for p in ("stripe", "polar", "dodo", "creem", "razorpay", "autumn")
}
BASE = {p: f"https://{p}.test" for p in KEYS}

CATALOG = define_catalog(
    meters={"tokens": Meter(event_type="tokens", aggregation="SUM", value_property="$.tokens")},
    features={
        "api_access": Feature(type="boolean"),
        "seats": Feature(type="boolean"),
        "ai_tokens": Feature(type="metered", meter="tokens"),
    },
    plans={
        "pro": Plan(
            entitlements={"api_access": True},
            prices={
                "monthly": Price(
                    amount=2000,
                    currency="USD",
                    interval="month",
                    provider_ids={
                        "stripe": "price_pro_monthly",
                        "polar": POLAR_PRODUCT,
                        "dodo": DODO_PRODUCT,
                        "creem": CREEM_PRODUCT,
                        "razorpay": "plan_pro_monthly",
                    },
                )
            },
        )
    },
    addons={
        "seats": AddOn(
            entitlements={"seats": True},
            multiple=True,
            max_quantity=10,
            prices={
                "monthly": Price(
                    amount=500,
                    currency="USD",
                    interval="month",
                    provider_ids={
                        "stripe": "price_seat",
                        "dodo": "adn_seat",
                        "polar": "prod_seat",
                        "razorpay": "plan_seat",
                    },
                )
            },
        ),
        "setup": AddOn(
            entitlements={"seats": True},
            prices={
                "once": Price(
                    amount=9900,
                    currency="USD",
                    interval="one_time",
                    provider_ids={"stripe": "price_setup"},
                )
            },
        ),
    },
    topups={
        "token_pack": TopUp(
            feature="ai_tokens",
            amount=1,
            prices={
                "once": Price(
                    amount=500,
                    currency="USD",
                    interval="one_time",
                    provider_ids={"stripe": "price_tokens", "polar": "prod_tokens"},
                )
            },
        )
    },
)


def adapters(**overrides: Any) -> list[Any]:
    common = {
        p: {"api_key": KEYS[p], "base_url": BASE[p], "webhook_secret": SECRETS[p]} for p in KEYS
    }
    common["razorpay"]["key_id"] = "rzp_test_key_id"
    classes = {
        "stripe": Stripe,
        "polar": Polar,
        "dodo": Dodo,
        "creem": Creem,
        "razorpay": Razorpay,
        "autumn": Autumn,
    }
    return [classes[p](**{**common[p], **overrides.get(p, {})}) for p in classes]


@pytest.fixture
def client() -> OpenMeterBilling:
    return OpenMeterBilling(base_url="http://127.0.0.1:1", catalog=CATALOG, providers=adapters())


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_api, "BACKOFF_BASE", 0.0)


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode()))


def body(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content)


SUCCESS = "https://app.example/done"


# -- Stripe ---------------------------------------------------------------------------------


@respx.mock
async def test_stripe_subscription_checkout_request_shape(client: OpenMeterBilling) -> None:
    route = respx.post(f"{BASE['stripe']}/v1/checkout/sessions").respond(
        200, json={"id": "cs_test_1", "url": "https://checkout.stripe.com/c/pay/cs_test_1"}
    )
    link = await client.checkout.create(
        "acme",
        plan="pro",
        addons={"seats": 3, "setup": 1},
        provider="stripe",
        success_url=SUCCESS,
        cancel_url="https://app.example/cancel",
        idempotency_key="checkout-acme-1",
    )
    assert (link.url, link.session_id, link.mode) == (
        "https://checkout.stripe.com/c/pay/cs_test_1",
        "cs_test_1",
        "subscription",
    )
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {KEYS['stripe']}"
    assert request.headers["Idempotency-Key"] == "checkout-acme-1"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    sent = form(request)
    assert sent["mode"] == "subscription"
    assert sent["client_reference_id"] == "acme"
    assert (sent["line_items[0][price]"], sent["line_items[0][quantity]"]) == (
        "price_pro_monthly",
        "1",
    )
    assert (sent["line_items[1][price]"], sent["line_items[1][quantity]"]) == ("price_seat", "3")
    assert (
        sent["metadata[referenceId]"] == sent["subscription_data[metadata][referenceId]"] == "acme"
    )
    assert sent["metadata[plan]"] == "pro"
    assert (sent["success_url"], sent["cancel_url"]) == (SUCCESS, "https://app.example/cancel")


@respx.mock
async def test_stripe_retries_with_the_same_idempotency_key(client: OpenMeterBilling) -> None:
    route = respx.post(f"{BASE['stripe']}/v1/checkout/sessions").mock(
        side_effect=[
            httpx.Response(500, json={"error": {"message": "try again"}}),
            httpx.ConnectError("reset"),
            httpx.Response(200, json={"id": "cs_2", "url": "https://checkout.stripe.com/cs_2"}),
        ]
    )
    link = await client.checkout.create(
        "acme", topup="token_pack", provider="stripe", success_url=SUCCESS
    )
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls}
    assert route.call_count == 3 and keys == {link.idempotency_key}
    sent = form(route.calls.last.request)
    assert sent["mode"] == "payment"
    assert sent["payment_intent_data[metadata][topup]"] == sent["metadata[topup]"] == "token_pack"


@respx.mock
async def test_provider_error_is_typed_and_holds_no_secret(client: OpenMeterBilling) -> None:
    message = f"Invalid API Key provided: {KEYS['stripe']}"
    respx.post(f"{BASE['stripe']}/v1/checkout/sessions").respond(
        401, json={"error": {"message": message, "type": "invalid_request_error"}}
    )
    with pytest.raises(ProviderAPIError) as caught:
        await client.checkout.create("acme", plan="pro", provider="stripe", success_url=SUCCESS)
    error = caught.value
    assert (error.provider, error.status_code, error.code) == (
        "stripe",
        401,
        "invalid_request_error",
    )
    assert error.provider_message == "Invalid API Key provided: ***"
    assert not error.retryable
    for text in (str(error), repr(error), repr(pickle.loads(pickle.dumps(error)).__dict__)):
        assert KEYS["stripe"] not in text


@respx.mock
async def test_stripe_portal_needs_the_customer_id_before_any_call(
    client: OpenMeterBilling,
) -> None:
    route = respx.post(f"{BASE['stripe']}/v1/billing_portal/sessions").respond(
        200, json={"id": "bps_1", "url": "https://billing.stripe.com/p/session/x"}
    )
    with pytest.raises(InvalidInputError) as caught:
        await client.portal.billing_link("acme", provider="stripe")
    assert caught.value.field == "provider_customer_id" and route.call_count == 0
    link = await client.portal.billing_link(
        "acme", provider="stripe", provider_customer_id="cus_1", return_url=SUCCESS
    )
    assert (link.url, link.session_id) == ("https://billing.stripe.com/p/session/x", "bps_1")
    assert "billing.stripe.com" not in repr(link)
    assert form(route.calls.last.request) == {"customer": "cus_1", "return_url": SUCCESS}


# -- Polar, Dodo, Creem, Razorpay, Autumn ------------------------------------------------------


@respx.mock
async def test_polar_checkout_and_customer_session(client: OpenMeterBilling) -> None:
    checkout = respx.post(f"{BASE['polar']}/v1/checkouts/").respond(
        201, json={"id": "co_1", "url": "https://buy.polar.sh/co_1"}
    )
    session = respx.post(f"{BASE['polar']}/v1/customer-sessions/").respond(
        201,
        json={"id": "cs_1", "token": "polar_cst_x", "customer_portal_url": "https://polar.sh/p"},
    )
    link = await client.checkout.create("acme", plan="pro", provider="polar", success_url=SUCCESS)
    assert (link.url, link.session_id) == ("https://buy.polar.sh/co_1", "co_1")
    sent = body(checkout.calls.last.request)
    assert checkout.calls.last.request.headers["Authorization"] == f"Bearer {KEYS['polar']}"
    assert sent["products"] == [POLAR_PRODUCT] and sent["external_customer_id"] == "acme"
    assert sent["metadata"]["referenceId"] == "acme" and sent["success_url"] == SUCCESS
    portal = await client.portal.billing_link("acme", provider="polar", return_url=SUCCESS)
    assert portal.url == "https://polar.sh/p"
    assert body(session.calls.last.request) == {
        "external_customer_id": "acme",
        "return_url": SUCCESS,
    }


@respx.mock
async def test_dodo_checkout_session_with_addons_and_portal(client: OpenMeterBilling) -> None:
    checkout = respx.post(f"{BASE['dodo']}/checkouts").respond(
        200, json={"session_id": "cks_1", "checkout_url": "https://checkout.dodopayments.com/cks_1"}
    )
    portal = respx.post(f"{BASE['dodo']}/customers/cus_9/customer-portal/session").respond(
        200, json={"link": "https://customer.dodopayments.com/x"}
    )
    link = await client.checkout.create(
        "acme",
        plan="pro",
        addons={"seats": 2},
        provider="dodo",
        success_url=SUCCESS,
        customer_email="a@b.c",
    )
    assert (link.url, link.session_id) == ("https://checkout.dodopayments.com/cks_1", "cks_1")
    sent = body(checkout.calls.last.request)
    assert sent["product_cart"] == [
        {
            "product_id": DODO_PRODUCT,
            "quantity": 1,
            "addons": [{"addon_id": "adn_seat", "quantity": 2}],
        }
    ]
    assert sent["return_url"] == SUCCESS and sent["customer"] == {"email": "a@b.c"}
    assert sent["metadata"]["referenceId"] == "acme"
    got = await client.portal.billing_link(
        "acme", provider="dodo", provider_customer_id="cus_9", return_url=SUCCESS
    )
    assert got.url == "https://customer.dodopayments.com/x"
    assert portal.calls.last.request.url.params["return_url"] == SUCCESS


@respx.mock
async def test_creem_checkout_and_portal(client: OpenMeterBilling) -> None:
    checkout = respx.post(f"{BASE['creem']}/v1/checkouts").respond(
        200, json={"id": "ch_1", "checkout_url": "https://creem.io/checkout/ch_1"}
    )
    portal = respx.post(f"{BASE['creem']}/v1/customers/billing").respond(
        200, json={"customer_portal_link": "https://creem.io/portal/x"}
    )
    link = await client.checkout.create(
        "acme", plan="pro", provider="creem", success_url=SUCCESS, idempotency_key="req-1"
    )
    request = checkout.calls.last.request
    assert request.headers["x-api-key"] == KEYS["creem"] and "Authorization" not in request.headers
    sent = body(request)
    assert (sent["product_id"], sent["units"], sent["request_id"]) == (CREEM_PRODUCT, 1, "req-1")
    assert sent["metadata"]["referenceId"] == "acme" and link.session_id == "ch_1"
    got = await client.portal.billing_link("acme", provider="creem", provider_customer_id="cust_1")
    assert got.url == "https://creem.io/portal/x"
    assert body(portal.calls.last.request) == {"customer_id": "cust_1"}


@respx.mock
async def test_razorpay_subscription_and_topup_payment_link(client: OpenMeterBilling) -> None:
    subs = respx.post(f"{BASE['razorpay']}/v1/subscriptions").respond(
        200, json={"id": "sub_1", "short_url": "https://rzp.io/i/sub1"}
    )
    links = respx.post(f"{BASE['razorpay']}/v1/payment_links").respond(
        200, json={"id": "plink_1", "short_url": "https://rzp.io/i/pl1"}
    )
    sub = await client.checkout.create(
        "acme",
        plan="pro",
        addons={"setup": 1},
        provider="razorpay",
        success_url=SUCCESS,
        options={"total_count": 12},
    )
    request = subs.calls.last.request
    assert request.headers["Authorization"].startswith("Basic ")
    sent = body(request)
    assert (sent["plan_id"], sent["total_count"], sent["quantity"]) == ("plan_pro_monthly", 12, 1)
    assert sent["notes"]["referenceId"] == "acme"
    assert sent["addons"] == [{"item": {"name": "setup", "amount": 9900, "currency": "USD"}}]
    assert (sub.url, sub.session_id) == ("https://rzp.io/i/sub1", "sub_1")
    pack = await client.checkout.create(
        "acme", topup="token_pack", provider="razorpay", success_url=SUCCESS
    )
    sent = body(links.calls.last.request)
    assert (sent["amount"], sent["currency"], sent["notes"]["topup"]) == (500, "USD", "token_pack")
    assert sent["reference_id"] == pack.idempotency_key[:40]
    assert (sent["callback_url"], sent["callback_method"]) == (SUCCESS, "get")
    with pytest.raises(ProviderUnsupportedError, match="no hosted billing portal"):
        await client.portal.billing_link("acme", provider="razorpay")


@respx.mock
async def test_autumn_attach_and_billing_portal(client: OpenMeterBilling) -> None:
    attach = respx.post(f"{BASE['autumn']}/v1/attach").respond(
        200, json={"checkout_url": "https://checkout.stripe.com/x", "customer_id": "acme"}
    )
    portal = respx.post(f"{BASE['autumn']}/v1/customers/acme/billing_portal").respond(
        200, json={"customer_id": "acme", "url": "https://billing.stripe.com/y"}
    )
    link = await client.checkout.create("acme", plan="pro", provider="autumn", success_url=SUCCESS)
    sent = body(attach.calls.last.request)
    assert (sent["customer_id"], sent["product_id"], sent["force_checkout"]) == (
        "acme",
        "pro",
        True,
    )
    assert link.url == "https://checkout.stripe.com/x"
    got = await client.portal.billing_link("acme", provider="autumn", return_url=SUCCESS)
    assert got.url == "https://billing.stripe.com/y"
    assert body(portal.calls.last.request) == {"return_url": SUCCESS}


# -- errors before any network call ---------------------------------------------------------


async def test_bad_requests_fail_before_the_network(client: OpenMeterBilling) -> None:
    with respx.mock(assert_all_called=False) as router:
        any_call = router.route().respond(500)
        await bad_requests(client)
    assert any_call.call_count == 0


async def bad_requests(client: OpenMeterBilling) -> None:
    with pytest.raises(ProviderUnsupportedError) as polar_addons:
        await client.checkout.create(
            "acme", plan="pro", addons={"seats": 1}, provider="polar", success_url=SUCCESS
        )
    assert "addon='seats'" in (polar_addons.value.hint or "")
    with pytest.raises(ProviderUnsupportedError, match="one-time upfront"):
        await client.checkout.create(
            "acme", plan="pro", addons={"seats": 1}, provider="razorpay", success_url=SUCCESS
        )
    with pytest.raises(InvalidInputError) as missing_id:
        await client.checkout.create(
            "acme", topup="token_pack", provider="creem", success_url=SUCCESS
        )
    assert missing_id.value.field == "topups.token_pack.prices.once.provider_ids"
    with pytest.raises(InvalidInputError) as quantity:
        await client.checkout.create(
            "acme", plan="pro", addons={"seats": 11}, provider="stripe", success_url=SUCCESS
        )
    assert quantity.value.field == "addons.seats"
    with pytest.raises(InvalidInputError, match="exactly one"):
        await client.checkout.create(
            "acme", plan="pro", topup="token_pack", provider="stripe", success_url=SUCCESS
        )
    with pytest.raises(InvalidInputError) as url:
        await client.checkout.create("acme", plan="pro", provider="stripe", success_url="/done")
    assert url.value.field == "success_url"
    with pytest.raises(ProviderNotConfiguredError):
        await client.checkout.create("acme", plan="pro", provider="paddle", success_url=SUCCESS)


async def test_missing_api_key_names_the_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    client = OpenMeterBilling(
        base_url="http://127.0.0.1:1", catalog=CATALOG, providers=[Stripe(webhook_secret="whsec_x")]
    )
    with pytest.raises(ConfigurationError, match="STRIPE_SECRET_KEY"):
        await client.checkout.create("acme", plan="pro", provider="stripe", success_url=SUCCESS)
    with pytest.raises(ConfigurationError, match="base_url"):
        Stripe(webhook_secret="whsec_x", base_url="http://api.example.com")
    assert KEYS["stripe"] not in repr(adapters()[0])


def test_sync_twins_create_links() -> None:
    from openmeter_billing import SyncOpenMeterBilling

    with respx.mock:
        respx.post(f"{BASE['polar']}/v1/checkouts/").respond(
            201, json={"id": "co", "url": "https://p/co"}
        )
        respx.post(f"{BASE['polar']}/v1/customer-sessions/").respond(
            201, json={"customer_portal_url": "https://p/s"}
        )
        with SyncOpenMeterBilling(
            base_url="http://127.0.0.1:1", catalog=CATALOG, providers=adapters()
        ) as sync:
            assert (
                sync.checkout.create("acme", plan="pro", provider="polar", success_url=SUCCESS).url
                == "https://p/co"
            )
            assert sync.portal.billing_link("acme", provider="polar").url == "https://p/s"


# -- round trip: what checkout sends, the webhook mapping maps back ---------------------------


def event(provider: str, type_: str, payload: dict[str, Any]) -> ProviderEvent:
    return ProviderEvent(
        provider, "dlv_1", type_, datetime(2026, 1, 1, tzinfo=timezone.utc), payload
    )


def adapter(name: str) -> Any:
    return next(a for a in adapters() if a.name == name)


@respx.mock
async def test_round_trip_stripe_subscription_and_topup(client: OpenMeterBilling) -> None:
    route = respx.post(f"{BASE['stripe']}/v1/checkout/sessions").respond(
        200, json={"id": "cs_1", "url": "https://checkout.stripe.com/cs_1"}
    )
    await client.checkout.create("acme", plan="pro", provider="stripe", success_url=SUCCESS)
    sent = form(route.calls.last.request)
    sub_metadata = {
        k.split("[")[-1][:-1]: v
        for k, v in sent.items()
        if k.startswith("subscription_data[metadata]")
    }
    now = 1_767_225_600
    subscription = {
        "id": "sub_1",
        "customer": "cus_1",
        "status": "active",
        "metadata": sub_metadata,
        "items": {
            "data": [
                {
                    "price": {"id": sent["line_items[0][price]"], "product": "prod_x"},
                    "quantity": 1,
                    "current_period_start": now,
                    "current_period_end": now + 2_592_000,
                }
            ]
        },
    }
    mapped = adapter("stripe").map(
        event("stripe", "customer.subscription.created", {"data": {"object": subscription}}),
        catalog=CATALOG,
    )
    assert [(e.customer, e.plan) for e in mapped.billing_events] == [("acme", "pro")]

    await client.checkout.create("acme", topup="token_pack", provider="stripe", success_url=SUCCESS)
    sent = form(route.calls.last.request)
    session = {
        "id": "cs_2",
        "mode": "payment",
        "payment_status": "paid",
        "client_reference_id": sent["client_reference_id"],
        "metadata": {
            k[len("metadata[") : -1]: v for k, v in sent.items() if k.startswith("metadata[")
        },
        "payment_intent": "pi_1",
        "amount_total": 500,
        "currency": "usd",
    }
    mapped = adapter("stripe").map(
        event("stripe", "checkout.session.completed", {"data": {"object": session}}),
        catalog=CATALOG,
    )
    assert [(t.customer, t.topup) for t in mapped.topups] == [("acme", "token_pack")]


@respx.mock
async def test_round_trip_polar_dodo_creem_razorpay(client: OpenMeterBilling) -> None:
    respx.post(f"{BASE['polar']}/v1/checkouts/").respond(
        201, json={"id": "co", "url": "https://p/co"}
    )
    respx.post(f"{BASE['dodo']}/checkouts").respond(
        200, json={"session_id": "s", "checkout_url": "https://d/s"}
    )
    respx.post(f"{BASE['creem']}/v1/checkouts").respond(
        200, json={"id": "ch", "checkout_url": "https://c/ch"}
    )
    respx.post(f"{BASE['razorpay']}/v1/payment_links").respond(
        200, json={"id": "pl", "short_url": "https://r/pl"}
    )

    async def sent_metadata(provider: str, **kwargs: Any) -> dict[str, Any]:
        await client.checkout.create("acme", provider=provider, success_url=SUCCESS, **kwargs)
        sent = body(respx.calls.last.request)
        return dict(sent.get("metadata") or sent["notes"])

    polar = json.loads(fixture("polar", "subscription.created"))
    polar["data"]["metadata"] = await sent_metadata("polar", plan="pro")
    polar["data"]["customer"]["external_id"] = None
    mapped = adapter("polar").map(event("polar", polar["type"], polar), catalog=CATALOG)
    assert [(e.customer, e.plan) for e in mapped.billing_events] == [("acme", "pro")]

    dodo = json.loads(fixture("dodo", "subscription.active"))
    dodo["data"]["metadata"] = await sent_metadata("dodo", plan="pro")
    mapped = adapter("dodo").map(event("dodo", dodo["type"], dodo), catalog=CATALOG)
    assert [(e.customer, e.plan) for e in mapped.billing_events] == [("acme", "pro")]

    creem = json.loads(fixture("creem", "checkout.completed"))
    creem["object"]["metadata"] = await sent_metadata("creem", plan="pro")
    mapped = adapter("creem").map(event("creem", creem["eventType"], creem), catalog=CATALOG)
    assert [(e.customer, e.plan) for e in mapped.billing_events] == [("acme", "pro")]

    razorpay = json.loads(fixture("razorpay", "order.paid"))
    razorpay["payload"]["order"]["entity"]["notes"] = await sent_metadata(
        "razorpay", topup="token_pack"
    )
    mapped = adapter("razorpay").map(
        event("razorpay", razorpay["event"], razorpay), catalog=CATALOG
    )
    assert [(t.customer, t.topup) for t in mapped.topups] == [("acme", "token_pack")]
