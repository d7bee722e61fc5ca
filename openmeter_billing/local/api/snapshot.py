"""A JSON-ready picture of an emulator's whole state (``LocalOpenMeter.snapshot()``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from openmeter_billing.local.api.render import customer_json, feature_json, iso, meter_json
from openmeter_billing.local.api.routes_entitlements import entitlement_json
from openmeter_billing.local.api.routes_grants import render_grant
from openmeter_billing.local.state.store import State

__all__ = ["snapshot_of"]


def snapshot_of(state: State, now: datetime) -> dict[str, Any]:
    """Every entity, rendered as the API shows it, plus the event log and portal tokens."""
    return {
        "now": iso(now),
        "customers": [customer_json(c) for c in state.customers.values()],
        "meters": [meter_json(m) for m in state.meters.values()],
        "features": [feature_json(f) for f in state.features.values()],
        "entitlements": [entitlement_json(state, e, now) for e in state.entitlements.values()],
        "grants": [render_grant(g, now) for g in state.grants.values()],
        "events": [
            {**s.raw, "customerId": s.customer_id, "validationError": s.validation_error}
            for s in state.events
        ],
        "portalTokens": [
            {"id": t.id, "subject": t.subject, "invalidated": t.invalidated}
            for t in state.portal_tokens.values()
        ],
    }
