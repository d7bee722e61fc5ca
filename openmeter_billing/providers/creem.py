"""Creem: hex HMAC of the body in ``creem-signature``, the body ``id`` as the delivery id."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from ._adapter import (
    MappingContext,
    ProviderAdapter,
    dig,
    from_iso,
    from_millis,
    items,
    obj,
    received_now,
    text,
)
from .base import MappedEvent, RefundNotice
from .signatures import HeaderMap, require_header, verify_hmac_hex

__all__ = ["Creem"]

_TYPES = {
    "active": "subscription.active",
    "trialing": "subscription.active",
    "paid": "invoice.paid",
    "update": "subscription.updated",
    "scheduled_cancel": "subscription.canceled",
    "canceled": "subscription.expired",
    # Creem retries after these; access ends only with subscription.canceled.
    "past_due": "invoice.payment_failed",
    "unpaid": "invoice.payment_failed",
    "expired": "invoice.payment_failed",
    "paused": "subscription.revoked",
}


class Creem(ProviderAdapter):
    """Creem webhooks. ``Creem(webhook_secret="whsec_...")`` or ``CREEM_WEBHOOK_SECRET``.

    The secret string is the HMAC key as is. No timestamp is signed, so replays are stopped by
    the ledger on the body's ``id``. Customers: ``metadata.referenceId``; otherwise
    ``resolve_customer`` gets the ``cust_...`` id. Plans and top-ups: the product id in
    ``provider_ids["creem"]``. ``subscription.expired`` is not the end (Creem keeps retrying);
    ``subscription.canceled`` is.
    """

    name: ClassVar[str] = "creem"
    env_var: ClassVar[str] = "CREEM_WEBHOOK_SECRET"
    api_key_env: ClassVar[str] = "CREEM_API_KEY"
    default_base_url: ClassVar[str] = "https://api.creem.io"

    def _auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_secrets()[0]}

    def _check_signature(self, headers: HeaderMap, body: bytes, now: float) -> None:
        signature = require_header(headers, "creem-signature", self.name)
        verify_hmac_hex(signature, body, self._keys, provider=self.name)

    def _describe(
        self, headers: HeaderMap, payload: dict[str, Any], signed_at: int | None
    ) -> tuple[str | None, str, datetime]:
        occurred = from_millis(payload.get("created_at")) or received_now()
        return text(payload.get("id")), str(payload.get("eventType") or ""), occurred

    def _map(self, ctx: MappingContext) -> MappedEvent:
        kind = ctx.event.type
        obj = ctx.event.payload.get("object")
        if not isinstance(obj, dict):
            return ctx.unknown_type()
        if kind == "checkout.completed":
            return _checkout(ctx, obj)
        if kind.startswith("subscription."):
            return _subscription(ctx, obj, obj)
        if kind == "refund.created":
            return _refund(ctx, obj)
        if kind.startswith("dispute."):
            return MappedEvent(ignored=f"{kind} changes no access")
        return ctx.unknown_type()


def _customer(ctx: MappingContext, obj: dict[str, Any], sub: dict[str, Any]) -> Any:
    customer = obj.get("customer") or sub.get("customer")
    customer_id = customer.get("id") if isinstance(customer, dict) else customer
    email = customer.get("email") if isinstance(customer, dict) else None
    return ctx.customer(
        obj.get("metadata"), sub.get("metadata"), provider_customer_id=customer_id, email=email
    )


def _product_id(obj: dict[str, Any]) -> object:
    product = obj.get("product")
    return product.get("id") if isinstance(product, dict) else product


def _subscription(ctx: MappingContext, obj: dict[str, Any], sub: dict[str, Any]) -> MappedEvent:
    kind = ctx.event.type.removeprefix("subscription.")
    type_ = "subscription.active" if ctx.event.type == "checkout.completed" else _TYPES.get(kind)
    if type_ is None:
        return ctx.unknown_type()
    customer, metadata = _customer(ctx, obj, sub)
    if customer is None:
        return ctx.unresolved()
    ref = ctx.index.find(_product_id(sub), kind="plan")
    ending = type_ in ("subscription.expired", "subscription.revoked", "invoice.payment_failed")
    if ref is None and not ctx.index.empty and not ending:
        return ctx.unknown_plan([_product_id(sub)])
    lines = items(sub.get("items"))
    event = ctx.billing_event(
        type_,
        customer,
        metadata,
        plan=ref.key if ref else None,
        subscription_id=text(sub.get("id")),
        status=text(sub.get("status")),
        current_period_start=from_iso(sub.get("current_period_start_date")),
        current_period_end=from_iso(sub.get("current_period_end_date")),
        cancel_at_period_end=type_ == "subscription.canceled",
        notes={"price_id": dig(lines, 0, "price_id"), "units": dig(lines, 0, "units")},
    )
    return MappedEvent(billing_events=(event,))


def _checkout(ctx: MappingContext, checkout: dict[str, Any]) -> MappedEvent:
    order = obj(checkout.get("order"))
    sub = checkout.get("subscription")
    if order.get("type") != "onetime" and isinstance(sub, dict):
        return _subscription(ctx, checkout, sub)
    customer, _ = _customer(ctx, checkout, {})
    ref = ctx.index.find(_product_id(checkout), order.get("product"), kind="topup")
    if ref is None:
        return MappedEvent(
            rejected=f"unknown_topup: no catalog top-up has creem id {_product_id(checkout)}"
        )
    if customer is None:
        return ctx.unresolved()
    order_id = str(order.get("id") or checkout.get("id"))
    return ctx.topup(
        customer,
        ref.key,
        order_id,
        amount=order.get("amount"),
        currency=text(order.get("currency")),
    )


def _refund(ctx: MappingContext, refund: dict[str, Any]) -> MappedEvent:
    sub = obj(refund.get("subscription"))
    checkout = obj(refund.get("checkout"))
    customer, metadata = ctx.customer(
        refund.get("metadata"),
        sub.get("metadata"),
        checkout.get("metadata"),
        provider_customer_id=dig(refund, "customer", "id") or sub.get("customer"),
    )
    if customer is None:
        return ctx.unresolved()
    payment_id = text(dig(refund, "transaction", "id")) or text(dig(refund, "order", "id"))
    amount, currency = refund.get("refund_amount"), text(refund.get("refund_currency"))
    notice = RefundNotice(
        customer,
        payment_id,
        text(refund.get("id")),
        amount,
        currency,
        "creem",
        ctx.event.occurred_at,
    )
    event = ctx.billing_event(
        "payment.refunded",
        customer,
        metadata,
        subscription_id=text(sub.get("id")),
        notes={
            "payment_id": payment_id,
            "refund_id": refund.get("id"),
            "amount": amount,
            "currency": currency,
            "reason": refund.get("reason"),
        },
    )
    return MappedEvent(billing_events=(event,), refunds=(notice,))
