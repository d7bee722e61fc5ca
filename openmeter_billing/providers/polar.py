"""Polar: Standard Webhooks headers with both key derivations, subscription and order events."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from ._adapter import MappingContext, describe_standard_webhook, dig, from_iso, obj, text
from ._standard import StandardWebhooksAdapter
from .base import MappedEvent, RefundNotice
from .signatures import HeaderMap

__all__ = ["Polar"]

_IGNORED_PREFIXES = (
    "checkout.",
    "customer.",
    "benefit_grant.",
    "benefit.",
    "product.",
    "organization.",
)


class Polar(StandardWebhooksAdapter):
    """Polar webhooks. ``Polar(webhook_secret="whsec_...")`` or ``POLAR_WEBHOOK_SECRET``.

    Both key derivations are tried (secrets made before 2026-09-08 sign with the secret's UTF-8
    bytes, later ones with its base64-decoded body). Customers: ``metadata.referenceId``, then
    ``customer.external_id``. Plans: ``product_id`` (or ``price_id``) in ``provider_ids["polar"]``.
    ``subscription.canceled`` keeps access to the period end; ``subscription.revoked`` ends it.
    """

    name: ClassVar[str] = "polar"
    env_var: ClassVar[str] = "POLAR_WEBHOOK_SECRET"
    api_key_env: ClassVar[str] = "POLAR_ACCESS_TOKEN"
    default_base_url: ClassVar[str] = "https://api.polar.sh"
    legacy_keys: ClassVar[bool] = True

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
        if kind == "order.paid":
            return _order_paid(ctx, data)
        if kind == "order.refunded":
            return _order_refunded(ctx, data)
        if kind in ("order.created", "order.updated"):
            return MappedEvent(ignored=f"{kind}: access follows order.paid")
        if kind.startswith("refund."):
            return MappedEvent(ignored="refunds are reported once, through order.refunded")
        if kind.startswith(_IGNORED_PREFIXES):
            return MappedEvent(ignored=f"{kind} changes no access (subscription events do)")
        return ctx.unknown_type()


def _customer(ctx: MappingContext, data: dict[str, Any]) -> tuple[object | None, dict[str, Any]]:
    customer = obj(data.get("customer"))
    metadata = obj(data.get("metadata"))
    ref = next(
        (metadata.get(k) for k in ("referenceId", "reference_id") if text(metadata.get(k))), None
    )
    return ctx.customer(
        metadata,
        reference_id=ref or customer.get("external_id"),
        provider_customer_id=data.get("customer_id") or customer.get("id"),
        email=customer.get("email"),
    )


_TYPES = {
    "created": "subscription.created",
    "active": "subscription.active",
    "updated": "subscription.updated",
    "uncanceled": "subscription.uncanceled",
    "canceled": "subscription.canceled",
    "revoked": "subscription.revoked",
    "past_due": "subscription.updated",
    "cycled": "subscription.renewed",
    "paused": "subscription.revoked",
    "resumed": "subscription.active",
}


def _subscription(ctx: MappingContext, sub: dict[str, Any]) -> MappedEvent:
    kind = ctx.event.type.removeprefix("subscription.")
    type_ = _TYPES.get(kind)
    if type_ is None:
        return ctx.unknown_type()
    status = text(sub.get("status")) or ""
    if status in ("incomplete",):
        return MappedEvent(ignored="subscription not paid yet (status incomplete)")
    if kind == "updated" and status in ("canceled", "unpaid", "incomplete_expired"):
        type_ = "subscription.expired"
    customer, metadata = _customer(ctx, sub)
    if customer is None:
        return ctx.unresolved()
    ids = [sub.get("product_id"), sub.get("price_id")]
    ref = ctx.index.find(*ids, kind="plan")
    ending = type_ in ("subscription.revoked", "subscription.expired", "subscription.canceled")
    if ref is None and not ctx.index.empty and not ending:
        return ctx.unknown_plan(ids)
    end = from_iso(sub.get("current_period_end"))
    if type_ == "subscription.canceled":
        end = from_iso(sub.get("ends_at")) or end
    event = ctx.billing_event(
        type_,
        customer,
        metadata,
        plan=ref.key if ref else None,
        subscription_id=text(sub.get("id")),
        status=status,
        current_period_start=from_iso(sub.get("current_period_start")),
        current_period_end=end,
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        notes={"provider_customer_id": sub.get("customer_id")},
    )
    return MappedEvent(billing_events=(event,))


def _order_paid(ctx: MappingContext, order: dict[str, Any]) -> MappedEvent:
    customer, metadata = _customer(ctx, order)
    if customer is None:
        return ctx.unresolved()
    product_id = order.get("product_id") or dig(order, "product", "id")
    if order.get("billing_reason") == "purchase":
        ref = ctx.index.find(product_id, kind="topup")
        if ref is None:
            return MappedEvent(
                rejected=f"unknown_topup: no catalog top-up has polar id {product_id}"
            )
        order_id = str(order.get("id"))
        return ctx.topup(
            customer,
            ref.key,
            order_id,
            amount=order.get("total_amount"),
            currency=text(order.get("currency")),
        )
    sub = obj(order.get("subscription"))
    ref = ctx.index.find(product_id, sub.get("price_id"), kind="plan")
    if ref is None and not ctx.index.empty:
        return ctx.unknown_plan([product_id])
    event = ctx.billing_event(
        "invoice.paid",
        customer,
        metadata,
        plan=ref.key if ref else None,
        subscription_id=text(order.get("subscription_id")),
        status=text(sub.get("status")),
        current_period_start=from_iso(sub.get("current_period_start")),
        current_period_end=from_iso(sub.get("current_period_end")),
        notes={
            "order_id": order.get("id"),
            "billing_reason": order.get("billing_reason"),
            "total_amount": order.get("total_amount"),
            "currency": order.get("currency"),
        },
    )
    return MappedEvent(billing_events=(event,))


def _order_refunded(ctx: MappingContext, order: dict[str, Any]) -> MappedEvent:
    customer, metadata = _customer(ctx, order)
    if customer is None:
        return ctx.unresolved()
    order_id = text(order.get("id"))
    amount, currency = order.get("refunded_amount"), text(order.get("currency"))
    notice = RefundNotice(
        customer, order_id, None, amount, currency, "polar", ctx.event.occurred_at
    )
    event = ctx.billing_event(
        "payment.refunded",
        customer,
        metadata,
        subscription_id=text(order.get("subscription_id")),
        notes={"order_id": order_id, "amount": amount, "currency": currency},
    )
    return MappedEvent(billing_events=(event,), refunds=(notice,))
