"""Stripe Checkout Sessions and billing portal sessions (form-encoded, ``Idempotency-Key``)."""

from __future__ import annotations

from typing import Any

from .._api import ProviderAPI, form_fields
from ._plan import CheckoutLink, CheckoutPlan, PortalLink
from ._shared import link, need_customer_id, required

__all__ = ["create", "portal"]


async def create(api: ProviderAPI, plan: CheckoutPlan) -> CheckoutLink:
    """``POST /v1/checkout/sessions``: the key rides in ``client_reference_id`` and metadata
    (copied onto the subscription or payment intent, where later events carry it)."""
    metadata = plan.metadata
    body: dict[str, Any] = {
        "mode": plan.mode,
        "success_url": plan.success_url,
        "cancel_url": plan.cancel_url,
        "client_reference_id": plan.customer_key,
        "customer": plan.provider_customer_id,
        "customer_email": None if plan.provider_customer_id else plan.customer_email,
        "line_items": [
            {"price": line.provider_id, "quantity": line.quantity}
            for line in (plan.main, *plan.extras)
        ],
        "metadata": metadata,
    }
    if plan.mode == "subscription":
        body["subscription_data"] = {"metadata": metadata}
    else:
        body["payment_intent_data"] = {"metadata": metadata}
    answer = await api.post(
        "/v1/checkout/sessions", form=form_fields(body), idempotency_key=plan.idempotency_key
    )
    return link(plan, required(api, answer, "url"), answer.get("id"))


async def portal(
    api: ProviderAPI, customer_key: str, provider_customer_id: str | None, return_url: str | None
) -> PortalLink:
    """``POST /v1/billing_portal/sessions`` for the ``cus_...`` customer."""
    customer = need_customer_id("stripe", provider_customer_id, "cus_...")
    body = {"customer": customer, "return_url": return_url}
    answer = await api.post("/v1/billing_portal/sessions", form=form_fields(body))
    return PortalLink(required(api, answer, "url"), "stripe", answer.get("id"))
