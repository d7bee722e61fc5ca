"""Finding what a request's path names: customers, features and entitlements (404/412 otherwise).

Shared by the route modules, so none of them imports another to look something up.
"""

from __future__ import annotations

from datetime import datetime

from openmeter_billing.local.api.problems import not_found, precondition_failed
from openmeter_billing.local.api.router import Context
from openmeter_billing.local.state.ids import is_ulid
from openmeter_billing.local.state.store import (
    CustomerRecord,
    EntitlementRecord,
    FeatureRecord,
    State,
)

__all__ = [
    "active_for_feature",
    "entitlement_of",
    "find_customer",
    "find_feature",
    "live_customer",
]


def find_customer(state: State, id_or_key: str) -> CustomerRecord:
    """By id (deleted ones too) or by key (live only); 404 otherwise."""
    found = state.customers.get(id_or_key) if is_ulid(id_or_key) else None
    found = found or state.customer_by_key(id_or_key)
    if found is None:
        raise not_found(f"customer not found: {id_or_key}")
    return found


def live_customer(state: State, id_or_key: str) -> CustomerRecord:
    """Like :func:`find_customer`, but 412 for a deleted customer (OpenMeter's precondition)."""
    found = find_customer(state, id_or_key)
    if found.deleted_at is not None:
        raise precondition_failed(f"customer is deleted: {found.id}")
    return found


def find_feature(state: State, id_or_key: str) -> FeatureRecord:
    """By id (archived too) or by the key of the non-archived feature; 404 otherwise."""
    found = state.features.get(id_or_key) or state.feature_by_key(id_or_key)
    if found is None:
        raise not_found(f"feature not found: {id_or_key}")
    return found


def active_for_feature(
    state: State, customer_id: str, feature_key: str, at: datetime
) -> EntitlementRecord | None:
    """The customer's entitlement to ``feature_key`` active at ``at``, if any."""
    return next(
        (
            e
            for e in state.entitlements_of(customer_id)
            if e.feature_key == feature_key and e.active_at(at)
        ),
        None,
    )


def entitlement_of(ctx: Context) -> EntitlementRecord:
    """The path's entitlement: by id, or the one active now for a feature key; 404 otherwise."""
    customer = live_customer(ctx.state, ctx.params["customerIdOrKey"])
    ref = ctx.params["entitlementIdOrFeatureKey"]
    found = ctx.state.entitlements.get(ref) if is_ulid(ref) else None
    if found is not None and found.customer_id != customer.id:
        found = None
    found = found or active_for_feature(ctx.state, customer.id, ref, ctx.clock.now())
    if found is None:
        raise not_found(f"entitlement not found: {ref} for customer {customer.id}")
    return found
