"""Checkout and billing portal links from the catalog, for every shipped provider.

``client.checkout.create(...)`` resolves the catalog item (pure, `_plan`), then calls the
provider's API (one small module per provider, over `providers._api.ProviderAPI`). The customer
key travels in each provider's reference/metadata fields, where the webhook mapping finds it.
"""

from __future__ import annotations

from ._plan import CheckoutLink, PortalLink
from ._workflow import AsyncCheckout, billing_link

__all__ = ["AsyncCheckout", "CheckoutLink", "PortalLink", "billing_link"]
