"""Usage events: CloudEvents 1.0 as OpenMeter ingests them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, ConfigDict, Field

from .._models import ResponseModel

__all__ = ["CloudEvent", "IngestedEvent"]


class CloudEvent(ResponseModel):
    """One usage event. OpenMeter deduplicates on (``source``, ``id``), so keep the id on retry.

    Extension attributes are allowed and sent as-is.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=None)

    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    specversion: str = "1.0"
    type: str = Field(min_length=1)
    subject: str = Field(min_length=1)
    time: AwareDatetime | None = None
    data: dict[str, Any] | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None


class IngestedEvent(ResponseModel):
    """An event as stored by OpenMeter, with the customer it was attributed to."""

    event: CloudEvent
    customer_id: str | None = None
    validation_error: str | None = None
    ingested_at: datetime
    stored_at: datetime
