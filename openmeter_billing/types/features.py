"""Features: what entitlements grant access to (``/api/v1/features``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from .._models import RequestModel, ResponseModel
from ._common import Metadata

__all__ = ["Feature", "FeatureCreateInputs"]

_KEY = r"^[a-z0-9]+(?:_[a-z0-9]+)*$"


class FeatureCreateInputs(RequestModel):
    """Body of ``POST /api/v1/features``. A metered feature names its meter by slug."""

    key: str = Field(min_length=1, max_length=64, pattern=_KEY)
    name: str = Field(min_length=1)
    meter_slug: str | None = Field(default=None, min_length=1, max_length=64, pattern=_KEY)
    meter_group_by_filters: dict[str, str] | None = None
    advanced_meter_group_by_filters: dict[str, dict[str, Any]] | None = None
    metadata: Metadata | None = None


class Feature(ResponseModel):
    """A feature as OpenMeter returns it. Deleting a feature archives it (``archived_at``)."""

    id: str
    key: str
    name: str
    meter_slug: str | None = None
    meter_group_by_filters: dict[str, str] | None = None
    advanced_meter_group_by_filters: dict[str, Any] | None = None
    metadata: Metadata | None = None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None = None
    deleted_at: datetime | None = None
