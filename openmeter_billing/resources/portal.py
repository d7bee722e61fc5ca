"""``client.portal``: tokens that let your end users query their own usage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pydantic

from .._exceptions import InvalidInputError
from ..identity import CustomerRef
from ..types.portal import PortalToken
from ._base import AsyncResource, parse_model, parse_with

if TYPE_CHECKING:
    from ..providers.checkout import PortalLink

__all__ = ["AsyncPortal"]

TOKENS = "/api/v1/portal/tokens"
_token_list: pydantic.TypeAdapter[list[PortalToken]] = pydantic.TypeAdapter(list[PortalToken])


class AsyncPortal(AsyncResource):
    """Consumer portal tokens (OpenMeter) and payment providers' billing portal links."""

    async def billing_link(
        self,
        customer: CustomerRef,
        *,
        provider: str,
        return_url: str | None = None,
        provider_customer_id: str | None = None,
    ) -> PortalLink:
        """A link to the provider's billing portal, where the customer manages payment methods,
        invoices and cancellation (Stripe billing portal, Polar customer session, Dodo and Creem
        customer portals, Autumn's billing portal).

        Polar and Autumn find the customer by its key; Stripe, Dodo and Creem need
        ``provider_customer_id`` (``cus_...``/``cust_...``, from the webhook's billing event
        metadata). The link logs the customer in: send it to them, never log it.

        Raises:
            InvalidInputError: a provider that needs ``provider_customer_id`` did not get it.
            ProviderUnsupportedError: no portal at this provider (Razorpay); ``hint`` says why.
            ProviderAPIError: the provider refused or stayed unreachable after retries.
        """
        from ..providers.checkout import billing_link

        return await billing_link(
            self._deps.providers,
            self._deps.identity,
            customer,
            provider=provider,
            return_url=return_url,
            provider_customer_id=provider_customer_id,
        )

    async def create_token(
        self,
        *,
        subject: str | None = None,
        customer: CustomerRef | None = None,
        allowed_meter_slugs: Sequence[str] | None = None,
    ) -> PortalToken:
        """Create a token for a subject (or ``customer``'s subject). Keep ``token`` secret."""
        if (subject is None) == (customer is None):
            raise InvalidInputError("pass exactly one of subject= or customer=", field="subject")
        if customer is not None:
            if isinstance(customer, str):
                subject = customer
            else:
                subject = (await self._deps.identity.resolve(customer)).subject
        body: dict[str, object] = {"subject": subject}
        if allowed_meter_slugs is not None:
            body["allowedMeterSlugs"] = list(allowed_meter_slugs)
        response = await self._http.request("POST", TOKENS, json_body=body)
        return parse_model(PortalToken, response)

    async def list_tokens(self, *, limit: int | None = None) -> list[PortalToken]:
        """Recent portal tokens (without their secret values)."""
        response = await self._http.request("GET", TOKENS, params={"limit": limit})
        return parse_with(_token_list, response, "portal token list")

    async def invalidate(self, *, id: str | None = None, subject: str | None = None) -> None:
        """Invalidate one token by id, or every token of a subject."""
        if id is None and subject is None:
            raise InvalidInputError("pass id= or subject=", field="id")
        body = {k: v for k, v in {"id": id, "subject": subject}.items() if v is not None}
        await self._http.request("POST", TOKENS + "/invalidate", json_body=body)
