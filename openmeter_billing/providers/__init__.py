"""Payment providers: verify a webhook over its raw bytes, then say what it means for billing.

Six adapters ship (`Stripe`, `Polar`, `Razorpay`, `Creem`, `Dodo`, `Autumn`); any object that
satisfies `PaymentProvider` works too. Nothing here needs a provider SDK or does I/O::

    provider = Stripe(webhook_secret="whsec_...")
    event = provider.verify(request_headers, raw_body)      # WebhookVerificationError if forged
    mapped = provider.map(event, catalog=catalog)           # billing events, top-ups, refunds
"""

from __future__ import annotations

from .autumn import Autumn
from .base import (
    CustomerHint,
    CustomerResolver,
    Headers,
    MappedEvent,
    PaymentProvider,
    ProviderEvent,
    RefundNotice,
    TopupPurchase,
)
from .creem import Creem
from .dodo import Dodo
from .polar import Polar
from .razorpay import Razorpay
from .signatures import DEFAULT_MAX_BODY_BYTES, DEFAULT_TOLERANCE
from .stripe import Stripe

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TOLERANCE",
    "Autumn",
    "Creem",
    "CustomerHint",
    "CustomerResolver",
    "Dodo",
    "Headers",
    "MappedEvent",
    "PaymentProvider",
    "Polar",
    "ProviderEvent",
    "Razorpay",
    "RefundNotice",
    "Stripe",
    "TopupPurchase",
]
