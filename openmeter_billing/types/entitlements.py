"""Entitlements: a customer's access to a feature (``/api/v2/customers/{c}/entitlements``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeAlias

from pydantic import AwareDatetime, Field, PrivateAttr, TypeAdapter, field_validator

from .._models import RequestModel, ResponseModel
from ._common import Metadata, Period, RecurringPeriod, RecurringPeriodCreateInput
from .grants import EntitlementGrantCreateInput

__all__ = [
    "BalanceHistoryWindow",
    "Entitlement",
    "EntitlementBoolean",
    "EntitlementBooleanCreateInputs",
    "EntitlementCreateInputs",
    "EntitlementMetered",
    "EntitlementMeteredCreateInputs",
    "EntitlementStatic",
    "EntitlementStaticCreateInputs",
    "EntitlementValue",
    "GrantBurnDownHistorySegment",
    "GrantUsageRecord",
    "IssueAfterReset",
    "ResetEntitlementUsageInput",
    "ValueSource",
    "WindowedBalanceHistory",
]

#: Where an `EntitlementValue` came from: ``live`` (this call asked OpenMeter), ``cache`` (fresh in
#: the cache), ``stale`` (past its TTL, refresh under way), ``stale_error`` (refreshing failed, kept
#: within ``stale_if_error``), ``fallback`` (nothing known in time: the feature's fail-open/closed).
ValueSource: TypeAlias = Literal["live", "cache", "stale", "stale_error", "fallback"]

_FEATURE_KEY = r"^[a-z0-9]+(?:_[a-z0-9]+)*$"


class IssueAfterReset(RequestModel):
    """The default grant a metered entitlement issues every usage period."""

    amount: float = Field(ge=0)
    priority: int | None = Field(default=None, ge=1, le=255)


class _EntitlementCreateBase(RequestModel):
    feature_key: str | None = Field(default=None, min_length=1, max_length=64, pattern=_FEATURE_KEY)
    feature_id: str | None = None
    metadata: Metadata | None = None


class EntitlementMeteredCreateInputs(_EntitlementCreateBase):
    """Create a metered entitlement: a usage allowance that resets every ``usage_period``.

    Example::

        EntitlementMeteredCreateInputs(
            feature_key="ai_tokens",
            usage_period=RecurringPeriodCreateInput(interval="MONTH"),
            issue=IssueAfterReset(amount=10_000),
        )
    """

    type: Literal["metered"] = "metered"
    usage_period: RecurringPeriodCreateInput
    is_soft_limit: bool | None = None
    measure_usage_from: Literal["CURRENT_PERIOD_START", "NOW"] | AwareDatetime | None = None
    preserve_overage_at_reset: bool | None = None
    issue: IssueAfterReset | None = None
    grants: list[EntitlementGrantCreateInput] | None = None


class EntitlementBooleanCreateInputs(_EntitlementCreateBase):
    """Create a boolean entitlement: on/off access to a feature."""

    type: Literal["boolean"] = "boolean"
    usage_period: RecurringPeriodCreateInput | None = None


class EntitlementStaticCreateInputs(_EntitlementCreateBase):
    """Create a static entitlement: access plus a JSON config (for example ``{"seats": 10}``).

    ``config`` may be given as a dict; it is sent as the JSON string OpenMeter expects.
    """

    type: Literal["static"] = "static"
    config: str
    usage_period: RecurringPeriodCreateInput | None = None

    @field_validator("config", mode="before")
    @classmethod
    def _encode_config(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        if isinstance(value, str):
            try:
                decoded = json.loads(value)
            except ValueError as exc:
                raise ValueError("config must be a JSON object or a string holding one") from exc
            if not isinstance(decoded, dict):
                raise ValueError('config must encode a JSON object, for example {"seats": 10}')
        return value


EntitlementCreateInputs: TypeAlias = Annotated[
    EntitlementMeteredCreateInputs | EntitlementBooleanCreateInputs | EntitlementStaticCreateInputs,
    Field(discriminator="type"),
]
entitlement_create_adapter: TypeAdapter[EntitlementCreateInputs] = TypeAdapter(
    EntitlementCreateInputs
)


class _EntitlementBase(ResponseModel):
    id: str
    feature_key: str
    feature_id: str
    customer_id: str
    customer_key: str | None = None
    metadata: Metadata | None = None
    annotations: dict[str, Any] | None = None
    active_from: datetime
    active_to: datetime | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    current_usage_period: Period | None = None
    usage_period: RecurringPeriod | None = None


class EntitlementMetered(_EntitlementBase):
    """A metered entitlement as OpenMeter returns it."""

    type: Literal["metered"]
    is_soft_limit: bool = False
    preserve_overage_at_reset: bool = False
    issue_after_reset: float | None = None
    issue_after_reset_priority: int | None = None
    issue: dict[str, Any] | None = None
    last_reset: datetime
    measure_usage_from: datetime


class EntitlementBoolean(_EntitlementBase):
    """A boolean entitlement as OpenMeter returns it."""

    type: Literal["boolean"]


class EntitlementStatic(_EntitlementBase):
    """A static entitlement as OpenMeter returns it; ``config`` is a JSON string."""

    type: Literal["static"]
    config: str

    @property
    def config_value(self) -> Any:
        """``config`` decoded from JSON."""
        return json.loads(self.config)


Entitlement: TypeAlias = Annotated[
    EntitlementMetered | EntitlementBoolean | EntitlementStatic,
    Field(discriminator="type"),
]
entitlement_adapter: TypeAdapter[Entitlement] = TypeAdapter(Entitlement)


class EntitlementValue(ResponseModel):
    """A customer's current access to a feature.

    ``has_access`` is False when the server omits it: real OpenMeter leaves it out when false, and
    answers ``{}`` for a feature the customer has no entitlement to.
    """

    has_access: bool = False
    balance: float | None = None
    usage: float | None = None
    overage: float | None = None
    total_available_grant_amount: float | None = None
    config: str | None = None
    grant_balances: dict[str, float] | None = None

    # Not part of OpenMeter's answer (so not in `to_dict`): set by the entitlement cache.
    _source: ValueSource = PrivateAttr(default="live")
    _fetched_at: float | None = PrivateAttr(default=None)
    _clock: Callable[[], float] | None = PrivateAttr(default=None)
    _optimistic: bool = PrivateAttr(default=False)

    # The properties read the private dict directly: pydantic's __getattr__ route for private
    # attributes costs about 5 µs, more than a whole cached check.

    @property
    def source(self) -> ValueSource:
        """Where this answer came from, for logs and alerts (see `ValueSource`)."""
        source: ValueSource = self.__pydantic_private__["_source"]  # type: ignore[index]
        return source

    @property
    def age(self) -> float | None:
        """Seconds since OpenMeter computed this value (None for a fallback: nothing was read)."""
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        fetched_at, clock = private["_fetched_at"], private["_clock"]
        if fetched_at is None or clock is None:
            return None if private["_source"] == "fallback" else 0.0
        return max(0.0, float(clock()) - float(fetched_at))

    @property
    def optimistic(self) -> bool:
        """Whether usage this process reported was subtracted locally since OpenMeter answered."""
        optimistic: bool = self.__pydantic_private__["_optimistic"]  # type: ignore[index]
        return optimistic


class ResetEntitlementUsageInput(RequestModel):
    """Body of a manual usage reset."""

    effective_at: AwareDatetime | None = None
    retain_anchor: bool | None = None
    preserve_overage: bool | None = None


class BalanceHistoryWindow(ResponseModel):
    """Usage in one window of an entitlement's history."""

    period: Period
    usage: float
    balance_at_start: float


class GrantUsageRecord(ResponseModel):
    """How much of a segment's usage one grant absorbed."""

    grant_id: str
    usage: float


class GrantBurnDownHistorySegment(ResponseModel):
    """A stretch of time in which the set of active grants did not change."""

    period: Period
    usage: float
    overage: float
    balance_at_start: float
    grant_balances_at_start: dict[str, float]
    balance_at_end: float
    grant_balances_at_end: dict[str, float]
    grant_usages: list[GrantUsageRecord]


class WindowedBalanceHistory(ResponseModel):
    """An entitlement's usage per window and its grant burn-down."""

    windowed_history: list[BalanceHistoryWindow]
    burndown_history: list[GrantBurnDownHistorySegment]
