"""Stripe: ``Stripe-Signature`` (hex, ``t.body``) and subscription, invoice, checkout and refund
events, for API versions before and after ``2025-03-31.basil`` (periods moved onto items)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from .._exceptions import WebhookVerificationError
from ._adapter import MappingContext, ProviderAdapter, dig, from_unix, obj, text
from .base import MappedEvent, RefundNotice
from .signatures import HeaderMap, require_header, verify_stripe

__all__ = ["Stripe"]

_TERMINAL = {"canceled", "incomplete_expired", "unpaid"}
_LIVE = {"active", "trialing", "past_due"}


class Stripe(ProviderAdapter):
    """Stripe webhooks. ``Stripe(webhook_secret="whsec_...")`` or ``STRIPE_WEBHOOK_SECRET``.

    Customers: ``metadata.referenceId`` (subscription, checkout session or invoice snapshot) or
    ``client_reference_id``; otherwise ``resolve_customer`` gets the ``cus_...`` id. Plans and
    add-ons: each subscription item's price id, lookup key or product id in the catalog's
    ``provider_ids["stripe"]``. A ``mode=payment`` checkout is a top-up when its metadata names
    one (``topup``) or its payment link is a top-up's provider id.
    """

    name: ClassVar[str] = "stripe"
    env_var: ClassVar[str] = "STRIPE_WEBHOOK_SECRET"
    api_key_env: ClassVar[str] = "STRIPE_SECRET_KEY"
    default_base_url: ClassVar[str] = "https://api.stripe.com"
    idempotency_header: ClassVar[str | None] = "Idempotency-Key"

    def _check_signature(self, headers: HeaderMap, body: bytes, now: float) -> int:
        signature = require_header(headers, "Stripe-Signature", self.name)
        return verify_stripe(signature, body, self._keys, tolerance=self.tolerance, now=now)

    def _describe(
        self,
        headers: HeaderMap,
        payload: dict[str, Any],
        signed_at: int | None,
    ) -> tuple[str | None, str, datetime]:
        if not isinstance(payload.get("type"), str) or not isinstance(
            dig(payload, "data", "object"), dict
        ):
            raise WebhookVerificationError(
                "stripe: the body is not a Stripe event (no type or data.object)",
                reason="invalid_payload",
                provider=self.name,
            )
        occurred = from_unix(payload.get("created")) or from_unix(signed_at)
        assert occurred is not None
        return text(payload.get("id")), payload["type"], occurred

    def _map(self, ctx: MappingContext) -> MappedEvent:
        kind = ctx.event.type
        obj: dict[str, Any] = ctx.event.payload["data"]["object"]
        if kind.startswith("customer.subscription."):
            return _subscription(ctx, obj)
        if kind in ("invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed"):
            return _invoice(ctx, obj)
        if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
            return _checkout(ctx, obj)
        if kind == "charge.refunded":
            return _refund(ctx, obj)
        if kind.startswith(("refund.", "charge.refund.")):
            return MappedEvent(ignored="refunds are reported once, through charge.refunded")
        if kind in ("checkout.session.async_payment_failed", "checkout.session.expired"):
            return MappedEvent(ignored="checkout not paid")
        return ctx.unknown_type()


def _items(sub: dict[str, Any]) -> list[dict[str, Any]]:
    items = dig(sub, "items", "data")
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _terms(
    ctx: MappingContext, items: list[dict[str, Any]]
) -> tuple[str | None, dict[str, int], list[object]]:
    """(plan key, add-ons with quantities, the ids looked up) from subscription items."""
    plan: str | None = None
    addons: dict[str, int] = {}
    ids: list[object] = []
    for item in items:
        price = item.get("price") or item.get("plan") or {}
        candidates = [price.get("id"), price.get("lookup_key"), price.get("product")]
        ids.extend(c for c in candidates if c)
        ref = ctx.index.find(*candidates)
        if ref is None:
            continue
        if ref.kind == "plan" and plan is None:
            plan = ref.key
        elif ref.kind == "addon":
            quantity = item.get("quantity")
            addons[ref.key] = quantity if isinstance(quantity, int) and quantity > 0 else 1
    return plan, addons, ids


def _period(sub: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """Before basil the period is on the subscription; since basil only on its items."""
    start, end = sub.get("current_period_start"), sub.get("current_period_end")
    if start is None or end is None:
        items = _items(sub)
        start = min(
            (i["current_period_start"] for i in items if i.get("current_period_start")),
            default=None,
        )
        end = max(
            (i["current_period_end"] for i in items if i.get("current_period_end")), default=None
        )
    return from_unix(start), from_unix(end)


def _subscription(ctx: MappingContext, sub: dict[str, Any]) -> MappedEvent:
    kind = ctx.event.type.removeprefix("customer.subscription.")
    status = text(sub.get("status")) or ""
    if kind in ("trial_will_end", "pending_update_applied", "pending_update_expired"):
        return MappedEvent(ignored=f"customer.subscription.{kind} changes no access")
    if status in ("incomplete",) and kind != "deleted":
        return MappedEvent(ignored="subscription not paid yet (status incomplete)")
    customer, metadata = ctx.customer(
        sub.get("metadata"), provider_customer_id=_id(sub.get("customer"))
    )
    if customer is None:
        return ctx.unresolved()
    plan, addons, ids = _terms(ctx, _items(sub))
    if plan is None and not ctx.index.empty and kind != "deleted" and status not in _TERMINAL:
        return ctx.unknown_plan(ids)
    start, end = _period(sub)
    cancel_at = from_unix(sub.get("cancel_at"))
    pending_cancel = bool(sub.get("cancel_at_period_end")) or cancel_at is not None
    previous = dig(ctx.event.payload, "data", "previous_attributes") or {}
    if kind == "deleted" or status in _TERMINAL:
        type_ = "subscription.expired"
    elif kind == "paused" or status == "paused":
        type_ = "subscription.revoked"
    elif kind == "resumed":
        type_ = "subscription.active"
    elif kind == "created":
        type_ = "subscription.created"
    elif pending_cancel and ("cancel_at_period_end" in previous or "cancel_at" in previous):
        type_ = "subscription.canceled"
    elif not pending_cancel and previous.get("cancel_at_period_end") is True:
        type_ = "subscription.uncanceled"
    else:
        type_ = "subscription.updated"
    return MappedEvent(
        billing_events=(
            ctx.billing_event(
                type_,
                customer,
                metadata,
                plan=plan,
                addons=addons,
                subscription_id=text(sub.get("id")),
                status=status,
                current_period_start=start,
                current_period_end=cancel_at or end,
                cancel_at_period_end=pending_cancel,
                notes={"provider_customer_id": _id(sub.get("customer"))},
            ),
        )
    )


def _invoice(ctx: MappingContext, invoice: dict[str, Any]) -> MappedEvent:
    details = dig(invoice, "parent", "subscription_details") or {}
    sub_id = _id(details.get("subscription")) or _id(invoice.get("subscription"))
    if sub_id is None:
        return MappedEvent(
            ignored="invoice without a subscription (one-off invoices grant nothing)"
        )
    customer, metadata = ctx.customer(
        details.get("metadata"),
        invoice.get("subscription_details", {}).get("metadata")
        if isinstance(invoice.get("subscription_details"), dict)
        else None,
        invoice.get("metadata"),
        provider_customer_id=_id(invoice.get("customer")),
        email=invoice.get("customer_email"),
    )
    if customer is None:
        return ctx.unresolved()
    lines = dig(invoice, "lines", "data") or []
    items = []
    for line in lines if isinstance(lines, list) else []:
        price = dig(line, "pricing", "price_details") or {}
        old = obj(line.get("price"))
        items.append(
            {
                "price": {
                    "id": price.get("price") or old.get("id"),
                    "product": price.get("product") or old.get("product"),
                    "lookup_key": old.get("lookup_key"),
                },
                "quantity": line.get("quantity"),
            }
        )
    plan, addons, ids = _terms(ctx, items)
    failed = ctx.event.type == "invoice.payment_failed"
    if plan is None and not ctx.index.empty and not failed:
        return ctx.unknown_plan(ids)
    periods = [dig(line, "period") for line in lines if isinstance(line, dict)]
    start = min(
        (p["start"] for p in periods if isinstance(p, dict) and p.get("start")), default=None
    )
    end = max((p["end"] for p in periods if isinstance(p, dict) and p.get("end")), default=None)
    event = ctx.billing_event(
        "invoice.payment_failed" if failed else "invoice.paid",
        customer,
        metadata,
        plan=plan,
        addons=addons,
        subscription_id=sub_id,
        status=text(invoice.get("status")),
        current_period_start=from_unix(start),
        current_period_end=from_unix(end),
        notes={
            "invoice_id": invoice.get("id"),
            "billing_reason": invoice.get("billing_reason"),
            "amount_paid": invoice.get("amount_paid"),
            "currency": invoice.get("currency"),
        },
    )
    return MappedEvent(billing_events=(event,))


def _checkout(ctx: MappingContext, session: dict[str, Any]) -> MappedEvent:
    if session.get("payment_status") not in ("paid", "no_payment_required"):
        return MappedEvent(
            ignored=f"checkout not paid yet (payment_status {session.get('payment_status')})"
        )
    customer, metadata = ctx.customer(
        session.get("metadata"),
        reference_id=session.get("client_reference_id"),
        provider_customer_id=_id(session.get("customer")),
        email=dig(session, "customer_details", "email"),
    )
    mode = session.get("mode")
    if mode == "setup":
        return MappedEvent(ignored="setup checkout (no purchase)")
    if customer is None:
        return ctx.unresolved()
    if mode == "subscription":
        event = ctx.billing_event(
            "subscription.active",
            customer,
            metadata,
            subscription_id=_id(session.get("subscription")),
            status="active",
            notes={"checkout_session_id": session.get("id")},
        )
        return MappedEvent(billing_events=(event,))
    ref = ctx.index.find(
        metadata.get("topup"), session.get("payment_link"), metadata.get("price_id"), kind="topup"
    )
    payment_id = _id(session.get("payment_intent")) or text(session.get("id"))
    if ref is None or payment_id is None:
        ids = [metadata.get("topup"), session.get("payment_link")]
        shown = ", ".join(str(i) for i in ids if i) or "(none)"
        return MappedEvent(
            rejected=f"unknown_topup: no catalog top-up matches {shown}; "
            "set metadata.topup at checkout"
        )
    return ctx.topup(
        customer,
        ref.key,
        payment_id,
        amount=session.get("amount_total"),
        currency=text(session.get("currency")),
    )


def _refund(ctx: MappingContext, charge: dict[str, Any]) -> MappedEvent:
    customer, metadata = ctx.customer(
        charge.get("metadata"), provider_customer_id=_id(charge.get("customer"))
    )
    if customer is None:
        return ctx.unresolved()
    payment_id = _id(charge.get("payment_intent")) or text(charge.get("id"))
    amount, currency = charge.get("amount_refunded"), text(charge.get("currency"))
    notice = RefundNotice(
        customer, payment_id, None, amount, currency, "stripe", ctx.event.occurred_at
    )
    event = ctx.billing_event(
        "payment.refunded",
        customer,
        metadata,
        notes={
            "payment_id": payment_id,
            "charge_id": charge.get("id"),
            "amount": amount,
            "currency": currency,
        },
    )
    return MappedEvent(billing_events=(event,), refunds=(notice,))


def _id(value: object) -> str | None:
    """An id that may be expanded into an object."""
    if isinstance(value, dict):
        return text(value.get("id"))
    return text(value)
