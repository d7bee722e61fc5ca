"""``client.usage``: the check / consume / refund helpers other billing SDKs give.

Workflows over the resources: they read an entitlement and its value, send usage events, and add
compensating grants. Nothing here builds a URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import ConfigurationError, InsufficientBalanceError, InvalidInputError
from ..identity import CustomerRef
from ..types.entitlements import Entitlement, EntitlementMetered, EntitlementValue
from ..types.events import CloudEvent
from ..types.grants import EntitlementGrant

if TYPE_CHECKING:
    from .._client import OpenMeterBilling

__all__ = ["AsyncUsage", "Balance", "Consumption", "MeterTarget"]

#: Metadata keys of the compensating grants `refund` creates.
REFUND_KIND = "openmeter_billing.refund"
IDEMPOTENCY_KEY = "openmeter_billing.idempotency_key"


@dataclass(frozen=True)
class Balance:
    """A customer's standing on one feature.

    Attributes:
        customer_id: OpenMeter's id of the customer.
        feature_key: The feature.
        has_access: Whether the customer may use it now.
        balance: What is left in the current period (0 for boolean/static features).
        usage: Used in the current period.
        overage: Used beyond the balance in the current period.
        next_reset: When the current usage period ends (None without a usage period).
        soft_limit: Whether access continues past a zero balance.
    """

    customer_id: str
    feature_key: str
    has_access: bool
    balance: float
    usage: float
    overage: float
    next_reset: datetime | None
    soft_limit: bool


@dataclass(frozen=True)
class Consumption:
    """What `AsyncUsage.consume` did: the events it sent and the balance it expects now."""

    events: list[CloudEvent]
    amount: float
    balance_before: float
    estimated_balance: float


@dataclass(frozen=True)
class MeterTarget:
    """How usage of a feature is reported: its meter's event type and value path."""

    event_type: str
    aggregation: str
    value_path: tuple[str, ...]

    def data_for(self, amount: float) -> dict[str, Any]:
        """The event ``data`` that makes the meter count ``amount``."""
        if not self.value_path:
            return {}
        data: dict[str, Any] = {self.value_path[-1]: amount}
        for part in reversed(self.value_path[:-1]):
            data = {part: data}
        return data


