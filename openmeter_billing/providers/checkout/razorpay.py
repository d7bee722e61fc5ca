"""Razorpay subscriptions (plans) and payment links (one-time purchases), JSON with basic auth."""

from __future__ import annotations

from typing import Any

from ..._exceptions import ProviderUnsupportedError
from .._api import ProviderAPI
from ._plan import CheckoutLink, CheckoutPlan, PortalLink
from ._shared import link, required

__all__ = ["create", "portal"]

#: Razorpay requires a cycle count; 120 monthly cycles is ten years (override: total_count=).
DEFAULT_TOTAL_COUNT = 120


async def create(api: ProviderAPI, plan: CheckoutPlan) -> CheckoutLink:
    """A subscription (``POST /v1/subscriptions``) for a plan, a payment link
    (``POST /v1/payment_links``) for a one-time purchase; the key rides in ``notes``."""
    notes = plan.metadata
    if plan.mode == "payment":
        price = plan.main.price
        body: dict[str, Any] = {
            "amount": price.amount * plan.main.quantity,
            "currency": price.currency,
            "description": plan.main.name or plan.main.key,
            "reference_id": plan.idempotency_key[:40],  # unique per link: a retry cannot double
            "notes": notes,
            "callback_url": plan.success_url,
            "callback_method": "get",
        }
        answer = await api.post("/v1/payment_links", json=body)
        return link(plan, required(api, answer, "short_url"), answer.get("id"))
    body = {
        "plan_id": plan.main.provider_id,
        "total_count": int(plan.options.get("total_count", DEFAULT_TOTAL_COUNT)),
        "quantity": plan.main.quantity,
        "notes": notes,
    }
    if plan.extras:
        body["addons"] = [
            {
                "item": {
                    "name": x.name or x.key,
                    "amount": x.price.amount * x.quantity,
                    "currency": x.price.currency,
                }
            }
            for x in plan.extras
        ]
    answer = await api.post("/v1/subscriptions", json=body)
    return link(plan, required(api, answer, "short_url"), answer.get("id"))


async def portal(
    api: ProviderAPI, customer_key: str, provider_customer_id: str | None, return_url: str | None
) -> PortalLink:
    raise ProviderUnsupportedError(
        "razorpay has no hosted billing portal",
        field="provider",
        hint="link to the subscription's short_url (its own management page) or build one "
        "with OpenMeter's consumer portal: client.portal.create_token(...)",
    )
