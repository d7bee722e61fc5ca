"""`client.backfill.subscriptions`: active subscriptions become entitlements via apply_event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from billing.test_billing_helpers import CATALOG, START

from openmeter_billing.billing.ledger import InMemoryLedger
from openmeter_billing.local import LocalOpenMeter


def rows(n: int, plan: str = "pro") -> list[dict[str, Any]]:
    return [
        {
            "provider": "stripe",
            "subscription_id": f"sub_{i}",
            "customer": f"org{i}",
            "plan": plan,
            "occurred_at": START.isoformat(),
        }
        for i in range(n)
    ]


async def test_subscriptions_grant_the_plan_once_and_rerun_is_unchanged(tmp_path: Path) -> None:
    local = LocalOpenMeter(start=START)
    async with local.client(catalog=CATALOG, ledger=InMemoryLedger()) as client:
        await client.catalog.push()
        for i in range(6):
            await client.customers.create(name=f"Org {i}", key=f"org{i}")
        report = await client.backfill.subscriptions(rows(6), rate_limit=None)
        again = await client.backfill.subscriptions(rows(6), rate_limit=None)
        features = sorted([e.feature_key async for e in client.entitlements.list("org3")])
    assert (report.created, report.failed) == (6, 0)
    assert (again.unchanged, again.created) == (6, 0)  # the ledger says: applied before
    assert features == ["ai_tokens", "api_access", "support_tier"]


async def test_bad_rows_and_unknown_customers_fail_alone(tmp_path: Path) -> None:
    local = LocalOpenMeter(start=START)
    bad = rows(3)
    bad[0] = {**bad[0], "plan": "platinum"}
    bad[1] = {"provider": "stripe", "customer": "org1"}  # no subscription id, no event id
    async with local.client(catalog=CATALOG) as client:
        await client.catalog.push()
        for i in range(3):
            await client.customers.create(name=f"Org {i}", key=f"org{i}")
        bad.append({**rows(4)[3]})  # org3 does not exist
        report = await client.backfill.subscriptions(bad, rate_limit=None)
    failures = {f.index: f for f in report.failures}
    assert report.created == 1
    assert set(failures) == {0, 1, 3}
    assert "platinum" in failures[0].reason
    assert failures[1].error == "InvalidInputError"
    assert "provider_event_id" in failures[1].reason
    assert failures[3].error == "NotFoundError"
    assert failures[3].key == "stripe:backfill:sub_3"
