"""Meters: how events aggregate into usage (``/api/v1/meters``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field, model_validator
from typing_extensions import Self

from .._models import RequestModel, ResponseModel
from ._common import Metadata, MeterAggregation, WindowSize

__all__ = ["Meter", "MeterCreate", "MeterQueryResult", "MeterQueryRow", "MeterUpdate"]

_SLUG = r"^[a-z0-9]+(?:_[a-z0-9]+)*$"


class MeterCreate(RequestModel):
    """Body of ``POST /api/v1/meters``.

    ``value_property`` is a JSONPath into the event's ``data`` (for example ``$.tokens``); COUNT
    takes none, every other aggregation needs one.
    """

    slug: str = Field(min_length=1, max_length=64, pattern=_SLUG)
    aggregation: MeterAggregation
    event_type: str = Field(min_length=1)
    name: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=1024)
    value_property: str | None = Field(default=None, min_length=1)
    group_by: dict[str, str] | None = None
    event_from: AwareDatetime | None = None
    metadata: Metadata | None = None

    @model_validator(mode="after")
    def _value_property_matches_aggregation(self) -> Self:
        if self.aggregation == "COUNT" and self.value_property is not None:
            raise ValueError("value_property must be omitted for a COUNT meter")
        if self.aggregation != "COUNT" and self.value_property is None:
            raise ValueError(
                f"value_property is required for a {self.aggregation} meter, for example '$.tokens'"
            )
        return self


class MeterUpdate(RequestModel):
    """Body of ``PUT /api/v1/meters/{id}``: only these fields can change."""

    name: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=1024)
    metadata: Metadata | None = None
    group_by: dict[str, str] | None = None


class Meter(ResponseModel):
    """A meter as OpenMeter returns it."""

    id: str
    slug: str
    aggregation: str
    event_type: str
    name: str | None = None
    description: str | None = None
    value_property: str | None = None
    group_by: dict[str, str] | None = None
    event_from: datetime | None = None
    metadata: Metadata | None = None
    annotations: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class MeterQueryRow(ResponseModel):
    """One window (and group) of a meter query."""

    value: float
    window_start: datetime
    window_end: datetime
    subject: str | None = None
    customer_id: str | None = None
    group_by: dict[str, str | None] = Field(default_factory=dict)


class MeterQueryResult(ResponseModel):
    """The rows of a meter query."""

    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None
    window_size: WindowSize | None = None
    data: list[MeterQueryRow]
