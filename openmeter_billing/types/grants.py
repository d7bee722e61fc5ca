"""Grants: amounts of a metered feature a customer may use (v2 customer entitlement grants)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from .._models import RequestModel, ResponseModel
from ._common import ExpirationPeriod, Metadata, RecurringPeriod, RecurringPeriodCreateInput

__all__ = ["EntitlementGrant", "EntitlementGrantCreateInput"]


class EntitlementGrantCreateInput(RequestModel):
    """Body of a v2 grant create.

    OpenMeter's defaults differ from the spec's text: an omitted ``priority`` is 0 (burns first)
    and an omitted ``max_rollover_amount`` is ``amount`` (everything rolls over at reset).
    """

    amount: float = Field(gt=0)
    effective_at: AwareDatetime
    priority: int | None = Field(default=None, ge=1, le=255)
    expiration: ExpirationPeriod | None = None
    min_rollover_amount: float | None = Field(default=None, ge=0)
    max_rollover_amount: float | None = Field(default=None, ge=0)
    recurrence: RecurringPeriodCreateInput | None = None
    metadata: dict[str, str] | None = None
    annotations: dict[str, Any] | None = None


class EntitlementGrant(ResponseModel):
    """A grant as OpenMeter returns it."""

    id: str
    entitlement_id: str
    amount: float
    priority: int | None = None
    effective_at: datetime
    expires_at: datetime | None = None
    expiration: dict[str, Any] | None = None
    min_rollover_amount: float | None = None
    max_rollover_amount: float | None = None
    recurrence: RecurringPeriod | None = None
    next_recurrence: datetime | None = None
    metadata: Metadata | None = None
    annotations: dict[str, Any] | None = None
    voided_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
