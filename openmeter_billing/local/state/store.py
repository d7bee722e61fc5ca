"""The state of one Local OpenMeter: plain records and the indexes that answer lookups.

Records are mutable dataclasses owned by :class:`State`; only route handlers change them, always
under the emulator's lock. Nothing here knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from openmeter_billing.local._time import Interval, Recurrence
from openmeter_billing.local.engine.balance import ResetRecord
from openmeter_billing.local.meters.index import EventRecord, MeterIndex

__all__ = [
    "CustomerRecord",
    "EntitlementRecord",
    "FeatureRecord",
    "GrantRecord",
    "IngestedRecord",
    "MeterRecord",
    "PortalTokenRecord",
    "State",
]


@dataclass
class CustomerRecord:
    id: str
    name: str
    created_at: datetime
    updated_at: datetime
    key: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = None
    subject_keys: list[str] | None = None
    primary_email: str | None = None
    currency: str | None = None
    billing_address: dict[str, Any] | None = None
    deleted_at: datetime | None = None

    def subjects(self) -> frozenset[str]:
        """Event subjects attributed to this customer: its id, its key and its subject keys."""
        found = {self.id, *(self.subject_keys or ())}
        if self.key:
            found.add(self.key)
        return frozenset(found)


@dataclass
class MeterRecord:
    id: str
    slug: str
    aggregation: str
    event_type: str
    created_at: datetime
    updated_at: datetime
    index: MeterIndex
    name: str | None = None
    description: str | None = None
    metadata: dict[str, str] | None = None
    event_from: datetime | None = None
    value_property: str | None = None
    group_by: dict[str, str] = field(default_factory=dict)
    deleted_at: datetime | None = None


@dataclass
class FeatureRecord:
    id: str
    key: str
    name: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, str] | None = None
    meter_slug: str | None = None
    meter_group_by_filters: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # advancedMeterGroupByFilters, unitCost
    archived_at: datetime | None = None


@dataclass(frozen=True)
class PeriodInput:
    """A usage period or grant recurrence as created: the interval text, parsed form and anchor."""

    interval: str
    parsed: Interval
    anchor: datetime

    def recurrence(self) -> Recurrence:
        """The boundaries ``anchor + n x interval`` this period describes."""
        return Recurrence(self.anchor, self.parsed)


@dataclass
class EntitlementRecord:
    id: str
    type: str
    customer_id: str
    feature_id: str
    feature_key: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, str] | None = None
    usage_period: PeriodInput | None = None
    measure_usage_from: datetime | None = None
    is_soft_limit: bool = False
    preserve_overage_at_reset: bool = False
    issue_amount: float | None = None
    issue_priority: int | None = None
    config: str | None = None
    resets: list[ResetRecord] = field(default_factory=list)  # ascending
    deleted_at: datetime | None = None

    def active_at(self, t: datetime) -> bool:
        """Whether it grants access at ``t``: ``[createdAt, deletedAt)``."""
        return self.created_at <= t and (self.deleted_at is None or t < self.deleted_at)


@dataclass
class GrantRecord:
    id: str
    entitlement_id: str
    amount: float
    priority: int
    effective_at: datetime
    created_at: datetime
    updated_at: datetime
    min_rollover_amount: float
    max_rollover_amount: float
    expiration: dict[str, Any] | None = None
    expires_at: datetime | None = None
    recurrence: PeriodInput | None = None
    metadata: dict[str, str] | None = None
    annotations: dict[str, Any] | None = None
    voided_at: datetime | None = None
    deleted_at: datetime | None = None


@dataclass
class IngestedRecord:
    event: EventRecord
    raw: dict[str, Any]
    ingested_at: datetime
    customer_id: str | None
    validation_error: str | None = None


@dataclass
class PortalTokenRecord:
    id: str
    subject: str
    token: str
    created_at: datetime
    expires_at: datetime
    allowed_meter_slugs: list[str] | None = None
    invalidated: bool = False


@dataclass
class State:
    """Every entity of one emulator, keyed by id, plus the event log and its dedupe set."""

    customers: dict[str, CustomerRecord] = field(default_factory=dict)
    meters: dict[str, MeterRecord] = field(default_factory=dict)
    features: dict[str, FeatureRecord] = field(default_factory=dict)
    entitlements: dict[str, EntitlementRecord] = field(default_factory=dict)
    grants: dict[str, GrantRecord] = field(default_factory=dict)
    portal_tokens: dict[str, PortalTokenRecord] = field(default_factory=dict)
    events: list[IngestedRecord] = field(default_factory=list)
    seen_events: set[tuple[str, str]] = field(default_factory=set)

    # Lookup indexes. They only grow and are checked on every read (a hit must still match),
    # so a customer whose key changed or who was deleted is filtered out, never returned stale.
    by_subject: dict[str, set[str]] = field(default_factory=dict, repr=False)
    by_customer: dict[str, list[str]] = field(default_factory=dict, repr=False)
    by_entitlement: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def add_customer(self, record: CustomerRecord) -> None:
        self.customers[record.id] = record
        self.index_customer(record)

    def index_customer(self, record: CustomerRecord) -> None:
        """Call after a customer's key or subject keys change."""
        for subject in record.subjects():
            self.by_subject.setdefault(subject, set()).add(record.id)

    def add_entitlement(self, record: EntitlementRecord) -> None:
        self.entitlements[record.id] = record
        self.by_customer.setdefault(record.customer_id, []).append(record.id)

    def add_grant(self, record: GrantRecord) -> None:
        self.grants[record.id] = record
        self.by_entitlement.setdefault(record.entitlement_id, []).append(record.id)

    def live_customers(self) -> Iterator[CustomerRecord]:
        return (c for c in self.customers.values() if c.deleted_at is None)

    def claiming(self, subjects: Iterable[str]) -> list[CustomerRecord]:
        """Live customers whose id, key or subject keys include any of ``subjects``."""
        ids = set().union(*(self.by_subject.get(s, ()) for s in subjects))
        found = (self.customers[i] for i in sorted(ids))
        return [c for c in found if c.deleted_at is None]

    def customer_by_key(self, key: str) -> CustomerRecord | None:
        return next((c for c in self.claiming([key]) if c.key == key), None)

    def customer_for_subject(self, subject: str) -> CustomerRecord | None:
        """The live customer an event subject is attributed to (id, key or subject key)."""
        found = self.customers.get(subject)
        if found is not None and found.deleted_at is None:
            return found
        return next((c for c in self.claiming([subject]) if subject in c.subjects()), None)

    def entitlements_of(self, customer_id: str) -> list[EntitlementRecord]:
        return [self.entitlements[i] for i in self.by_customer.get(customer_id, ())]

    def live_meter(self, id_or_slug: str) -> MeterRecord | None:
        found = self.meters.get(id_or_slug)
        if found is not None and found.deleted_at is None:
            return found
        return next(
            (m for m in self.meters.values() if m.slug == id_or_slug and m.deleted_at is None),
            None,
        )

    def feature_by_key(self, key: str) -> FeatureRecord | None:
        """The non-archived feature with this key."""
        return next(
            (f for f in self.features.values() if f.key == key and f.archived_at is None), None
        )

    def grants_of(self, entitlement_id: str) -> list[GrantRecord]:
        return [self.grants[i] for i in self.by_entitlement.get(entitlement_id, ())]
