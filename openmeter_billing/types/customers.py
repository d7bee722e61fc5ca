"""Customers: who usage and entitlements belong to (``/api/v1/customers``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from .._models import RequestModel, ResponseModel
from ._common import Metadata
from .entitlements import EntitlementValue

__all__ = [
    "Address",
    "AddressInput",
    "Customer",
    "CustomerAccess",
    "CustomerCreate",
    "CustomerReplaceUpdate",
    "CustomerUsageAttribution",
    "CustomerUsageAttributionInput",
]


class CustomerUsageAttribution(ResponseModel):
    """Which event subjects count as this customer's usage."""

    subject_keys: list[str] = Field(default_factory=list)


class Address(ResponseModel):
    """A billing address."""

    country: str | None = None
    postal_code: str | None = None
    state: str | None = None
    city: str | None = None
    line1: str | None = None
    line2: str | None = None
    phone_number: str | None = None


class CustomerUsageAttributionInput(RequestModel):
    """Usage attribution to send: the subject keys whose events are this customer's."""

    subject_keys: list[str] = Field(default_factory=list)


class AddressInput(RequestModel):
    """A billing address to send (``country`` is an ISO 3166-1 alpha-2 code)."""

    country: str | None = Field(default=None, min_length=2, max_length=2)
    postal_code: str | None = None
    state: str | None = None
    city: str | None = None
    line1: str | None = None
    line2: str | None = None
    phone_number: str | None = None


class CustomerCreate(RequestModel):
    """Body of ``POST /api/v1/customers``. OpenMeter needs ``key`` or ``usage_attribution``."""

    name: str = Field(min_length=1, max_length=256)
    key: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = Field(default=None, max_length=1024)
    primary_email: str | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    billing_address: AddressInput | None = None
    usage_attribution: CustomerUsageAttributionInput | None = None
    metadata: Metadata | None = None


class CustomerReplaceUpdate(CustomerCreate):
    """Body of ``PUT /api/v1/customers/{id}``: a full replace (omitted fields are cleared)."""


class Customer(ResponseModel):
    """An OpenMeter customer."""

    id: str
    name: str
    key: str | None = None
    description: str | None = None
    primary_email: str | None = None
    currency: str | None = None
    billing_address: Address | None = None
    usage_attribution: CustomerUsageAttribution | None = None
    metadata: Metadata | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    current_subscription_id: str | None = None
    annotations: dict[str, Any] | None = None

    @property
    def subject_keys(self) -> list[str]:
        """The event subjects attributed to this customer."""
        return list(self.usage_attribution.subject_keys) if self.usage_attribution else []


class CustomerAccess(ResponseModel):
    """What a customer may use now: one `EntitlementValue` per feature key."""

    entitlements: dict[str, EntitlementValue] = Field(default_factory=dict)

    def has(self, feature_key: str) -> bool:
        """Whether the customer has access to ``feature_key`` (False when it has no entitlement)."""
        value = self.entitlements.get(feature_key)
        return bool(value and value.has_access)
