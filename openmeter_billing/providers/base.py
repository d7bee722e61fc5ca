"""What every payment provider adapter is: `PaymentProvider`, and the values it hands back."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeAlias, runtime_checkable

from ..billing.events import BillingEvent
from ..catalog.dsl import Catalog

__all__ = [
    "CustomerHint",
    "CustomerResolver",
    "Headers",
    "MappedEvent",
    "PaymentProvider",
    "ProviderEvent",
    "RefundNotice",
    "TopupPurchase",
]

#: Request headers as a mapping or as (name, value) pairs; names match case-insensitively.
Headers: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True)
class ProviderEvent:
    """A verified delivery: who sent it, its delivery id, its type and its parsed body.

    Attributes:
        provider: The adapter's name (``stripe``, ``polar``, ...).
        delivery_id: The id every retry of this event repeats (Stripe ``evt_``, ``webhook-id``,
            ``svix-id``, ``X-Razorpay-Event-Id``, Creem's body ``id``): the exactly-once key.
        type: The provider's event type, verbatim (``customer.subscription.updated``).
        occurred_at: When the provider says it happened (aware).
        payload: The parsed JSON body.
    """

    provider: str
    delivery_id: str
    type: str
    occurred_at: datetime
    payload: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class CustomerHint:
    """What a delivery says about its customer, for a `CustomerResolver`.

    Attributes:
        provider: The provider name.
        reference_id: Your id, from metadata (``referenceId``...), ``client_reference_id`` or
            Polar's ``customer.external_id``; the default resolver returns it.
        provider_customer_id: The provider's customer id (``cus_...``, ``cust_...``).
        email: The customer's email when the payload carries one.
        metadata: The metadata the id was looked up in.
        event: The whole verified event.
    """

    provider: str
    reference_id: str | None
    provider_customer_id: str | None
    email: str | None
    metadata: Mapping[str, Any]
    event: ProviderEvent = field(repr=False)


#: ``hint -> customer`` (an OpenMeter customer key or id, or a principal your `Identity`
#: resolves), or None when unknown. Called during pure mapping, so it must be synchronous.
CustomerResolver: TypeAlias = Callable[[CustomerHint], object | None]


@dataclass(frozen=True)
class TopupPurchase:
    """A paid one-time purchase of a catalog top-up: becomes one ``client.topups.grant``.

    ``idempotency_key`` is derived from the provider's payment id, so the same payment reported
    by two event types (Razorpay ``payment.captured`` and ``order.paid``) grants once.
    """

    customer: Any
    topup: str
    idempotency_key: str
    payment_id: str
    provider: str
    occurred_at: datetime
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class RefundNotice:
    """A refund the provider reported (also audited as a ``payment.refunded`` billing event)."""

    customer: Any
    payment_id: str | None
    refund_id: str | None
    amount: int | None
    currency: str | None
    provider: str
    occurred_at: datetime


@dataclass(frozen=True)
class MappedEvent:
    """What one provider event means for billing.

    Attributes:
        billing_events: Subscription and payment facts for ``client.billing.apply_event``.
        topups: Paid catalog top-ups for ``client.topups.grant``.
        refunds: Refunds (their audit events are in ``billing_events`` too).
        ignored: Why nothing happens, when nothing does: ``unknown_event_type: ...`` for a type
            this adapter does not map, otherwise a reason such as ``not paid yet``.
        rejected: Why the event cannot be applied although it should be (an unknown plan or
            price, an unresolvable customer). The webhook answers 422 and keeps it for replay.
    """

    billing_events: tuple[BillingEvent, ...] = ()
    topups: tuple[TopupPurchase, ...] = ()
    refunds: tuple[RefundNotice, ...] = ()
    ignored: str | None = None
    rejected: str | None = None

    @property
    def unknown_type(self) -> bool:
        """Whether the adapter does not know this event type at all."""
        return bool(self.ignored and self.ignored.startswith("unknown_event_type"))


@runtime_checkable
class PaymentProvider(Protocol):
    """A payment provider adapter: verify a delivery, then say what it means for billing.

    Implement it for a provider this library does not ship: a ``name``, a pure ``verify`` over
    the raw bytes, and a pure ``map``. ``OpenMeterBilling(providers=[...])`` takes any object
    that has these.
    """

    @property
    def name(self) -> str:
        """The provider's name: the key for ``client.webhooks.handle(name, ...)``."""
        ...

    def verify(self, headers: Headers, body: bytes | str) -> ProviderEvent:
        """Verify the signature over the exact raw ``body``; raise `WebhookVerificationError`."""
        ...

    def map(self, event: ProviderEvent, *, catalog: Catalog | None = None) -> MappedEvent:
        """Translate a verified event into billing events, top-ups and refunds (pure)."""
        ...
