"""Dodo Payments checkout sessions and customer portal sessions (JSON, bearer token)."""

from __future__ import annotations

from typing import Any

from .._api import ProviderAPI
from ._plan import CheckoutLink, CheckoutPlan, PortalLink
from ._shared import link, need_customer_id, required

__all__ = ["create", "portal"]


async def create(api: ProviderAPI, plan: CheckoutPlan) -> CheckoutLink:
    """``POST /checkouts``: the product (with its add-ons) in ``product_cart``, the key in
    ``metadata.referenceId`` (Dodo copies it onto the payment and subscription)."""
    item: dict[str, Any] = {"product_id": plan.main.provider_id, "quantity": plan.main.quantity}
    if plan.extras:
        item["addons"] = [{"addon_id": x.provider_id, "quantity": x.quantity} for x in plan.extras]
    body: dict[str, Any] = {
        "product_cart": [item],
        "return_url": plan.success_url,
        "metadata": plan.metadata,
    }
    if plan.provider_customer_id:
        body["customer"] = {"customer_id": plan.provider_customer_id}
    elif plan.customer_email:
        body["customer"] = {"email": plan.customer_email}
    answer = await api.post("/checkouts", json=body)
    return link(plan, required(api, answer, "checkout_url"), answer.get("session_id"))


async def portal(
    api: ProviderAPI, customer_key: str, provider_customer_id: str | None, return_url: str | None
) -> PortalLink:
    """``POST /customers/{id}/customer-portal/session`` (``return_url`` as a query parameter)."""
    customer = need_customer_id("dodo", provider_customer_id, "cus_...")
    params = {"return_url": return_url} if return_url else None
    answer = await api.post(f"/customers/{customer}/customer-portal/session", params=params)
    return PortalLink(required(api, answer, "link"), "dodo")
