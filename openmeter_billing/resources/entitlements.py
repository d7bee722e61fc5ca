"""``client.entitlements``: access checks, entitlement lifecycle and grants (v2, per customer)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from .._http import encode_path
from .._pagination import AsyncPage, AsyncPaginator
from ..identity import CustomerRef
from ..types._common import WindowSize
from ..types.customers import CustomerAccess
from ..types.entitlements import (
    Entitlement,
    EntitlementCreateInputs,
    EntitlementValue,
    ResetEntitlementUsageInput,
    WindowedBalanceHistory,
    entitlement_adapter,
    entitlement_create_adapter,
)
from ..types.grants import EntitlementGrant, EntitlementGrantCreateInput
from ._base import (
    AsyncResource,
    build_input,
    iso,
    parse_model,
    parse_page,
    parse_with,
    validate_with,
)

if TYPE_CHECKING:
    from ..cache import EntitlementCache

__all__ = ["AsyncEntitlements", "AsyncGrants"]

ENTITLEMENTS = "/api/v2/customers/{}/entitlements"
ENTITLEMENT = "/api/v2/customers/{}/entitlements/{}"
GRANTS = "/api/v2/customers/{}/entitlements/{}/grants"
VOID_GRANT = "/api/v1/grants/{}"


CUSTOMER_ACCESS = "/api/v1/customers/{}/access"


class AsyncEntitlements(AsyncResource):
    """Customer entitlements. ``entitlement`` arguments take an entitlement id or a feature key."""

    @cached_property
    def grants(self) -> AsyncGrants:
        """Grants on metered entitlements."""
        return AsyncGrants(self._deps)

    async def value(
        self,
        customer: CustomerRef,
        feature_key: str,
        *,
        time: datetime | None = None,
        fresh: bool = False,
    ) -> EntitlementValue:
        """The customer's access to a feature now (or at ``time``): the hot path of a service.

        A feature the customer has no entitlement to gives ``has_access=False``, not an error.
        With a cache on the client the answer usually comes from memory (``source`` says where
        from); ``fresh=True`` asks OpenMeter now, for money-critical gates, and updates the cache.
        ``time`` always asks OpenMeter.
        """
        cache = self._cache
        if cache is None or time is not None:
            key = await self._customer_path_key(customer)
            return await self._fetch_value(key, feature_key, time)
        if fresh:
            key = await self._customer_path_key(customer)
            return await cache.remember(key, feature_key, await self._fetch_value(key, feature_key))
        if type(customer) is str and customer:  # the hot path: no resolver, no extra await
            return await cache.get(customer, feature_key)
        return await cache.get(await self._customer_path_key(customer), feature_key)

    async def has(self, customer: CustomerRef, feature_key: str, *, fresh: bool = False) -> bool:
        """Whether the customer may use the feature right now (cached like `value`)."""
        return (await self.value(customer, feature_key, fresh=fresh)).has_access

    def cached_value(self, customer: CustomerRef, feature_key: str) -> EntitlementValue | None:
        """The fresh cached value, or None: never waits (the sync client's fast path uses it)."""
        cache = self._cache
        if cache is None or type(customer) is not str:
            return None
        return cache.peek(customer, feature_key)

    async def prefetch(self, customer: CustomerRef) -> dict[str, EntitlementValue]:
        """Read every feature of a customer in ONE request (the access endpoint) into the cache.

        Use it when a customer signs in: their later checks answer from memory. Without a cache
        on the client it just returns the values.
        """
        key = await self._customer_path_key(customer)
        values = await self.access(key)
        cache = self._cache
        if cache is None:
            return values
        return {feature: await cache.remember(key, feature, v) for feature, v in values.items()}

    async def invalidate(
        self, customer: CustomerRef | None = None, feature_key: str | None = None
    ) -> int:
        """Drop cached values of a customer (one feature or all), or of everyone.

        The client's own writes do this for you; call it when something else changed an
        entitlement (an OpenMeter notification webhook, an admin tool). Returns how many values
        were dropped (0 without a cache).
        """
        cache = self._cache
        if cache is None:
            return 0
        key = None if customer is None else await self._customer_path_key(customer)
        return await cache.invalidate(key, feature_key)

    async def _fetch_value(
        self, customer_key: str, feature_key: str, time: datetime | None = None
    ) -> EntitlementValue:
        """The uncached read (the cache calls it for misses and refreshes)."""
        path = encode_path(ENTITLEMENT + "/value", customer_key, feature_key)
        response = await self._http.request("GET", path, params={"time": iso(time)})
        return parse_model(EntitlementValue, response)

    async def _changed(self, customer_key: str, entitlement: Entitlement | None = None) -> None:
        """A write through this client changed the customer's entitlements: read them again."""
        cache = self._cache
        if cache is None:
            return
        if entitlement is not None:
            cache.learn_alias(entitlement.customer_id, entitlement.customer_key)
        await cache.invalidate(customer_key)

    async def access(self, customer: CustomerRef) -> dict[str, EntitlementValue]:
        """Every feature the customer can use now, keyed by feature key."""
        path = encode_path(CUSTOMER_ACCESS, await self._customer_path_key(customer))
        return parse_model(CustomerAccess, await self._http.request("GET", path)).entitlements

    def list(
        self,
        customer: CustomerRef,
        *,
        page_size: int = 100,
        include_deleted: bool | None = None,
        order: Literal["ASC", "DESC"] | None = None,
        order_by: Literal["createdAt", "updatedAt"] | None = None,
    ) -> AsyncPaginator[Entitlement]:
        """The customer's entitlements; ``await`` for a page or ``async for`` over all."""
        params = {
            "pageSize": page_size,
            "includeDeleted": include_deleted,
            "order": order,
            "orderBy": order_by,
        }

        async def fetch(page: int) -> AsyncPage[Entitlement]:
            path = encode_path(ENTITLEMENTS, await self._customer_path_key(customer))
            response = await self._http.request("GET", path, params={**params, "page": page})
            return parse_page(response, fetch, entitlement_adapter.validate_python)

        return AsyncPaginator(fetch)

    async def get(self, customer: CustomerRef, entitlement: str) -> Entitlement:
        """One entitlement, by id or by the key of its feature (the one active now)."""
        path = encode_path(ENTITLEMENT, await self._customer_path_key(customer), entitlement)
        response = await self._http.request("GET", path)
        return parse_with(entitlement_adapter, response, "entitlement")

    async def create(
        self, customer: CustomerRef, entitlement: EntitlementCreateInputs | Mapping[str, Any]
    ) -> Entitlement:
        """Give the customer an entitlement (metered, boolean or static; see `types`).

        One entitlement per customer and feature may be active: a second answers 409
        (`ConflictError`, with ``conflicting_entity_id``). Use `override` to change terms.
        """
        body = validate_with(entitlement_create_adapter, entitlement, "entitlement").to_body()
        key = await self._customer_path_key(customer)
        response = await self._http.request("POST", encode_path(ENTITLEMENTS, key), json_body=body)
        created = parse_with(entitlement_adapter, response, "entitlement")
        await self._changed(key, created)
        return created

    async def override(
        self,
        customer: CustomerRef,
        entitlement: str,
        replacement: EntitlementCreateInputs | Mapping[str, Any],
    ) -> Entitlement:
        """Replace an entitlement's terms: delete the old one and create the new one at once."""
        body = validate_with(entitlement_create_adapter, replacement, "entitlement").to_body()
        key = await self._customer_path_key(customer)
        path = encode_path(ENTITLEMENT + "/override", key, entitlement)
        response = await self._http.request("PUT", path, json_body=body)
        replaced = parse_with(entitlement_adapter, response, "entitlement")
        await self._changed(key, replaced)
        return replaced

    async def delete(self, customer: CustomerRef, entitlement: str) -> None:
        """Delete an entitlement from now on (history before now is kept)."""
        key = await self._customer_path_key(customer)
        await self._http.request("DELETE", encode_path(ENTITLEMENT, key, entitlement))
        await self._changed(key)

    async def history(
        self,
        customer: CustomerRef,
        entitlement: str,
        *,
        window_size: WindowSize,
        from_: datetime | None = None,
        to: datetime | None = None,
        window_time_zone: str | None = None,
    ) -> WindowedBalanceHistory:
        """Usage per window and the grant burn-down of a metered entitlement."""
        path = encode_path(
            ENTITLEMENT + "/history", await self._customer_path_key(customer), entitlement
        )
        params = {
            "windowSize": window_size,
            "from": iso(from_),
            "to": iso(to),
            "windowTimeZone": window_time_zone,
        }
        response = await self._http.request("GET", path, params=params)
        return parse_model(WindowedBalanceHistory, response)

    async def reset(
        self,
        customer: CustomerRef,
        entitlement: str,
        *,
        effective_at: datetime | None = None,
        retain_anchor: bool | None = None,
        preserve_overage: bool | None = None,
    ) -> None:
        """Start a new usage period now (or at ``effective_at``); grants roll over by their rules.

        Without ``retain_anchor=True`` the usage period's anchor moves to the reset time.
        """
        body = build_input(
            ResetEntitlementUsageInput,
            effective_at=effective_at,
            retain_anchor=retain_anchor,
            preserve_overage=preserve_overage,
        ).to_body()
        key = await self._customer_path_key(customer)
        path = encode_path(ENTITLEMENT + "/reset", key, entitlement)
        await self._http.request("POST", path, json_body=body)
        await _changed(self._cache, key)


class AsyncGrants(AsyncResource):
    """Grants: amounts of a metered feature, burnt down by usage in priority order."""

    def list(
        self,
        customer: CustomerRef,
        entitlement: str,
        *,
        page_size: int = 100,
        include_deleted: bool | None = None,
        order: Literal["ASC", "DESC"] | None = None,
        order_by: Literal["id", "createdAt", "updatedAt"] | None = None,
    ) -> AsyncPaginator[EntitlementGrant]:
        """Grants of an entitlement; ``async for`` walks every page (nothing is missed)."""
        params = {
            "pageSize": page_size,
            "includeDeleted": include_deleted,
            "order": order,
            "orderBy": order_by,
        }

        async def fetch(page: int) -> AsyncPage[EntitlementGrant]:
            path = encode_path(GRANTS, await self._customer_path_key(customer), entitlement)
            response = await self._http.request("GET", path, params={**params, "page": page})
            return parse_page(response, fetch, EntitlementGrant.model_validate)

        return AsyncPaginator(fetch)

    async def create(
        self,
        customer: CustomerRef,
        entitlement: str,
        grant: EntitlementGrantCreateInput | Mapping[str, Any],
    ) -> EntitlementGrant:
        """Add a grant to a metered entitlement.

        OpenMeter's defaults: an omitted ``priority`` is 0 (burns first) and an omitted
        ``max_rollover_amount`` is the grant's amount. ``effective_at`` may not be before the
        current usage period.
        """
        body = build_input(EntitlementGrantCreateInput, grant).to_body()
        key = await self._customer_path_key(customer)
        path = encode_path(GRANTS, key, entitlement)
        response = await self._http.request("POST", path, json_body=body)
        created = parse_model(EntitlementGrant, response)
        await _changed(self._cache, key)
        return created

    async def void(
        self, grant_id: str, *, at: datetime | None = None, customer: CustomerRef | None = None
    ) -> None:
        """Void a grant from now (or ``at``): its remaining balance disappears, past usage stays.

        ``customer`` (the grant's owner) only scopes the cache: without it, every cached value
        is dropped, since a grant id does not say whose balance changed.
        """
        path = encode_path(VOID_GRANT, grant_id)
        await self._http.request("DELETE", path, params={"at": iso(at)})
        cache = self._cache
        if cache is not None:
            key = None if customer is None else await self._customer_path_key(customer)
            await cache.invalidate(key)


async def _changed(
    cache: EntitlementCache | None, customer_key: str, entitlement: Entitlement | None = None
) -> None:
    """A write through this client changed the customer's entitlements: read them again."""
    if cache is None:
        return
    if entitlement is not None:
        cache.learn_alias(entitlement.customer_id, entitlement.customer_key)
    await cache.invalidate(customer_key)
