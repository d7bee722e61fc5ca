"""Shared setup for apply_event and top-up tests: a small catalog pushed to Local OpenMeter."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from openmeter_billing import OpenMeterBilling
from openmeter_billing.billing.events import BillingEvent
from openmeter_billing.catalog import (
    AddOn,
    Expiration,
    Feature,
    Meter,
    MeteredEntitlement,
    Plan,
    Price,
    TopUp,
    TopUpGrant,
    define_catalog,
)

START = datetime(2025, 3, 3, 9, 0, 30, tzinfo=timezone.utc)
CUSTOMER = "acme"

CATALOG = define_catalog(
    meters={"tokens": Meter(event_type="tokens", aggregation="SUM", value_property="$.tokens")},
    features={
        "ai_tokens": Feature(type="metered", meter="tokens"),
        "api_access": Feature(type="boolean"),
        "support_tier": Feature(type="static", config={"tier": "community"}),
        "priority_support": Feature(type="boolean"),
    },
    plans={
        "free": Plan(
            entitlements={
                "ai_tokens": MeteredEntitlement(amount=1_000, reset="month"),
                "support_tier": {"config": {"tier": "community"}},
            },
            prices={"monthly": Price(amount=100, currency="USD", interval="month")},
        ),
        "pro": Plan(
            entitlements={
                "ai_tokens": MeteredEntitlement(amount=100_000, reset="month"),
                "api_access": True,
                "support_tier": {"config": {"tier": "business"}},
            },
            prices={"monthly": Price(amount=2000, currency="USD", interval="month")},
        ),
    },
    addons={
        "priority_support": AddOn(
            entitlements={"priority_support": True},
            prices={"monthly": Price(amount=1000, currency="USD", interval="month")},
            compatible_plans=("pro",),
        ),
    },
    topups={
        "token_pack": TopUp(
            feature="ai_tokens",
            amount=50_000,
            grant=TopUpGrant(priority=10, expiration=Expiration(duration="YEAR", count=1)),
            prices={"once": Price(amount=500, currency="USD", interval="one_time")},
        ),
    },
)


async def prepare(client: OpenMeterBilling, customer: str = CUSTOMER) -> None:
    """Push the catalog's meters and features and create the customer."""
    await client.catalog.push()
    await client.customers.create(name=customer.title(), key=customer, subject_keys=[customer])


def event(
    type: str,
    *,
    at: datetime,
    plan: str | None = "pro",
    event_id: str | None = None,
    **fields: Any,
) -> BillingEvent:
    """A Stripe-like billing event for ``acme``'s subscription ``sub_1``."""
    fields.setdefault("customer", CUSTOMER)
    fields.setdefault("subscription_id", "sub_1")
    fields.setdefault("current_period_start", at)
    fields.setdefault("current_period_end", at + timedelta(days=30))
    return BillingEvent(
        type=type,  # type: ignore[arg-type]
        provider="stripe",
        provider_event_id=event_id or f"evt_{type}_{at.timestamp():.0f}",
        occurred_at=at,
        plan=plan,
        **fields,
    )


async def active_entitlements(client: OpenMeterBilling, customer: str = CUSTOMER) -> dict[str, Any]:
    """Feature key -> entitlement for the customer's live entitlements."""
    return {e.feature_key: e async for e in client.entitlements.list(customer)}
