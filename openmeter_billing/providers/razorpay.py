"""Razorpay: hex HMAC of the body, ``X-Razorpay-Event-Id`` as the delivery id; subscription,
payment, order and refund events."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from .._exceptions import ConfigurationError
from ._adapter import (
    MappingContext,
    ProviderAdapter,
    dig,
    from_unix,
    received_now,
    text,
)
from .base import MappedEvent, RefundNotice
from .signatures import HeaderMap, header, require_header, verify_hmac_hex

__all__ = ["Razorpay"]

_TYPES = {
    "authenticated": "subscription.created",
    "activated": "subscription.active",
    "charged": "invoice.paid",
    "updated": "subscription.updated",
    "resumed": "subscription.active",
    "pending": "invoice.payment_failed",
    "halted": "subscription.expired",
    "paused": "subscription.revoked",
    "cancelled": "subscription.expired",
    "completed": "subscription.expired",
}


class Razorpay(ProviderAdapter):
    """Razorpay webhooks. ``Razorpay(webhook_secret=...)`` or ``RAZORPAY_WEBHOOK_SECRET``.

    The secret is the one set on the webhook in the dashboard (not the API key secret). No
    timestamp is signed, so replays are stopped by the ledger on ``X-Razorpay-Event-Id``.
    Customers: ``notes.referenceId`` (or ``userId``); otherwise ``resolve_customer`` gets the
    ``cust_...`` id. Plans: ``plan_id`` in ``provider_ids["razorpay"]``. A captured payment or
    paid order whose notes name a ``topup`` is a top-up.
    """

    name: ClassVar[str] = "razorpay"
    env_var: ClassVar[str] = "RAZORPAY_WEBHOOK_SECRET"
    api_key_env: ClassVar[str] = "RAZORPAY_KEY_SECRET"
    default_base_url: ClassVar[str] = "https://api.razorpay.com"

    def __init__(
        self,
        webhook_secret: str | Sequence[str] | None = None,
        *,
        key_id: str | None = None,
        **options: Any,
    ) -> None:
        """``key_id`` (or ``RAZORPAY_KEY_ID``) with ``api_key`` (the key secret, or
        ``RAZORPAY_KEY_SECRET``) authenticate checkout calls; webhooks need neither."""
        super().__init__(webhook_secret, **options)
        self.key_id = key_id or os.environ.get("RAZORPAY_KEY_ID") or None

    def _auth_headers(self) -> dict[str, str]:
        if not self.key_id:
            raise ConfigurationError(
                "razorpay: checkout links need the key id with the key secret: pass "
                "key_id= to Razorpay(...) or set RAZORPAY_KEY_ID"
            )
        token = base64.b64encode(f"{self.key_id}:{self._api_secrets()[0]}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def _check_signature(self, headers: HeaderMap, body: bytes, now: float) -> None:
        signature = require_header(headers, "X-Razorpay-Signature", self.name)
        verify_hmac_hex(signature, body, self._keys, provider=self.name)

    def _describe(
        self, headers: HeaderMap, payload: dict[str, Any], signed_at: int | None
    ) -> tuple[str | None, str, datetime]:
        occurred = from_unix(payload.get("created_at")) or received_now()
        return header(headers, "X-Razorpay-Event-Id"), str(payload.get("event") or ""), occurred

    def _map(self, ctx: MappingContext) -> MappedEvent:
        kind = ctx.event.type
        payload = ctx.event.payload.get("payload")
        if not isinstance(payload, dict):
            return ctx.unknown_type()
        if kind.startswith("subscription."):
            return _subscription(ctx, payload)
        if kind in ("payment.captured", "order.paid"):
            return _payment(ctx, payload)
        if kind == "refund.processed":
            return _refund(ctx, payload)
        if kind.startswith(("payment.", "refund.", "order.", "invoice.")):
            return MappedEvent(ignored=f"{kind} changes no access")
        return ctx.unknown_type()


def _notes(entity: object) -> dict[str, Any]:
    notes = dig(entity, "notes")
    return notes if isinstance(notes, dict) else {}  # Razorpay sends [] for no notes


def _subscription(ctx: MappingContext, payload: dict[str, Any]) -> MappedEvent:
    sub = dig(payload, "subscription", "entity") or {}
    type_ = _TYPES.get(ctx.event.type.removeprefix("subscription."))
    if type_ is None:
        return ctx.unknown_type()
    customer, metadata = ctx.customer(_notes(sub), provider_customer_id=sub.get("customer_id"))
    if customer is None:
        return ctx.unresolved()
    ref = ctx.index.find(sub.get("plan_id"), kind="plan")
    ending = type_ in ("subscription.expired", "subscription.revoked", "invoice.payment_failed")
    if ref is None and not ctx.index.empty and not ending:
        return ctx.unknown_plan([sub.get("plan_id")])
    end = from_unix(sub.get("current_end"))
    if type_ == "subscription.expired":
        end = from_unix(sub.get("ended_at")) or end
    payment = dig(payload, "payment", "entity") or {}
    event = ctx.billing_event(
        type_,
        customer,
        metadata,
        plan=ref.key if ref else None,
        subscription_id=text(sub.get("id")),
        status=text(sub.get("status")),
        current_period_start=from_unix(sub.get("current_start")),
        current_period_end=end,
        notes={
            "provider_customer_id": sub.get("customer_id"),
            "payment_id": payment.get("id"),
            "paid_count": sub.get("paid_count"),
        },
    )
    return MappedEvent(billing_events=(event,))


def _payment(ctx: MappingContext, payload: dict[str, Any]) -> MappedEvent:
    payment = dig(payload, "payment", "entity") or {}
    order = dig(payload, "order", "entity") or {}
    if payment.get("invoice_id") or dig(payload, "subscription"):
        return MappedEvent(ignored="subscription payment (reported by subscription.charged)")
    notes = {**_notes(order), **_notes(payment)}
    ref = ctx.index.find(notes.get("topup"), notes.get("topup_id"), kind="topup")
    if ref is None:
        return MappedEvent(ignored="payment for no catalog top-up (notes.topup not set)")
    customer, _ = ctx.customer(notes, provider_customer_id=payment.get("customer_id"))
    if customer is None:
        return ctx.unresolved()
    payment_id = str(payment.get("id") or order.get("id"))
    return ctx.topup(
        customer,
        ref.key,
        payment_id,
        amount=payment.get("amount"),
        currency=text(payment.get("currency")),
    )


def _refund(ctx: MappingContext, payload: dict[str, Any]) -> MappedEvent:
    refund = dig(payload, "refund", "entity") or {}
    payment = dig(payload, "payment", "entity") or {}
    customer, metadata = ctx.customer(
        _notes(refund), _notes(payment), provider_customer_id=payment.get("customer_id")
    )
    if customer is None:
        return ctx.unresolved()
    amount, currency = refund.get("amount"), text(refund.get("currency"))
    payment_id = text(refund.get("payment_id"))
    notice = RefundNotice(
        customer,
        payment_id,
        text(refund.get("id")),
        amount,
        currency,
        "razorpay",
        ctx.event.occurred_at,
    )
    event = ctx.billing_event(
        "payment.refunded",
        customer,
        metadata,
        notes={
            "payment_id": payment_id,
            "refund_id": refund.get("id"),
            "amount": amount,
            "currency": currency,
        },
    )
    return MappedEvent(billing_events=(event,), refunds=(notice,))
