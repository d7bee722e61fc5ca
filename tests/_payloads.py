"""JSON bodies as OpenMeter returns them, shared by the respx-based tests."""

from __future__ import annotations

NOW = "2025-01-01T00:00:00Z"
CUSTOMER_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"
FEATURE_ID = "01JBBBBBBBBBBBBBBBBBBBBBBB"
ENT_ID = "01JCCCCCCCCCCCCCCCCCCCCCCC"
GRANT_ID = "01JDDDDDDDDDDDDDDDDDDDDDDD"
METER_ID = "01JEEEEEEEEEEEEEEEEEEEEEEE"


def customer_json(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": CUSTOMER_ID,
        "name": "Acme",
        "key": "acme",
        "createdAt": NOW,
        "updatedAt": NOW,
        "usageAttribution": {"subjectKeys": ["acme"]},
        "metadata": {"tier": "gold"},
    }
    body.update(overrides)
    return body


def metered_json(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "type": "metered",
        "id": ENT_ID,
        "featureKey": "ai_tokens",
        "featureId": FEATURE_ID,
        "customerId": CUSTOMER_ID,
        "activeFrom": NOW,
        "createdAt": NOW,
        "updatedAt": NOW,
        "lastReset": NOW,
        "measureUsageFrom": NOW,
        "currentUsagePeriod": {"from": NOW, "to": "2025-02-01T00:00:00Z"},
        "usagePeriod": {"interval": "MONTH", "anchor": NOW, "intervalISO": "P1M"},
        "isSoftLimit": False,
    }
    body.update(overrides)
    return body


def grant_json(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "id": GRANT_ID,
        "entitlementId": ENT_ID,
        "amount": 1000,
        "effectiveAt": NOW,
        "createdAt": NOW,
        "updatedAt": NOW,
        "priority": 1,
    }
    body.update(overrides)
    return body
