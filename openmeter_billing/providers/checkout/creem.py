"""Creem checkouts and customer portal links (JSON, ``x-api-key``)."""

from __future__ import annotations

from typing import Any

from .._api import ProviderAPI
from ._plan import CheckoutLink, CheckoutPlan, PortalLink
from ._shared import link, need_customer_id, required

__all__ = ["create", "portal"]


async def create(api: ProviderAPI, plan: CheckoutPlan) -> CheckoutLink:
    """``POST /v1/checkouts``: one product, ``units`` for its quantity, the key in
    ``metadata.referenceId`` and the idempotency key as ``request_id`` (Creem echoes it)."""
    body: dict[str, Any] = {
        "product_id": plan.main.provider_id,
        "units": plan.main.quantity,
        "request_id": plan.idempotency_key,
        "success_url": plan.success_url,
        "metadata": plan.metadata,
    }
    if plan.provider_customer_id:
        body["customer"] = {"id": plan.provider_customer_id}
    elif plan.customer_email:
        body["customer"] = {"email": plan.customer_email}
    answer = await api.post("/v1/checkouts", json=body)
    return link(plan, required(api, answer, "checkout_url"), answer.get("id"))


async def portal(
    api: ProviderAPI, customer_key: str, provider_customer_id: str | None, return_url: str | None
) -> PortalLink:
    """``POST /v1/customers/billing`` for the ``cust_...`` customer."""
    customer = need_customer_id("creem", provider_customer_id, "cust_...")
    answer = await api.post("/v1/customers/billing", json={"customer_id": customer})
    return PortalLink(required(api, answer, "customer_portal_link"), "creem")
