"""``client.meters``: how events aggregate into usage (``/api/v1/meters``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import pydantic

from .._http import encode_path
from ..types._common import MeterAggregation, WindowSize
from ..types.meters import Meter, MeterCreate, MeterQueryResult, MeterUpdate
from ._base import AsyncResource, build_input, iso, parse_model, parse_with

__all__ = ["AsyncMeters"]

METERS = "/api/v1/meters"
METER = "/api/v1/meters/{}"
_meter_list: pydantic.TypeAdapter[list[Meter]] = pydantic.TypeAdapter(list[Meter])


class AsyncMeters(AsyncResource):
    """Meters: which events count and how (SUM, COUNT, UNIQUE_COUNT, AVG, MIN, MAX, LATEST)."""

    async def create(
        self,
        *,
        slug: str,
        event_type: str,
        aggregation: MeterAggregation,
        value_property: str | None = None,
        group_by: Mapping[str, str] | None = None,
        name: str | None = None,
        description: str | None = None,
        event_from: datetime | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> Meter:
        """Create a meter. ``value_property`` is a JSONPath such as ``$.tokens`` (not for COUNT)."""
        body = build_input(
            MeterCreate,
            slug=slug,
            event_type=event_type,
            aggregation=aggregation,
            value_property=value_property,
            group_by=group_by,
            name=name,
            description=description,
            event_from=event_from,
            metadata=metadata,
        )
        response = await self._http.request("POST", METERS, json_body=body.to_body())
        return parse_model(Meter, response)

    async def get(self, meter: str) -> Meter:
        """A meter by id or slug."""
        return parse_model(Meter, await self._http.request("GET", encode_path(METER, meter)))

    async def list(self) -> list[Meter]:
        """Every meter (OpenMeter returns them in one array)."""
        response = await self._http.request("GET", METERS)
        return parse_with(_meter_list, response, "meter list")

    async def update(
        self,
        meter: str,
        *,
        name: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, str] | None = None,
        group_by: Mapping[str, str] | None = None,
    ) -> Meter:
        """Change a meter's name, description, metadata or group-by (nothing else can change)."""
        body = build_input(
            MeterUpdate, name=name, description=description, metadata=metadata, group_by=group_by
        )
        response = await self._http.request(
            "PUT", encode_path(METER, meter), json_body=body.to_body()
        )
        return parse_model(Meter, response)

    async def delete(self, meter: str) -> None:
        """Delete a meter."""
        await self._http.request("DELETE", encode_path(METER, meter))

    async def query(
        self,
        meter: str,
        *,
        from_: datetime | None = None,
        to: datetime | None = None,
        window_size: WindowSize | None = None,
        window_time_zone: str | None = None,
        subject: Sequence[str] | None = None,
        filter_customer_id: Sequence[str] | None = None,
        filter_group_by: Mapping[str, str] | None = None,
        group_by: Sequence[str] | None = None,
    ) -> MeterQueryResult:
        """Aggregated usage, in windows when ``window_size`` is set (one row otherwise)."""
        params: dict[str, str | list[str] | None] = {
            "from": iso(from_),
            "to": iso(to),
            "windowSize": window_size,
            "windowTimeZone": window_time_zone,
            "subject": list(subject) if subject else None,
            "filterCustomerId": list(filter_customer_id) if filter_customer_id else None,
            "groupBy": list(group_by) if group_by else None,
        }
        for name, value in (filter_group_by or {}).items():
            params[f"filterGroupBy[{name}]"] = value
        response = await self._http.request(
            "GET", encode_path(METER + "/query", meter), params=params
        )
        return parse_model(MeterQueryResult, response)
