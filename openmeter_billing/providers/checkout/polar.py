"""Polar checkouts and customer sessions (JSON, bearer token)."""

from __future__ import annotations

from .._api import ProviderAPI
from ._plan import CheckoutLink, CheckoutPlan, PortalLink
from ._shared import link, required

__all__ = ["create", "portal"]


async def create(api: ProviderAPI, plan: CheckoutPlan) -> CheckoutLink:
    """``POST /v1/checkouts/``: the key is the checkout's ``external_customer_id`` and its
    ``metadata.referenceId`` (Polar copies checkout metadata onto the order and subscription)."""
    body = {
        "products": [plan.main.provider_id],
        "success_url": plan.success_url,
        "external_customer_id": plan.customer_key,
        "customer_id": plan.provider_customer_id,
        "customer_email": plan.customer_email,
        "metadata": plan.metadata,
    }
    answer = await api.post("/v1/checkouts/", json={k: v for k, v in body.items() if v})
    return link(plan, required(api, answer, "url"), answer.get("id"))


async def portal(
    api: ProviderAPI, customer_key: str, provider_customer_id: str | None, return_url: str | None
) -> PortalLink:
    """``POST /v1/customer-sessions/`` by Polar customer id, else by your key (external id)."""
    body = (
        {"customer_id": provider_customer_id}
        if provider_customer_id
        else {"external_customer_id": customer_key}
    )
    if return_url:
        body["return_url"] = return_url
    answer = await api.post("/v1/customer-sessions/", json=body)
    return PortalLink(required(api, answer, "customer_portal_url"), "polar", answer.get("id"))