class AsyncUsage:
    """Usage helpers: ``has``, ``balance``, ``consume`` and ``refund``."""

    def __init__(self, client: OpenMeterBilling) -> None:
        self._client = client
        self._targets: dict[str, MeterTarget] = {}

    async def has(self, customer: CustomerRef, feature_key: str) -> bool:
        """Whether the customer may use the feature right now."""
        return await self._client.entitlements.has(customer, feature_key)

    async def balance(self, customer: CustomerRef, feature_key: str) -> Balance:
        """The customer's balance, usage, overage and next reset for a feature."""
        entitlement, value = await self._read(customer, feature_key)
        return _balance(entitlement, value)

    async def consume(
        self,
        customer: CustomerRef,
        feature_key: str,
        amount: float = 1,
        *,
        event_type: str | None = None,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Consumption:
        """Check access, send the usage event and return the expected new balance.

        Raises `InsufficientBalanceError` when the balance cannot cover ``amount`` and the
        entitlement is not a soft limit. The event type and payload come from the feature's meter
        (``$.tokens`` becomes ``{"tokens": amount}``) unless you pass them. With
        ``idempotency_key`` the event id is derived from it, so a retried call counts once.
        """
        if amount <= 0:
            raise InvalidInputError(f"amount must be positive, got {amount}", field="amount")
        entitlement, value = await self._read(customer, feature_key)
        current = _balance(entitlement, value)
        if not current.has_access or (not current.soft_limit and current.balance < amount):
            raise InsufficientBalanceError(
                f"{feature_key}: balance {current.balance:g} cannot cover {amount:g}",
                feature_key=feature_key,
                balance=current.balance,
                requested=amount,
            )
        events = await self._send_usage(
            customer, feature_key, amount, event_type, data, idempotency_key
        )
        cache = self._client.cache
        if cache is not None:  # read your writes: the cached balance drops until OpenMeter's does
            cache.record_usage(await self._client._customer_key(customer), feature_key, amount)
        return Consumption(
            events=events,
            amount=amount,
            balance_before=current.balance,
            estimated_balance=max(current.balance - amount, 0.0),
        )

    async def refund(
        self,
        customer: CustomerRef,
        feature_key: str,
        amount: float,
        *,
        reason: str,
        idempotency_key: str,
    ) -> EntitlementGrant:
        """Give usage back as a compensating grant; a replay returns the existing grant.

        The grant carries ``reason`` and ``idempotency_key`` in its metadata; every page of the
        entitlement's grants is searched before creating one.
        """
        if amount <= 0:
            raise InvalidInputError(f"amount must be positive, got {amount}", field="amount")
        if not idempotency_key:
            raise InvalidInputError("idempotency_key is required", field="idempotency_key")
        grants = self._client.entitlements.grants
        async for grant in grants.list(customer, feature_key):
            if (grant.metadata or {}).get(IDEMPOTENCY_KEY) == idempotency_key:
                return grant
        return await grants.create(
            customer,
            feature_key,
            {
                "amount": amount,
                "effectiveAt": self._client._http.server_clock.now(),
                "priority": 1,
                "metadata": {
                    "openmeter_billing.kind": REFUND_KIND,
                    "openmeter_billing.reason": reason,
                    IDEMPOTENCY_KEY: idempotency_key,
                },
            },
        )

    async def _send_usage(
        self,
        customer: CustomerRef,
        feature_key: str,
        amount: float,
        event_type: str | None,
        data: Mapping[str, Any] | None,
        idempotency_key: str | None,
    ) -> list[CloudEvent]:
        """One event carrying ``amount`` (or, for a COUNT meter, one event per unit)."""
        count = 1
        if event_type is None or data is None:
            target = await self._target(feature_key)
            event_type = event_type or target.event_type
            if data is None and target.aggregation == "COUNT":
                count = _unit_count(amount)
            elif data is None and target.aggregation not in {"SUM", "COUNT"}:
                raise ConfigurationError(
                    f"feature {feature_key!r} is metered with {target.aggregation}, which usage "
                    "amounts cannot be added to; pass event_type= and data= explicitly"
                )
            data = data if data is not None else target.data_for(amount)
        base = f"openmeter-billing:consume:{idempotency_key}" if idempotency_key else None
        events = [
            {
                "type": event_type,
                "data": dict(data),
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{base}:{index}")) if base else None,
            }
            for index in range(count)
        ]
        cleaned = [{k: v for k, v in event.items() if v is not None} for event in events]
        return await self._client.events.ingest_batch(cleaned, customer=customer)

    async def _read(
        self, customer: CustomerRef, feature_key: str
    ) -> tuple[Entitlement, EntitlementValue]:
        cache = self._client.cache
        if cache is not None:
            return await self._read_cached(customer, feature_key)
        results: dict[str, Any] = {}

        async def fetch_entitlement() -> None:
            results["entitlement"] = await self._client.entitlements.get(customer, feature_key)

        async def fetch_value() -> None:
            results["value"] = await self._client.entitlements.value(customer, feature_key)

        async with anyio.create_task_group() as group:
            group.start_soon(fetch_entitlement)
            group.start_soon(fetch_value)
        return results["entitlement"], results["value"]

    async def _read_cached(
        self, customer: CustomerRef, feature_key: str
    ) -> tuple[Entitlement, EntitlementValue]:
        """The entitlement's terms and value from the client's cache (each read on a miss)."""
        cache = self._client.cache
        assert cache is not None
        key = await self._client._customer_key(customer)
        entitlement = cache.definition(key, feature_key)
        if entitlement is None:
            entitlement = await self._client.entitlements.get(key, feature_key)
            cache.store_definition(key, feature_key, entitlement)
        return entitlement, await self._client.entitlements.value(key, feature_key)

    async def _target(self, feature_key: str) -> MeterTarget:
        cached = self._targets.get(feature_key)
        if cached is not None:
            return cached
        feature = await self._client.features.get(feature_key)
        if not feature.meter_slug:
            raise ConfigurationError(
                f"feature {feature_key!r} has no meter, so usage cannot be reported for it; "
                "pass event_type= and data= explicitly"
            )
        meter = await self._client.meters.get(feature.meter_slug)
        target = MeterTarget(
            event_type=meter.event_type,
            aggregation=meter.aggregation,
            value_path=_json_path(meter.value_property),
        )
        self._targets[feature_key] = target
        return target


def _unit_count(amount: float) -> int:
    if amount != int(amount) or amount > 1000:
        raise InvalidInputError(
            f"a COUNT meter counts events: amount must be a whole number up to 1000, not {amount}",
            field="amount",
            hint="or pass event_type= and data= to send your own event",
        )
    return int(amount)


def _json_path(value_property: str | None) -> tuple[str, ...]:
    """``$.usage.tokens`` -> ``("usage", "tokens")``; only plain dotted paths can be written."""
    if not value_property:
        return ()
    if not value_property.startswith("$."):
        raise ConfigurationError(
            f"cannot build event data for value property {value_property!r}; pass data= explicitly"
        )
    parts = tuple(value_property[2:].split("."))
    if any(not part or not part.replace("_", "").replace("-", "").isalnum() for part in parts):
        raise ConfigurationError(
            f"cannot build event data for value property {value_property!r}; pass data= explicitly"
        )
    return parts


def _balance(entitlement: Entitlement, value: EntitlementValue) -> Balance:
    period = entitlement.current_usage_period
    return Balance(
        customer_id=entitlement.customer_id,
        feature_key=entitlement.feature_key,
        has_access=value.has_access,
        balance=value.balance or 0.0,
        usage=value.usage or 0.0,
        overage=value.overage or 0.0,
        next_reset=period.to if period else None,
        soft_limit=isinstance(entitlement, EntitlementMetered) and entitlement.is_soft_limit,
    )
