"""Autumn: Svix-signed webhooks (``billing.updated``, auto top-ups) and the attach/check flow's
billing state (`Autumn.billing_state_event`, ``client.webhooks.handle_billing_state``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from .._exceptions import InvalidInputError
from ..billing.events import BillingEvent
from ..catalog.dsl import Catalog
from ._adapter import MappingContext, dig, from_millis, from_unix, items, received_now, text
from ._catalog_index import index_for
from ._standard import StandardWebhooksAdapter
from .base import MappedEvent, ProviderEvent
from .signatures import HeaderMap, header

__all__ = ["Autumn"]

_ACTIONS = {
    "activated": "subscription.active",
    "updated": "subscription.updated",
    "expired": "subscription.expired",
}


class Autumn(StandardWebhooksAdapter):
    """Autumn webhooks (delivered by Svix). ``Autumn(webhook_secret=...)`` or
    ``AUTUMN_WEBHOOK_SECRET``.

    Autumn's ``customer_id`` is your id, so it is the customer unless ``resolve_customer`` says
    otherwise. Each ``plan_changes`` entry of ``billing.updated`` becomes one billing event; the
    plan is the catalog plan whose ``provider_ids["autumn"]`` (or key) is the ``plan_id``.
    Autumn is also driven without webhooks: after an attach or check call, pass what it
    returned to ``client.webhooks.handle_billing_state(state)``, which applies
    `billing_state_event`'s result exactly once.
    """

    name: ClassVar[str] = "autumn"
    env_var: ClassVar[str] = "AUTUMN_WEBHOOK_SECRET"
    api_key_env: ClassVar[str] = "AUTUMN_SECRET_KEY"
    default_base_url: ClassVar[str] = "https://api.useautumn.com"
    header_prefix: ClassVar[str] = "svix"

    def _describe(
        self, headers: HeaderMap, payload: dict[str, Any], signed_at: int | None
    ) -> tuple[str | None, str, datetime]:
        occurred = from_millis(payload.get("occurred_at")) or from_unix(signed_at) or received_now()
        return header(headers, "svix-id"), str(payload.get("type") or ""), occurred

    def _map(self, ctx: MappingContext) -> MappedEvent:
        data = ctx.event.payload.get("data")
        if not isinstance(data, dict):
            return ctx.unknown_type()
        if ctx.event.type in ("billing.updated", "customer.products.updated"):
            return _billing_updated(ctx, data)
        if ctx.event.type == "billing.auto_topup_succeeded":
            return _auto_topup(ctx, data)
        if ctx.event.type.startswith(("balances.", "billing.", "invoice.", "customer.")):
            return MappedEvent(ignored=f"{ctx.event.type} changes no access")
        return ctx.unknown_type()

    def billing_state_event(
        self,
        state: Mapping[str, Any],
        *,
        catalog: Catalog | None = None,
        occurred_at: datetime | None = None,
    ) -> BillingEvent:
        """A billing event from Autumn's attach/check flow, where no webhook is sent.

        ``state`` is what your attach or check call learned: ``customer_id`` (required),
        ``plan_id`` (or ``product_id``), optional ``type`` (default ``subscription.active``),
        ``entity_id``, ``status``, ``event_id`` (deduplication; default derived from the
        customer, plan and status) and ``metadata``.

        Raises:
            InvalidInputError: no ``customer_id``, or a plan the catalog does not know.
        """
        customer = text(state.get("customer_id"))
        if customer is None:
            raise InvalidInputError(
                "customer_id is required",
                field="state.customer_id",
                hint="pass the customer_id you gave Autumn's attach/check call",
            )
        plan_id = text(state.get("plan_id")) or text(state.get("product_id"))
        ref = index_for(catalog, self.name).find(plan_id, kind="plan")
        if plan_id and ref is None and catalog is not None:
            raise InvalidInputError(
                f"no catalog plan has autumn id {plan_id!r}",
                field="state.plan_id",
                hint="set provider_ids={'autumn': ...} on the plan, or use the plan's key",
            )
        when = occurred_at or received_now()
        type_ = str(state.get("type") or "subscription.active")
        event_id = (
            text(state.get("event_id")) or f"state:{customer}:{plan_id}:{type_}:{when.isoformat()}"
        )
        event = ProviderEvent(self.name, event_id, "billing_state", when, dict(state))
        metadata = state.get("metadata") if isinstance(state.get("metadata"), Mapping) else {}
        ctx = MappingContext(self, event, index_for(catalog, self.name))
        resolved, meta = ctx.customer(metadata, reference_id=customer)
        return ctx.billing_event(
            type_,
            resolved or customer,
            meta,
            plan=ref.key if ref else None,
            subscription_id=_subscription_id(customer, text(state.get("entity_id")), plan_id),
            status=text(state.get("status")),
            notes={"entity_id": state.get("entity_id")},
        )


def _subscription_id(customer: str, entity: str | None, plan: str | None) -> str:
    """Autumn has no subscription ids; one per customer, entity and plan keeps plans apart."""
    return "/".join(p for p in (customer, entity, plan) if p)


def _billing_updated(ctx: MappingContext, data: dict[str, Any]) -> MappedEvent:
    customer_id = text(data.get("customer_id"))
    customer, metadata = ctx.customer(reference_id=customer_id, provider_customer_id=customer_id)
    if customer is None or customer_id is None:
        return ctx.unresolved()
    entity = text(data.get("entity_id"))
    changes = items(data.get("plan_changes"))
    events: list[BillingEvent] = []
    skipped: list[str] = []
    for position, change in enumerate(changes):
        sub = dig(change, "subscription") or dig(change, "purchase") or {}
        action = dig(change, "action")
        type_ = _ACTIONS.get(action) if isinstance(action, str) else None
        if type_ is None:
            skipped.append(f"{action}: changes no access yet")
            continue
        previous = dig(change, "previous_attributes") or {}
        if type_ == "subscription.updated" and sub.get("canceled_at") and "canceled_at" in previous:
            type_ = "subscription.canceled"
        if type_ != "subscription.expired" and sub.get("past_due"):
            type_ = "invoice.payment_failed"
        plan_id = text(sub.get("plan_id"))
        ref = ctx.index.find(plan_id, kind="plan")
        if ref is None and not ctx.index.empty and type_ != "subscription.expired":
            return ctx.unknown_plan([plan_id])
        events.append(
            ctx.billing_event(
                type_,
                customer,
                metadata,
                suffix=f":{position}",
                plan=ref.key if ref else None,
                subscription_id=_subscription_id(customer_id, entity, plan_id),
                status=text(sub.get("status")),
                current_period_start=from_millis(sub.get("current_period_start")),
                current_period_end=from_millis(sub.get("current_period_end"))
                or from_millis(sub.get("expires_at")),
                cancel_at_period_end=type_ == "subscription.canceled",
                notes={"entity_id": entity, "action": action},
            )
        )
    if not events:
        return MappedEvent(ignored="; ".join(skipped) or "billing.updated without plan changes")
    # Ends first, so a plan switch never leaves the old plan's entitlements behind the new one's.
    events.sort(key=lambda e: e.type != "subscription.expired")
    return MappedEvent(billing_events=tuple(events))


def _auto_topup(ctx: MappingContext, data: dict[str, Any]) -> MappedEvent:
    customer, _ = ctx.customer(reference_id=data.get("customer_id"))
    if customer is None:
        return ctx.unresolved()
    ref = ctx.index.find(data.get("feature_id"), kind="topup")
    invoice_id = text(dig(data, "invoice", "stripe_id")) or ctx.event.delivery_id
    if ref is None:
        return MappedEvent(
            ignored=f"auto top-up of {data.get('feature_id')} matches no catalog top-up"
        )
    return ctx.topup(
        customer,
        ref.key,
        invoice_id,
        amount=dig(data, "invoice", "total"),
        currency=text(dig(data, "invoice", "currency")),
    )
