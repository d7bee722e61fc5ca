"""State records as OpenMeter's JSON responses (field names and shapes from the spec)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from openmeter_billing.local._time import interval_to_enum, interval_to_iso
from openmeter_billing.local.api.inputs import Query
from openmeter_billing.local.state.store import (
    CustomerRecord,
    FeatureRecord,
    GrantRecord,
    MeterRecord,
    PeriodInput,
)

__all__ = [
    "customer_json",
    "feature_json",
    "grant_json",
    "iso",
    "meter_json",
    "page_of",
    "period_json",
]

T = TypeVar("T")


@functools.lru_cache(maxsize=4096)
def iso(t: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, like the Go server (cached: the clock is frozen,
    so the same few instants are rendered again and again)."""
    text = t.astimezone(timezone.utc).isoformat()
    return text.replace("+00:00", "Z")


def _put(doc: dict[str, Any], name: str, value: Any) -> None:
    """Set ``name`` only when there is a value (Go's ``omitempty``)."""
    if value is not None:
        doc[name] = value


def customer_json(c: CustomerRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": c.id,
        "name": c.name,
        "createdAt": iso(c.created_at),
        "updatedAt": iso(c.updated_at),
    }
    _put(doc, "key", c.key)
    _put(doc, "description", c.description)
    _put(doc, "metadata", c.metadata)
    if c.subject_keys is not None:
        doc["usageAttribution"] = {"subjectKeys": list(c.subject_keys)}
    _put(doc, "primaryEmail", c.primary_email)
    _put(doc, "currency", c.currency)
    _put(doc, "billingAddress", c.billing_address)
    _put(doc, "deletedAt", c.deleted_at and iso(c.deleted_at))
    return doc


def meter_json(m: MeterRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": m.id,
        "slug": m.slug,
        "aggregation": m.aggregation,
        "eventType": m.event_type,
        "createdAt": iso(m.created_at),
        "updatedAt": iso(m.updated_at),
    }
    _put(doc, "name", m.name)
    _put(doc, "description", m.description)
    _put(doc, "metadata", m.metadata)
    _put(doc, "eventFrom", m.event_from and iso(m.event_from))
    _put(doc, "valueProperty", m.value_property)
    if m.group_by:
        doc["groupBy"] = dict(m.group_by)
    _put(doc, "deletedAt", m.deleted_at and iso(m.deleted_at))
    return doc


def feature_json(f: FeatureRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": f.id,
        "key": f.key,
        "name": f.name,
        "createdAt": iso(f.created_at),
        "updatedAt": iso(f.updated_at),
    }
    _put(doc, "metadata", f.metadata)
    _put(doc, "meterSlug", f.meter_slug)
    _put(doc, "meterGroupByFilters", f.meter_group_by_filters)
    doc.update(f.extra)
    _put(doc, "archivedAt", f.archived_at and iso(f.archived_at))
    return doc


def period_json(p: PeriodInput) -> dict[str, Any]:
    """A ``RecurringPeriod``: the enum when the interval maps cleanly, else the ISO string."""
    return {
        "interval": interval_to_enum(p.parsed) or interval_to_iso(p.parsed),
        "intervalISO": interval_to_iso(p.parsed),
        "anchor": iso(p.anchor),
    }


def grant_json(g: GrantRecord, next_recurrence: datetime | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": g.id,
        "entitlementId": g.entitlement_id,
        "amount": g.amount,
        "priority": g.priority,
        "effectiveAt": iso(g.effective_at),
        "minRolloverAmount": g.min_rollover_amount,
        "maxRolloverAmount": g.max_rollover_amount,
        "createdAt": iso(g.created_at),
        "updatedAt": iso(g.updated_at),
    }
    _put(doc, "expiration", g.expiration)
    _put(doc, "expiresAt", g.expires_at and iso(g.expires_at))
    _put(doc, "metadata", g.metadata)
    _put(doc, "annotations", g.annotations)
    if g.recurrence is not None:
        doc["recurrence"] = period_json(g.recurrence)
    _put(doc, "nextRecurrence", next_recurrence and iso(next_recurrence))
    _put(doc, "voidedAt", g.voided_at and iso(g.voided_at))
    _put(doc, "deletedAt", g.deleted_at and iso(g.deleted_at))
    return doc


def page_of(
    items: Sequence[T], query: Query, render: Callable[[T], dict[str, Any]]
) -> dict[str, Any]:
    """``{totalCount, page, pageSize, items}`` for page/pageSize, or offset/limit when given."""
    if query.get("page") is None and query.get("limit") is not None:
        limit = query.integer("limit", 100, minimum=1, maximum=1000)
        offset = query.integer("offset", 0, minimum=0, maximum=2**31)
        page, size, start = offset // limit + 1, limit, offset
    else:
        page = query.integer("page", 1, minimum=1, maximum=2**31)
        size = query.integer("pageSize", 100, minimum=1, maximum=1000)
        start = (page - 1) * size
    chunk = items[start : start + size]
    return {
        "totalCount": len(items),
        "page": page,
        "pageSize": size,
        "items": [render(item) for item in chunk],
    }
