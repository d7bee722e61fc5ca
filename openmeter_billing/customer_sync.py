"""``client.customers.upsert`` and ``sync``: workflows over the customers resource.

`CustomersResource` speaks to OpenMeter's customer endpoints and nothing more. Deciding to read,
create or replace (and merging what the caller set into what exists), resolving a principal
through the identity resolvers, and recording OpenMeter's id in the `CustomerIdStore` are
workflow decisions, composed here on top of the resource's operations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._exceptions import ConflictError, NotFoundError
from .identity import CustomerRef, store_get, store_set
from .resources.customers import CustomersResource, customer_body
from .types.customers import (
    AddressInput,
    Customer,
    CustomerCreate,
    CustomerReplaceUpdate,
    CustomerUsageAttributionInput,
)

__all__ = ["AsyncCustomers", "merge_into"]


class AsyncCustomers(CustomersResource):
    """Customers (``client.customers``): the resource's operations plus ``upsert`` and ``sync``."""

    async def upsert(
        self,
        *,
        key: str,
        name: str,
        description: str | None = None,
        primary_email: str | None = None,
        currency: str | None = None,
        billing_address: AddressInput | Mapping[str, str] | None = None,
        subject_keys: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Customer:
        """Create the customer with ``key``, or bring the existing one up to date.

        Fields you leave out keep their current values; ``metadata`` merges key by key and
        ``subject_keys`` are added to the existing ones. Safe to repeat.
        """
        body = customer_body(
            CustomerCreate,
            name,
            key,
            description,
            primary_email,
            currency,
            billing_address,
            subject_keys,
            metadata,
        )
        return await self._upsert(body)

    async def _upsert(self, body: CustomerCreate) -> Customer:
        assert body.key is not None
        try:
            existing = await self.get(body.key)
        except NotFoundError:
            try:
                return await self._create(body)
            except ConflictError:
                # Someone created it between our read and our write: update that one instead.
                existing = await self.get(body.key)
        merged = merge_into(existing, body)
        if merged is None:
            return existing
        return await self._replace(existing.id, merged)

    async def sync(self, principal: CustomerRef) -> Customer:
        """Create or update the customer a principal (user, organization, team) maps to.

        The identity resolvers give the key, subject and profile; the customer is upserted by key,
        and the `CustomerIdStore` (if configured) records OpenMeter's id. Safe to replay, for
        example after a lost response.
        """
        resolved = await self._deps.identity.resolve(principal)
        customer = await self._upsert(resolved.to_create())
        store = self._deps.customer_id_store
        if store is not None and await store_get(store, resolved.key) != customer.id:
            await store_set(store, resolved.key, customer.id, principal)
        return customer


def merge_into(existing: Customer, wanted: CustomerCreate) -> CustomerReplaceUpdate | None:
    """The full-replace body that applies ``wanted`` over ``existing``; None if nothing changes.

    PUT clears omitted fields, so everything the caller did not set is carried over.
    """
    current = CustomerReplaceUpdate(
        name=existing.name,
        key=existing.key,
        description=existing.description,
        primary_email=existing.primary_email,
        currency=existing.currency,
        billing_address=(
            AddressInput.model_validate(existing.billing_address.to_dict())
            if existing.billing_address
            else None
        ),
        usage_attribution=CustomerUsageAttributionInput(subject_keys=existing.subject_keys),
        metadata=dict(existing.metadata) if existing.metadata else None,
    )
    changes: dict[str, Any] = {
        name: getattr(wanted, name)
        for name in wanted.model_fields_set
        if getattr(wanted, name) is not None
    }
    if wanted.metadata:
        changes["metadata"] = {**(current.metadata or {}), **wanted.metadata}
    if wanted.usage_attribution is not None:
        keys = list(existing.subject_keys)
        keys += [k for k in wanted.usage_attribution.subject_keys if k not in keys]
        changes["usage_attribution"] = CustomerUsageAttributionInput(subject_keys=keys)
    merged = current.model_copy(update=changes)
    return None if merged.to_body() == current.to_body() else merged
