"""The blocking facade covers billing and top-ups with the same behaviour as the async client."""

from __future__ import annotations

from datetime import timedelta

from billing.test_billing_helpers import CATALOG, START, event

from openmeter_billing import ApplyResult, TopupResult
from openmeter_billing.billing.ledger import InMemoryLedger
from openmeter_billing.local import LocalOpenMeter


def test_sync_client_applies_events_and_grants_topups_once() -> None:
    local = LocalOpenMeter(start=START)
    with local.sync_client(catalog=CATALOG, ledger=InMemoryLedger()) as om:
        om.catalog.push()
        om.customers.create(name="Acme", key="acme")
        delivery = event("subscription.active", at=START, event_id="evt_s")
        applied = om.billing.apply_event(delivery)
        again = om.billing.apply_event(delivery)
        assert isinstance(applied, ApplyResult)
        assert (applied.status, again.status) == ("applied", "duplicate")
        assert sorted(applied.created) == ["ai_tokens", "api_access", "support_tier"]
        first = om.topups.grant("acme", "token_pack", idempotency_key="cs_s", effective_at=START)
        replay = om.topups.grant("acme", "token_pack", idempotency_key="cs_s", effective_at=START)
        assert isinstance(first, TopupResult)
        assert (first.created, replay.created) == (True, False)
        assert replay.grant.id == first.grant.id
        assert om.entitlements.value("acme", "ai_tokens").balance == 150_000
        later = START + timedelta(minutes=5)
        revoked = om.billing.apply_event(event("subscription.revoked", at=later))
        assert revoked.overridden == ["ai_tokens"]  # kept only to hold the top-up
        assert om.entitlements.value("acme", "ai_tokens").balance == 50_000
    audits = [e for e in local.snapshot()["events"] if e["type"].startswith("openmeter-billing.")]
    assert len(audits) == 3  # active, top-up, revoked: duplicates deduplicated by id
