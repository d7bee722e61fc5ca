"""Autumn's attach (a checkout URL for a product) and billing portal (JSON, bearer token)."""

from __future__ import annotations

from typing import Any

from .._api import ProviderAPI
from ._plan import CheckoutLink, CheckoutPlan, PortalLink
from ._shared import link, required

__all__ = ["create", "portal"]


async def create(api: ProviderAPI, plan: CheckoutPlan) -> CheckoutLink:
    """``POST /v1/attach`` with ``force_checkout`` (always a checkout URL, never a silent charge
    of a card on file); Autumn's ``customer_id`` is your customer key itself."""
    body: dict[str, Any] = {
        "customer_id": plan.customer_key,
        "product_id": plan.main.provider_id,
        "success_url": plan.success_url,
        "force_checkout": True,
        "metadata": plan.metadata,
    }
    if plan.extras:
        body["product_ids"] = [plan.main.provider_id, *(x.provider_id for x in plan.extras)]
    if plan.customer_email:
        body["customer_data"] = {"email": plan.customer_email}
    answer = await api.post("/v1/attach", json=body)
    return link(plan, required(api, answer, "checkout_url"), None)


async def portal(
    api: ProviderAPI, customer_key: str, provider_customer_id: str | None, return_url: str | None
) -> PortalLink:
    """``POST /v1/customers/{customer_id}/billing_portal``."""
    body = {"return_url": return_url} if return_url else {}
    answer = await api.post(f"/v1/customers/{customer_key}/billing_portal", json=body)
    return PortalLink(required(api, answer, "url"), "autumn")
