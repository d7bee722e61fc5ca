"""Dodo Payments: spec-compliant Standard Webhooks; subscription, payment and refund events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from ._adapter import (
    MappingContext,
    describe_standard_webhook,
    dig,
    from_iso,
    items,
    obj,
    text,
)
from ._standard import StandardWebhooksAdapter
from .base import MappedEvent, RefundNotice
from .signatures import HeaderMap

__all__ = ["Dodo"]

_TYPES = {
    "active": "subscription.active",
    "renewed": "subscription.renewed",
    "updated": "subscription.updated",
    "plan_changed": "subscription.updated",
    "unpaused": "subscription.active",
    "on_hold": "invoice.payment_failed",
    "past_due": "invoice.payment_failed",
    "paused": "subscription.revoked",
    "cancelled": "subscription.expired",
    "failed": "subscription.expired",
    "expired": "subscription.expired",
}


class Dodo(StandardWebhooksAdapter):
    """Dodo Payments webhooks. ``Dodo(webhook_secret="whsec_...")`` or ``DODO_WEBHOOK_SECRET``.

    Payloads are parsed leniently (Dodo adds fields often). Customers: ``metadata.referenceId``;
    otherwise ``resolve_customer`` gets the ``cus_...`` id. Plans, add-ons and top-ups: product
    and add-on ids in ``provider_ids["dodo"]``. ``cancel_at_next_billing_date`` on an update is a
    cancellation at period end.
    """

    name: ClassVar[str] = "dodo"
    env_var: ClassVar[str] = "DODO_WEBHOOK_SECRET"
    api_key_env: ClassVar[str] = "DODO_PAYMENTS_API_KEY"
    default_base_url: ClassVar[str] = "https://live.dodopayments.com"

    def _describe(
        self, headers: HeaderMap, payload: dict[str, Any], signed_at: int | None
    ) -> tuple[str | None, str, datetime]:
        return describe_standard_webhook(headers, payload, signed_at)

    def _map(self, ctx: MappingContext) -> MappedEvent:
        kind = ctx.event.type
        data = ctx.event.payload.get("data")
        if not isinstance(data, dict):
            return ctx.unknown_type()
        if kind.startswith("subscription."):
            return _subscription(ctx, data)
        if kind == "payment.succeeded":
            return _payment(ctx, data)
        if kind == "refund.succeeded":
            return _refund(ctx, data)
        if kind.startswith(("payment.", "refund.", "dispute.", "license_key.", "credit.")):
            return MappedEvent(ignored=f"{kind} changes no access")
        return ctx.unknown_type()


def _customer(ctx: MappingContext, data: dict[str, Any]) -> tuple[object | None, dict[str, Any]]:
    customer = obj(data.get("customer"))
    return ctx.customer(
        data.get("metadata"),
        customer.get("metadata"),
        provider_customer_id=customer.get("customer_id") or data.get("customer_id"),
        email=customer.get("email"),
    )


def _subscription(ctx: MappingContext, sub: dict[str, Any]) -> MappedEvent:
    type_ = _TYPES.get(ctx.event.type.removeprefix("subscription."))
    if type_ is None:
        return ctx.unknown_type()
    pending_cancel = bool(sub.get("cancel_at_next_billing_date"))
    if type_ == "subscription.updated" and pending_cancel:
        type_ = "subscription.canceled"
    customer, metadata = _customer(ctx, sub)
    if customer is None:
        return ctx.unresolved()
    ref = ctx.index.find(sub.get("product_id"), kind="plan")
    ending = type_ in ("subscription.expired", "subscription.revoked", "invoice.payment_failed")
    if ref is None and not ctx.index.empty and not ending:
        return ctx.unknown_plan([sub.get("product_id")])
    addons: dict[str, int] = {}
    for addon in items(sub.get("addons")):
        found = ctx.index.find(dig(addon, "addon_id"), kind="addon")
        quantity = dig(addon, "quantity")
        if found is not None:
            addons[found.key] = quantity if isinstance(quantity, int) and quantity > 0 else 1
    event = ctx.billing_event(
        type_,
        customer,
        metadata,
        plan=ref.key if ref else None,
        addons=addons,
        subscription_id=text(sub.get("subscription_id")),
        status=text(sub.get("status")),
        current_period_start=from_iso(sub.get("previous_billing_date")),
        current_period_end=from_iso(sub.get("next_billing_date")),
        cancel_at_period_end=pending_cancel,
        notes={"provider_customer_id": dig(sub, "customer", "customer_id")},
    )
    return MappedEvent(billing_events=(event,))


def _payment(ctx: MappingContext, payment: dict[str, Any]) -> MappedEvent:
    customer, metadata = _customer(ctx, payment)
    if customer is None:
        return ctx.unresolved()
    payment_id = str(payment.get("payment_id"))
    amount, currency = payment.get("total_amount"), text(payment.get("currency"))
    if text(payment.get("subscription_id")):
        # Renewal charges: access follows subscription.renewed/active, so this only audits.
        event = ctx.billing_event(
            "invoice.paid",
            customer,
            metadata,
            subscription_id=text(payment.get("subscription_id")),
            notes={"payment_id": payment_id, "amount": amount, "currency": currency},
        )
        return MappedEvent(billing_events=(event,))
    cart = items(payment.get("product_cart"))
    ref = ctx.index.find(*(dig(item, "product_id") for item in cart), kind="topup")
    if ref is None:
        return MappedEvent(ignored="one-time payment for no catalog top-up")
    return ctx.topup(customer, ref.key, payment_id, amount=amount, currency=currency)


def _refund(ctx: MappingContext, refund: dict[str, Any]) -> MappedEvent:
    customer, metadata = _customer(ctx, refund)
    if customer is None:
        return ctx.unresolved()
    payment_id = text(refund.get("payment_id"))
    amount, currency = refund.get("amount"), text(refund.get("currency"))
    notice = RefundNotice(
        customer,
        payment_id,
        text(refund.get("refund_id")),
        amount,
        currency,
        "dodo",
        ctx.event.occurred_at,
    )
    event = ctx.billing_event(
        "payment.refunded",
        customer,
        metadata,
        notes={
            "payment_id": payment_id,
            "refund_id": refund.get("refund_id"),
            "amount": amount,
            "currency": currency,
        },
    )
    return MappedEvent(billing_events=(event,), refunds=(notice,))
