"""BillingEvent: the provider-neutral event shape refuses what would fail later."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pydantic
import pytest

from openmeter_billing import ApplyResult, BillingEvent, EntitlementChange, InvalidInputError, User

AT = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def make(**fields: Any) -> BillingEvent:
    base: dict[str, Any] = {
        "type": "subscription.active",
        "provider": "stripe",
        "provider_event_id": "evt_1",
        "occurred_at": AT,
        "customer": "acme",
    }
    return BillingEvent(**{**base, **fields})


def test_idempotency_key_and_audit_id_come_from_provider_and_event_id() -> None:
    event = make()
    assert event.idempotency_key == "stripe:evt_1"
    assert event.audit_event_id == make(type="invoice.paid", plan="pro").audit_event_id
    assert event.audit_event_id != make(provider="polar").audit_event_id


def test_a_principal_is_accepted_as_the_customer() -> None:
    user = User(id="u_1", email="a@example.com")
    assert make(customer=user).customer is user


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"occurred_at": datetime(2025, 3, 3, 9, 0)}, "timezone"),
        ({"type": "subscription.paused"}, "subscription.created"),
        ({"customer": None}, "customer is required"),
        ({"customer": ""}, "customer is required"),
        ({"provider": ""}, "at least 1 character"),
        ({"plan_key": "pro"}, "Extra inputs are not permitted"),
        (
            {"current_period_start": AT, "current_period_end": AT - timedelta(days=1)},
            "is before current_period_start",
        ),
    ],
)
def test_invalid_events_are_refused_with_the_field_named(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        make(**fields)


def test_events_are_immutable() -> None:
    with pytest.raises(pydantic.ValidationError):
        make().plan = "pro"  # type: ignore[misc]


def test_apply_result_round_trips_through_json_for_the_ledger() -> None:
    change = EntitlementChange("ai_tokens", "overridden", "terms changed", "01J")
    result = ApplyResult("applied", "ok", (change,))
    again = ApplyResult.from_dict(result.to_dict())
    assert again == result
    assert ApplyResult.from_dict(result.to_dict(), "duplicate").status == "duplicate"
    assert (again.overridden, again.created, again.deleted, again.skipped) == (
        ["ai_tokens"],
        [],
        [],
        [],
    )
