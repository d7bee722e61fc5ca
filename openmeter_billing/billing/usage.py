"""``client.usage``: the check / consume / refund helpers other billing SDKs give.

Workflows over the resources: they read an entitlement and its value, send usage events, and add
compensating grants. Nothing here builds a URL.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from .._exceptions import ConfigurationError, InsufficientBalanceError, InvalidInputError
from .._validate import check_amount
from ..identity import CustomerRef
from ..types.entitlements import Entitlement, EntitlementMetered, EntitlementValue
from ..types.events import CloudEvent
from ..types.grants import EntitlementGrant
from ._consume_guard import ConsumeGuard

if TYPE_CHECKING:
    from .._http import ServerClock
    from ..cache import EntitlementCache
    from ..identity import Identity
    from ..resources.entitlements import AsyncEntitlements
    from ..resources.events import AsyncEvents
    from ..resources.features import AsyncFeatures
    from ..resources.meters import AsyncMeters

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

    def __init__(
        self,
        *,
        entitlements: AsyncEntitlements,
        features: AsyncFeatures,
        meters: AsyncMeters,
        events: AsyncEvents,
        identity: Identity,
        server_clock: ServerClock,
        cache: EntitlementCache | None = None,
    ) -> None:
        self._entitlements = entitlements
        self._features = features
        self._meters = meters
        self._events = events
        self._identity = identity
        self._server_clock = server_clock
        self._cache = cache
        self._targets: dict[str, MeterTarget] = {}
        self._guard = ConsumeGuard()

    def cached_value(self, customer: CustomerRef, feature_key: str) -> EntitlementValue | None:
        """A fresh cached value without any I/O (None: no cache, or not fresh)."""
        return self._entitlements.cached_value(customer, feature_key)

    async def has(self, customer: CustomerRef, feature_key: str) -> bool:
        """Whether the customer may use the feature right now."""
        return await self._entitlements.has(customer, feature_key)

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

        Within one process, consumes of one customer and feature run one at a time, and usage
        sent but not yet counted by OpenMeter is subtracted from the balance, so two concurrent
        calls cannot spend the same balance. Across processes the check is advisory: OpenMeter
        does not refuse usage, so two servers can both pass it. For a strict limit, send all
        consumption of a customer through one worker, or hold a lock shared by your servers
        around this call (docs/topups.md shows one with PostgreSQL).
        """
        amount = check_amount(amount, "amount")
        key = (await self._identity.customer_key(customer), feature_key)
        async with self._guard.hold(key):
            entitlement, value = await self._read(customer, feature_key)
            current = _balance(entitlement, value)
            period = entitlement.current_usage_period
            start = period.from_ if period else None
            # Usage this process sent that OpenMeter has not counted yet is spent all the same.
            available = current.balance - self._guard.unreflected(key, start, current.usage)
            if not current.has_access or (not current.soft_limit and available < amount):
                raise InsufficientBalanceError(
                    f"{feature_key}: balance {available:g} cannot cover {amount:g}",
                    feature_key=feature_key,
                    balance=available,
                    requested=amount,
                )
            events = await self._send_usage(
                customer, feature_key, amount, event_type, data, idempotency_key
            )
            share = amount / len(events)
            self._guard.record(key, start, current.usage, ((e.id, share) for e in events))
            cache = self._cache
            if cache is not None:  # read your writes: the cached balance drops until OpenMeter's
                cache.record_usage(key[0], feature_key, amount)
        return Consumption(
            events=events,
            amount=amount,
            balance_before=available,
            estimated_balance=max(available - amount, 0.0),
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
        amount = check_amount(amount, "amount")
        if not idempotency_key:
            raise InvalidInputError("idempotency_key is required", field="idempotency_key")
        grants = self._entitlements.grants
        async for grant in grants.list(customer, feature_key):
            if (grant.metadata or {}).get(IDEMPOTENCY_KEY) == idempotency_key:
                return grant
        return await grants.create(
            customer,
            feature_key,
            {
                "amount": amount,
                "effectiveAt": self._server_clock.now(),
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
        return await self._events.ingest_batch(cleaned, customer=customer)

    async def _read(
        self, customer: CustomerRef, feature_key: str
    ) -> tuple[Entitlement, EntitlementValue]:
        cache = self._cache
        if cache is not None:
            return await self._read_cached(customer, feature_key)
        results: dict[str, Any] = {}
        errors: list[Exception] = []

        # Errors are collected, not left to the task group: callers catch `NotFoundError`, not
        # an ExceptionGroup around it.
        async def fetch(name: str, read: Callable[[], Awaitable[Any]]) -> None:
            try:
                results[name] = await read()
            except Exception as exc:
                errors.append(exc)

        entitlements = self._entitlements
        async with anyio.create_task_group() as group:
            group.start_soon(fetch, "entitlement", lambda: entitlements.get(customer, feature_key))
            group.start_soon(fetch, "value", lambda: entitlements.value(customer, feature_key))
        if errors:
            raise errors[0]
        return results["entitlement"], results["value"]

    async def _read_cached(
        self, customer: CustomerRef, feature_key: str
    ) -> tuple[Entitlement, EntitlementValue]:
        """The entitlement's terms and value from the client's cache (each read on a miss)."""
        cache = self._cache
        assert cache is not None
        key = await self._identity.customer_key(customer)
        entitlement = cache.definition(key, feature_key)
        if entitlement is None:
            entitlement = await self._entitlements.get(key, feature_key)
            cache.store_definition(key, feature_key, entitlement)
        return entitlement, await self._entitlements.value(key, feature_key)

    async def _target(self, feature_key: str) -> MeterTarget:
        cached = self._targets.get(feature_key)
        if cached is not None:
            return cached
        feature = await self._features.get(feature_key)
        if not feature.meter_slug:
            raise ConfigurationError(
                f"feature {feature_key!r} has no meter, so usage cannot be reported for it; "
                "pass event_type= and data= explicitly"
            )
        meter = await self._meters.get(feature.meter_slug)
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
