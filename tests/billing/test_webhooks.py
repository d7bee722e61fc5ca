"""client.webhooks end to end on Local OpenMeter: verified, mapped, applied exactly once."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest
from billing.conftest import LedgerFactory
from billing.test_billing_helpers import CATALOG, CUSTOMER, active_entitlements, prepare

from openmeter_billing import ConfigurationError, OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.providers import Stripe
from openmeter_billing.webhooks import InMemoryInbox, SQLiteInbox

SECRET = "whsec_webhook_test"


def subscription_event(
    event_id: str = "evt_1", status: str = "active", kind: str = "created"
) -> bytes:
    now = int(time.time())
    return json.dumps(
        {
            "id": event_id,
            "type": f"customer.subscription.{kind}",
            "created": now,
            "data": {
                "object": {
                    "id": "sub_1",
                    "customer": "cus_1",
                    "status": status,
                    "metadata": {"referenceId": CUSTOMER},
                    "items": {
                        "data": [
                            {
                                "price": {"id": "pro:monthly", "product": "prod_pro"},
                                "quantity": 1,
                                "current_period_start": now,
                                "current_period_end": now + 30 * 86400,
                            }
                        ]
                    },
                }
            },
        }
    ).encode()


def signed(body: bytes) -> dict[str, str]:
    import hashlib
    import hmac

    ts = int(time.time())
    sig = hmac.new(SECRET.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={ts},v1={sig}"}


async def client_with(local: LocalOpenMeter, ledger: Any, **extra: Any) -> OpenMeterBilling:
    client = local.client(
        catalog=CATALOG,
        ledger=ledger,
        max_retries=0,
        providers=[Stripe(webhook_secret=SECRET)],
        **extra,
    )
    await prepare(client)
    return client


async def test_forged_delivery_changes_nothing(local: LocalOpenMeter) -> None:
    async with await client_with(local, None) as client:
        body = subscription_event()
        result = await client.webhooks.handle(
            "stripe", headers={"Stripe-Signature": "t=1,v1=00"}, body=body
        )
        assert (result.outcome, result.http_status) == ("invalid", 400)
        assert await active_entitlements(client) == {}


async def test_hundreds_of_concurrent_duplicates_apply_once(
    local: LocalOpenMeter, make_ledger: LedgerFactory
) -> None:
    async with await client_with(local, make_ledger()) as client:
        body = subscription_event()
        headers = signed(body)
        results: list[Any] = []

        async def deliver() -> None:
            results.append(await client.webhooks.handle("stripe", headers=headers, body=body))

        async with anyio.create_task_group() as tg:
            for _ in range(200):
                tg.start_soon(deliver)
        outcomes = [r.outcome for r in results]
        assert outcomes.count("applied") == 1
        assert set(outcomes) <= {"applied", "duplicate", "in_progress"}
        assert {r.http_status for r in results if r.outcome == "in_progress"} <= {409}
        later = await client.webhooks.handle("stripe", headers=signed(body), body=body)
        assert later.outcome == "duplicate" and later.http_status == 200
        assert set(await active_entitlements(client)) == {"ai_tokens", "api_access", "support_tier"}


async def test_unknown_event_type_is_ignored_with_200(local: LocalOpenMeter) -> None:
    async with await client_with(local, None) as client:
        body = json.dumps(
            {
                "id": "evt_x",
                "type": "issuing_card.created",
                "created": int(time.time()),
                "data": {"object": {}},
            }
        ).encode()
        result = await client.webhooks.handle("stripe", headers=signed(body), body=body)
        assert (result.outcome, result.http_status) == ("ignored", 200)
        assert "unknown_event_type" in result.reason


async def test_unknown_plan_is_rejected_and_replayable(
    local: LocalOpenMeter, tmp_path: Any
) -> None:
    inbox = SQLiteInbox(tmp_path / "inbox.sqlite3")
    async with await client_with(local, None, webhook_inbox=inbox) as client:
        body = (
            subscription_event()
            .replace(b'"pro:monthly"', b'"price_unknown"')
            .replace(b'"prod_pro"', b'"prod_unknown"')
        )
        result = await client.webhooks.handle("stripe", headers=signed(body), body=body)
        assert (result.outcome, result.http_status) == ("rejected", 422)
        assert await active_entitlements(client) == {}
        (entry,) = await inbox.find("evt_1")
        assert entry.verdict == "verified" and entry.outcome == "rejected"
        assert "stripe-signature" in entry.headers
        again = await client.webhooks.replay("evt_1")
        assert again.outcome == "rejected"
    inbox.close()


async def test_cancel_then_delete_revokes_and_customer_keeps_nothing(local: LocalOpenMeter) -> None:
    inbox = InMemoryInbox()
    async with await client_with(local, None, webhook_inbox=inbox) as client:
        for event_id, kind, status in [
            ("evt_1", "created", "active"),
            ("evt_2", "deleted", "canceled"),
        ]:
            body = subscription_event(event_id, status, kind)
            result = await client.webhooks.handle("stripe", headers=signed(body), body=body)
            assert result.outcome == "applied", result.reason
        assert await active_entitlements(client) == {}
        assert [e.outcome for e in inbox.entries()] == ["applied", "applied"]


async def test_unknown_provider_is_404(local: LocalOpenMeter) -> None:
    async with await client_with(local, None) as client:
        result = await client.webhooks.handle("paddle", headers={}, body=b"{}")
        assert result.http_status == 404


def test_providers_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="not a payment provider"):
        OpenMeterBilling(base_url="http://localhost:1", providers=[object()])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="two providers are named 'stripe'"):
        OpenMeterBilling(
            base_url="http://localhost:1",
            providers=[Stripe(webhook_secret="a"), Stripe(webhook_secret="b")],
        )


async def test_asgi_app_routes_by_path(local: LocalOpenMeter) -> None:
    import httpx

    async with await client_with(local, None) as client:
        body = subscription_event()
        transport = httpx.ASGITransport(app=client.webhooks.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            response = await http.post("/webhooks/stripe", content=body, headers=signed(body))
        assert response.status_code == 200 and response.json()["outcome"] == "applied"


def test_sync_client_handles_and_serves_wsgi() -> None:
    local = LocalOpenMeter()
    with local.sync_client(
        catalog=CATALOG, max_retries=0, providers=[Stripe(webhook_secret=SECRET)]
    ) as client:
        client.catalog.push()
        client.customers.create(name="Acme", key=CUSTOMER, subject_keys=[CUSTOMER])
        body = subscription_event()
        assert (
            client.webhooks.handle("stripe", headers=signed(body), body=body).outcome == "applied"
        )
        app = client.webhooks.wsgi_app(provider="stripe")
        import io

        statuses: list[str] = []
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/hook",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "HTTP_STRIPE_SIGNATURE": signed(body)["Stripe-Signature"],
        }
        out = b"".join(app(environ, lambda status, headers: statuses.append(status)))
        assert statuses == ["200 OK"] and json.loads(out)["outcome"] == "duplicate"
