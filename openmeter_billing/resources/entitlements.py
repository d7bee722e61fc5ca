"""``client.entitlements``: access checks, entitlement lifecycle and grants (v2, per customer)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cached_property
from typing import Any, Literal

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
        self, customer: CustomerRef, feature_key: str, *, time: datetime | None = None
    ) -> EntitlementValue:
        """The customer's access to a feature now (or at ``time``): the hot path of a service.

        A feature the customer has no entitlement to gives ``has_access=False``, not an error.
        """
        path = encode_path(
            ENTITLEMENT + "/value", await self._customer_path_key(customer), feature_key
        )
        response = await self._http.request("GET", path, params={"time": iso(time)})
        return parse_model(EntitlementValue, response)

    async def has(self, customer: CustomerRef, feature_key: str) -> bool:
        """Whether the customer may use the feature right now."""
        return (await self.value(customer, feature_key)).has_access

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
        path = encode_path(ENTITLEMENTS, await self._customer_path_key(customer))
        response = await self._http.request("POST", path, json_body=body)
        return parse_with(entitlement_adapter, response, "entitlement")

    async def override(
        self,
        customer: CustomerRef,
        entitlement: str,
        replacement: EntitlementCreateInputs | Mapping[str, Any],
    ) -> Entitlement:
        """Replace an entitlement's terms: delete the old one and create the new one at once."""
        body = validate_with(entitlement_create_adapter, replacement, "entitlement").to_body()
        path = encode_path(
            ENTITLEMENT + "/override", await self._customer_path_key(customer), entitlement
        )
        response = await self._http.request("PUT", path, json_body=body)
        return parse_with(entitlement_adapter, response, "entitlement")

    async def delete(self, customer: CustomerRef, entitlement: str) -> None:
        """Delete an entitlement from now on (history before now is kept)."""
        path = encode_path(ENTITLEMENT, await self._customer_path_key(customer), entitlement)
        await self._http.request("DELETE", path)

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
        path = encode_path(
            ENTITLEMENT + "/reset", await self._customer_path_key(customer), entitlement
        )
        await self._http.request("POST", path, json_body=body)


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
        path = encode_path(GRANTS, await self._customer_path_key(customer), entitlement)
        response = await self._http.request("POST", path, json_body=body)
        return parse_model(EntitlementGrant, response)

    async def void(self, grant_id: str, *, at: datetime | None = None) -> None:
        """Void a grant from now (or ``at``): its remaining balance disappears, past usage stays."""
        path = encode_path(VOID_GRANT, grant_id)
        await self._http.request("DELETE", path, params={"at": iso(at)})
