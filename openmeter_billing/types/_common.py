"""Enums and small shapes shared by several resources (names as in OpenMeter's spec)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeAlias

from pydantic import AwareDatetime, Field

from .._models import RequestModel, ResponseModel

__all__ = [
    "EntitlementType",
    "ExpirationDuration",
    "ExpirationPeriod",
    "MeasureUsageFromPreset",
    "Metadata",
    "MeterAggregation",
    "Period",
    "RecurringPeriod",
    "RecurringPeriodCreateInput",
    "RecurringPeriodInterval",
    "RecurringPeriodIntervalEnum",
    "SortOrder",
    "WindowSize",
]

Metadata: TypeAlias = dict[str, str]
MeterAggregation: TypeAlias = Literal["SUM", "COUNT", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST"]
WindowSize: TypeAlias = Literal["MINUTE", "HOUR", "DAY", "MONTH"]
ExpirationDuration: TypeAlias = Literal["HOUR", "DAY", "WEEK", "MONTH", "YEAR"]
RecurringPeriodIntervalEnum: TypeAlias = Literal["DAY", "WEEK", "MONTH", "YEAR"]
#: An enum value or an ISO-8601 duration such as ``P1M`` or ``PT6H`` (at least one hour).
RecurringPeriodInterval: TypeAlias = RecurringPeriodIntervalEnum | str
MeasureUsageFromPreset: TypeAlias = Literal["CURRENT_PERIOD_START", "NOW"]
EntitlementType: TypeAlias = Literal["metered", "boolean", "static"]
SortOrder: TypeAlias = Literal["ASC", "DESC"]

_ISO_DURATION = (
    r"^(DAY|WEEK|MONTH|YEAR|P(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?"
    r"(?:\d+(?:\.\d+)?D)?(?:T(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?)$"
)


class Period(ResponseModel):
    """A time range ``[from, to)``."""

    from_: datetime = Field(alias="from")
    to: datetime


class RecurringPeriod(ResponseModel):
    """A recurring period as OpenMeter returns it (``intervalISO`` is always ISO-8601)."""

    interval: str
    anchor: datetime
    interval_iso: str | None = Field(default=None, alias="intervalISO")


class RecurringPeriodCreateInput(RequestModel):
    """A recurring period to create: ``interval`` (DAY/WEEK/MONTH/YEAR or ISO-8601) and ``anchor``.

    The anchor defaults to now on the server. Anchor datetimes must be timezone-aware.
    """

    interval: str = Field(pattern=_ISO_DURATION)
    anchor: AwareDatetime | None = None


class ExpirationPeriod(RequestModel):
    """When a grant expires: ``count`` x ``duration`` after it becomes effective."""

    duration: ExpirationDuration
    count: int = Field(ge=1, le=1000)
