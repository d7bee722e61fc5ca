"""``client.checkout`` and ``client.portal.billing_link``: validate, resolve, then call."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..._exceptions import ProviderNotConfiguredError, ProviderUnsupportedError
from .._adapter import ProviderAdapter
from ._plan import CheckoutLink, PortalLink, plan_checkout

if TYPE_CHECKING:
    from ...catalog.dsl import Catalog
    from ...identity import Identity
    from ..base import PaymentProvider

__all__ = ["AsyncCheckout", "billing_link"]


def _module(provider: str) -> ModuleType:
    from . import autumn, creem, dodo, polar, razorpay, stripe

    return {
        "stripe": stripe,
        "polar": polar,
        "dodo": dodo,
        "creem": creem,
        "razorpay": razorpay,
        "autumn": autumn,
    }[provider]


def _adapter(providers: Mapping[str, PaymentProvider], provider: str) -> ProviderAdapter:
    adapter = providers.get(provider)
    if adapter is None:
        known = ", ".join(sorted(providers)) or "none"
        raise ProviderNotConfiguredError(
            f"no payment provider named {provider!r} is configured (configured: {known}); pass "
            "providers=[Stripe(...), ...] to OpenMeterBilling"
        )
    if not isinstance(adapter, ProviderAdapter):
        raise ProviderUnsupportedError(
            f"{provider!r} is your own PaymentProvider; checkout links exist for the shipped "
            "adapters only",
            field="provider",
            hint="create the session with your provider's API and put the customer key in its "
            "metadata as referenceId",
        )
    return adapter


class AsyncCheckout:
    """Checkout links from the catalog (``client.checkout``).

    Gets what it uses: the configured providers, the identity resolvers and the catalog.
    """

    def __init__(
        self,
        *,
        providers: Mapping[str, PaymentProvider],
        identity: Identity,
        catalog: Catalog | None,
    ) -> None:
        self._providers = providers
        self._identity = identity
        self._catalog = catalog

    async def create(
        self,
        customer: object,
        *,
        provider: str,
        success_url: str,
        plan: str | None = None,
        addon: str | None = None,
        topup: str | None = None,
        price: str | None = None,
        addons: Mapping[str, int] | None = None,
        cancel_url: str | None = None,
        customer_email: str | None = None,
        provider_customer_id: str | None = None,
        idempotency_key: str | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> CheckoutLink:
        """A hosted checkout for a catalog plan (with ``addons``), add-on or top-up.

        Prices come from the catalog's ``provider_ids``; ``price`` names the catalog price
        (optional when the item has one). ``customer`` is a key, an id or a principal your
        identity resolvers know: its customer key rides in the provider's reference/metadata
        fields, so the purchase's webhooks map back to it. ``idempotency_key`` (default: a new
        one per call) is sent on every retry of this call; pass your own to make repeated calls
        return the same session where the provider supports it (Stripe). ``options`` carries
        provider extras (Razorpay ``total_count``).

        Raises:
            InvalidInputError: unknown item or price, missing provider id, bad URL or quantity.
            ProviderUnsupportedError: the provider cannot sell this in one checkout (``hint``
                names the alternative).
            ProviderNotConfiguredError / ConfigurationError: no such provider, or no API key.
            ProviderAPIError: the provider refused or stayed unreachable after retries.
        """
        adapter = _adapter(self._providers, provider)
        customer_key = await self._identity.customer_key(customer)
        checkout = plan_checkout(
            self._catalog,
            provider,
            customer_key,
            plan=plan,
            addon=addon,
            topup=topup,
            price=price,
            addons=addons,
            success_url=success_url,
            cancel_url=cancel_url,
            idempotency_key=idempotency_key or f"omb-checkout-{uuid.uuid4().hex}",
            customer_email=customer_email,
            provider_customer_id=provider_customer_id,
            options=dict(options or {}),
        )
        result: CheckoutLink = await _module(provider).create(adapter.api(), checkout)
        return result


async def billing_link(
    providers: Mapping[str, PaymentProvider],
    identity: Identity,
    customer: object,
    *,
    provider: str,
    return_url: str | None = None,
    provider_customer_id: str | None = None,
) -> PortalLink:
    """A provider billing portal session (see `AsyncPortal.billing_link`)."""
    adapter = _adapter(providers, provider)
    customer_key = await identity.customer_key(customer)
    result: PortalLink = await _module(provider).portal(
        adapter.api(), customer_key, provider_customer_id, return_url
    )
    return result
