"""``client.customers``: create, read, update, delete, list, upsert and sync customers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .._exceptions import NotFoundError, PreconditionFailedError
from .._http import encode_path
from .._pagination import AsyncPage, AsyncPaginator
from .._types import MaybeAwaitable, maybe_await
from ..identity import CustomerRef, store_delete, store_get
from ..types.customers import (
    AddressInput,
    Customer,
    CustomerAccess,
    CustomerCreate,
    CustomerReplaceUpdate,
)
from ._base import AsyncResource, build_input, parse_model, parse_page

__all__ = ["CustomerDeletion", "CustomersResource", "customer_body"]

CUSTOMERS = "/api/v1/customers"
CUSTOMER = "/api/v1/customers/{}"


@dataclass(frozen=True)
class CustomerDeletion:
    """What `AsyncCustomers.delete` did.

    Attributes:
        key: The customer key (or the id or key you passed as a string).
        deleted: True when this call deleted the customer; False when it was already gone
            (a replay), which is not an error.
        customer_id: OpenMeter's id from the `CustomerIdStore`, when one was recorded.
        store_cleared: Whether the id was removed from the `CustomerIdStore`.
        principal: The principal you passed (None for a plain string).
    """

    key: str
    deleted: bool
    customer_id: str | None = None
    store_cleared: bool = False
    principal: object = None


#: ``deletion -> None`` (sync or async): deletes the payment provider's customer as well.
ProviderCleanup = Callable[[CustomerDeletion], MaybeAwaitable[None]]


class CustomersResource(AsyncResource):
    """OpenMeter customers (``/api/v1/customers``): the endpoints, nothing more.

    ``client.customers`` is `openmeter_billing.customer_sync.AsyncCustomers`, which adds the
    ``upsert`` and ``sync`` workflows on top.
    """

    async def create(
        self,
        *,
        name: str,
        key: str | None = None,
        description: str | None = None,
        primary_email: str | None = None,
        currency: str | None = None,
        billing_address: AddressInput | Mapping[str, str] | None = None,
        subject_keys: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Customer:
        """Create a customer; 409 (`ConflictError`) if the key or a subject is taken.

        Args:
            name: Display name.
            key: Your stable identifier for the customer (for example ``org:42``).
            subject_keys: Event subjects whose usage belongs to this customer.
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
        return await self._create(body)

    async def _create(self, body: CustomerCreate) -> Customer:
        response = await self._http.request("POST", CUSTOMERS, json_body=body.to_body())
        return parse_model(Customer, response)

    async def get(self, customer: CustomerRef) -> Customer:
        """Fetch a customer by OpenMeter id, key or principal. A deleted customer is 404 by key."""
        path = encode_path(CUSTOMER, await self._customer_path_key(customer))
        return parse_model(Customer, await self._http.request("GET", path))

    def list(
        self,
        *,
        page_size: int = 100,
        key: str | None = None,
        name: str | None = None,
        primary_email: str | None = None,
        subject: str | None = None,
        include_deleted: bool | None = None,
        order: Literal["ASC", "DESC"] | None = None,
        order_by: Literal["id", "name", "createdAt"] | None = None,
    ) -> AsyncPaginator[Customer]:
        """List customers. ``await`` it for the first page, or ``async for`` over all of them.

        ``key``, ``name``, ``primary_email`` and ``subject`` are case-insensitive partial matches.
        """
        params = {
            "pageSize": page_size,
            "key": key,
            "name": name,
            "primaryEmail": primary_email,
            "subject": subject,
            "includeDeleted": include_deleted,
            "order": order,
            "orderBy": order_by,
        }

        async def fetch(page: int) -> AsyncPage[Customer]:
            response = await self._http.request("GET", CUSTOMERS, params={**params, "page": page})
            return parse_page(response, fetch, Customer.model_validate)

        return AsyncPaginator(fetch)

    async def update(
        self,
        customer: CustomerRef,
        *,
        name: str,
        key: str | None = None,
        description: str | None = None,
        primary_email: str | None = None,
        currency: str | None = None,
        billing_address: AddressInput | Mapping[str, str] | None = None,
        subject_keys: Sequence[str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Customer:
        """Replace a customer (HTTP PUT): fields you leave out are cleared on the server."""
        body = customer_body(
            CustomerReplaceUpdate,
            name,
            key,
            description,
            primary_email,
            currency,
            billing_address,
            subject_keys,
            metadata,
        )
        return await self._replace(await self._customer_path_key(customer), body)

    async def _replace(self, id_or_key: str, body: CustomerCreate) -> Customer:
        path = encode_path(CUSTOMER, id_or_key)
        response = await self._http.request("PUT", path, json_body=body.to_body())
        return parse_model(Customer, response)

    async def delete(
        self, customer: CustomerRef, *, provider_cleanup: ProviderCleanup | None = None
    ) -> CustomerDeletion:
        """Soft-delete a customer and forget its id; safe to call again.

        A second call (a retried job, a replayed webhook) finds the customer gone and returns
        ``deleted=False`` instead of raising `NotFoundError`. The `CustomerIdStore` entry is
        removed on every call, last, so a call that failed half-way is finished by the next.

        The payment provider's customer is kept unless you pass ``provider_cleanup``: its
        invoices and payments are your books. ``provider_cleanup(deletion)`` runs on every
        call, after OpenMeter's delete, so it must tolerate a customer that is already gone.
        """
        id_or_key = await self._customer_path_key(customer)
        store = self._deps.customer_id_store
        key = id_or_key
        if store is not None and isinstance(customer, str):
            # An id given as a string: read the customer once to learn the key the store uses.
            with contextlib.suppress(NotFoundError, PreconditionFailedError):
                key = (await self.get(id_or_key)).key or id_or_key
        known_id = await store_get(store, key) if store is not None else None
        try:
            await self._http.request("DELETE", encode_path(CUSTOMER, id_or_key))
            deleted = True
        except (NotFoundError, PreconditionFailedError):
            # 404 by key and 412 by id are how OpenMeter answers for a deleted customer.
            deleted = False
        principal = None if isinstance(customer, str) else customer
        result = CustomerDeletion(key, deleted, known_id, principal=principal)
        if provider_cleanup is not None:
            await maybe_await(provider_cleanup(result))
        if store is not None and await store_delete(store, key):
            result = CustomerDeletion(key, deleted, known_id, True, principal)
        return result

    async def access(self, customer: CustomerRef) -> CustomerAccess:
        """Every feature the customer can use right now, with its value."""
        path = encode_path(CUSTOMER + "/access", await self._customer_path_key(customer))
        return parse_model(CustomerAccess, await self._http.request("GET", path))


def customer_body(
    model: type[CustomerCreate],
    name: str,
    key: str | None,
    description: str | None,
    primary_email: str | None,
    currency: str | None,
    billing_address: AddressInput | Mapping[str, str] | None,
    subject_keys: Sequence[str] | None,
    metadata: Mapping[str, str] | None,
) -> CustomerCreate:
    attribution = None if subject_keys is None else {"subject_keys": list(subject_keys)}
    return build_input(
        model,
        name=name,
        key=key,
        description=description,
        primary_email=primary_email,
        currency=currency,
        billing_address=billing_address,
        usage_attribution=attribution,
        metadata=dict(metadata) if metadata is not None else None,
    )
