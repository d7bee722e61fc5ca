"""``client.features``: what entitlements grant access to (``/api/v1/features``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .._http import encode_path
from .._pagination import AsyncPage, AsyncPaginator
from ..types.features import Feature, FeatureCreateInputs
from ._base import AsyncResource, build_input, parse_model, parse_page

__all__ = ["AsyncFeatures"]

FEATURES = "/api/v1/features"
FEATURE = "/api/v1/features/{}"


class AsyncFeatures(AsyncResource):
    """Features. Keys are unique among non-archived features; deleting archives for good."""

    async def create(
        self,
        *,
        key: str,
        name: str,
        meter_slug: str | None = None,
        meter_group_by_filters: Mapping[str, str] | None = None,
        advanced_meter_group_by_filters: Mapping[str, Mapping[str, Any]] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Feature:
        """Create a feature; a metered one names its meter (not AVG, MIN or MAX)."""
        body = build_input(
            FeatureCreateInputs,
            key=key,
            name=name,
            meter_slug=meter_slug,
            meter_group_by_filters=meter_group_by_filters,
            advanced_meter_group_by_filters=advanced_meter_group_by_filters,
            metadata=metadata,
        )
        response = await self._http.request("POST", FEATURES, json_body=body.to_body())
        return parse_model(Feature, response)

    async def get(self, feature: str) -> Feature:
        """A feature by id or key."""
        return parse_model(Feature, await self._http.request("GET", encode_path(FEATURE, feature)))

    def list(
        self,
        *,
        page_size: int = 100,
        meter_slug: list[str] | None = None,
        include_archived: bool | None = None,
        order: Literal["ASC", "DESC"] | None = None,
        order_by: Literal["id", "key", "name", "createdAt", "updatedAt"] | None = None,
    ) -> AsyncPaginator[Feature]:
        """Features; ``await`` for a page or ``async for`` over all."""
        params = {
            "pageSize": page_size,
            "meterSlug": meter_slug,
            "includeArchived": include_archived,
            "order": order,
            "orderBy": order_by,
        }

        async def fetch(page: int) -> AsyncPage[Feature]:
            # Sending `page` makes OpenMeter answer with a page object instead of a bare array.
            response = await self._http.request("GET", FEATURES, params={**params, "page": page})
            return parse_page(response, fetch, Feature.model_validate)

        return AsyncPaginator(fetch)

    async def delete(self, feature: str) -> None:
        """Archive a feature (irreversible). Existing entitlements keep working."""
        await self._http.request("DELETE", encode_path(FEATURE, feature))
