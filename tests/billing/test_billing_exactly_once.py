"""Exactly once for apply_event and top-ups, with every ledger (memory, SQLite, PostgreSQL).

The ``make_ledger`` fixture (tests/billing/conftest.py) runs each test against each store;
PostgreSQL ones skip without ``OPENMETER_BILLING_TEST_PG_DSN``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
from billing.test_billing_helpers import CATALOG, START, active_entitlements, event, prepare

from openmeter_billing import (
    ApplyResult,
    InternalServerError,
    OpenMeterBilling,
    OperationInProgressError,
)
from openmeter_billing.billing import _ledger_run
from openmeter_billing.billing.topups import TopupResult
from openmeter_billing.local import LocalOpenMeter

DUPLICATES = 50


def topup_grants(local: LocalOpenMeter, key: str) -> list[dict[str, Any]]:
    return [
        g
        for g in local.snapshot()["grants"]
        if (g.get("metadata") or {}).get("openmeter_billing.idempotency_key") == key
    ]


class FailFirst(httpx.AsyncBaseTransport):
    """Answers the first request matching ``method`` and ``suffix`` with a 500, then forwards."""

    def __init__(self, local: LocalOpenMeter, method: str, suffix: str) -> None:
        self.local, self.method, self.suffix, self.failed = local, method, suffix, False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not self.failed and request.method == self.method and path.endswith(self.suffix):
            self.failed = True
            return httpx.Response(500, json={"title": "boom", "status": 500})
        return await self.local.handle_async_request(request)


class Latency(httpx.AsyncBaseTransport):
    """Yields to other tasks around every request, as a network would.

    Local OpenMeter answers without awaiting anything, so without this, concurrent tasks would
    run one after another and no race could ever happen.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await anyio.lowlevel.checkpoint()
        response: httpx.Response = await self.inner.handle_async_request(request)
        await anyio.lowlevel.checkpoint()
        return response


def client_on(
    local: LocalOpenMeter, ledger: Any, transport: Any = None, **options: Any
) -> OpenMeterBilling:
    return OpenMeterBilling(
        transport=Latency(transport or local),
        base_url=LocalOpenMeter.base_url,
        catalog=CATALOG,
        ledger=ledger,
        max_retries=0,
        **options,
    )


async def test_concurrent_duplicate_topups_create_one_grant(
    make_ledger: Callable[..., Any],
) -> None:
    local = LocalOpenMeter(start=START)
    # Two workers with their own ledger objects on one store (one object for memory).
    async with client_on(local, make_ledger()) as one, client_on(local, make_ledger()) as two:
        await prepare(one)
        await one.billing.apply_event(event("subscription.active", at=START))
        results = await deliver_topups([one, two])
        assert (await one.entitlements.value("acme", "ai_tokens")).balance == 150_000
    assert len(topup_grants(local, "cs_race")) == 1
    assert sum(r.created for r in results) == 1
    assert {r.grant.id for r in results} == {topup_grants(local, "cs_race")[0]["id"]}


async def deliver_topups(workers: list[OpenMeterBilling]) -> list[TopupResult]:
    results: list[TopupResult] = []

    async def deliver(n: int) -> None:
        results.append(
            await workers[n % len(workers)].topups.grant(
                "acme", "token_pack", idempotency_key="cs_race", effective_at=START
            )
        )

    async with anyio.create_task_group() as tg:
        for n in range(DUPLICATES):
            tg.start_soon(deliver, n)
    return results


async def test_without_a_ledger_concurrent_duplicates_race() -> None:
    """The control for the tests above: the metadata lookup alone cannot stop a race."""
    local = LocalOpenMeter(start=START)
    async with client_on(local, None) as om:
        await prepare(om)
        await om.billing.apply_event(event("subscription.active", at=START))
        await deliver_topups([om])
    assert len(topup_grants(local, "cs_race")) > 1


async def test_concurrent_duplicate_events_apply_one_set_of_changes(
    make_ledger: Callable[..., Any],
) -> None:
    local = LocalOpenMeter(start=START)
    delivery = event("subscription.active", at=START, event_id="evt_race")
    results: list[ApplyResult] = []
    async with client_on(local, make_ledger()) as one, client_on(local, make_ledger()) as two:
        await prepare(one)

        async def deliver(n: int) -> None:
            results.append(await (one, two)[n % 2].billing.apply_event(delivery))

        async with anyio.create_task_group() as tg:
            for n in range(DUPLICATES):
                tg.start_soon(deliver, n)
    statuses = sorted(r.status for r in results)
    assert statuses == ["applied"] + ["duplicate"] * (DUPLICATES - 1)
    assert all(sorted(r.created) == ["ai_tokens", "api_access", "support_tier"] for r in results)
    assert len(local.snapshot()["entitlements"]) == 3
    audits = [e for e in local.snapshot()["events"] if e["id"] == delivery.audit_event_id]
    assert len(audits) == 1


async def test_a_crash_between_claim_and_complete_is_recovered_by_the_lookup(
    make_ledger: Callable[..., Any], clock: Any
) -> None:
    local = LocalOpenMeter(start=START)
    ledger = make_ledger(lease=30)
    async with client_on(local, ledger) as om, client_on(local, None) as crashed:
        await prepare(om)
        # Worker A claimed the key and created the grant, then died before `complete`.
        claim = await ledger.claim("topup:cs_crash")
        assert claim.state == "new"
        lost = await crashed.topups.grant(
            "acme", "token_pack", idempotency_key="cs_crash", effective_at=START
        )
        clock.advance(31)  # A's lease runs out
        retry = await om.topups.grant(
            "acme", "token_pack", idempotency_key="cs_crash", effective_at=START
        )
    assert not retry.created and retry.grant.id == lost.grant.id
    assert len(topup_grants(local, "cs_crash")) == 1
    done = await ledger.get("topup:cs_crash")
    assert done is not None and done.state == "done"


async def test_a_live_claim_makes_a_duplicate_wait_then_give_up(
    make_ledger: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ledger_run, "WAIT_FOR_OWNER", 0.2)
    local = LocalOpenMeter(start=START)
    ledger = make_ledger(lease=30)
    async with client_on(local, ledger) as om:
        await prepare(om)
        await ledger.claim("billing:stripe:evt_busy")  # another worker is applying it
        with pytest.raises(OperationInProgressError) as caught:
            await om.billing.apply_event(
                event("subscription.active", at=START, event_id="evt_busy")
            )
        assert caught.value.key == "billing:stripe:evt_busy"
        assert await active_entitlements(om) == {}


async def test_a_failed_grant_releases_the_claim_so_a_retry_succeeds(
    make_ledger: Callable[..., Any],
) -> None:
    local = LocalOpenMeter(start=START)
    ledger = make_ledger()
    flaky = FailFirst(local, "POST", "/grants")
    async with client_on(local, ledger, flaky) as om:
        await prepare(om)
        with pytest.raises(InternalServerError):
            await om.topups.grant("acme", "token_pack", idempotency_key="cs_f", effective_at=START)
        assert await ledger.get("topup:cs_f") is None
        retry = await om.topups.grant(
            "acme", "token_pack", idempotency_key="cs_f", effective_at=START
        )
    assert retry.created
    assert len(topup_grants(local, "cs_f")) == 1


async def test_a_failed_apply_releases_the_claim_and_the_retry_converges(
    make_ledger: Callable[..., Any],
) -> None:
    local = LocalOpenMeter(start=START)
    ledger = make_ledger()
    flaky = FailFirst(local, "POST", "/entitlements")
    async with client_on(local, ledger, flaky) as om:
        await prepare(om)
        delivery = event("subscription.active", at=START, event_id="evt_f")
        with pytest.raises(InternalServerError):
            await om.billing.apply_event(delivery)
        assert await ledger.get("billing:stripe:evt_f") is None
        retry = await om.billing.apply_event(delivery)
        assert retry.status == "applied"
        assert sorted(await active_entitlements(om)) == ["ai_tokens", "api_access", "support_tier"]


async def test_a_crashed_apply_is_recovered_without_duplicate_entitlements(
    make_ledger: Callable[..., Any], clock: Any
) -> None:
    local = LocalOpenMeter(start=START)
    ledger = make_ledger(lease=30)
    delivery = event("subscription.active", at=START, event_id="evt_crash")
    async with client_on(local, ledger) as om:
        await prepare(om)
        # The crashed worker claimed the event and created one entitlement before dying.
        await ledger.claim("billing:stripe:evt_crash")
        first = await om.entitlements.create(
            "acme",
            {
                "type": "boolean",
                "featureKey": "api_access",
                "metadata": {
                    "openmeter_billing.managed": "true",
                    "openmeter_billing.subscription": "sub_1",
                },
            },
        )
        clock.advance(31)
        result = await om.billing.apply_event(delivery)
    assert result.status == "applied"
    assert sorted(result.created) == ["ai_tokens", "support_tier"]
    assert len(local.snapshot()["entitlements"]) == 3
    kept = next(c for c in result.changes if c.feature_key == "api_access")
    assert kept.action == "unchanged" and kept.entitlement_id == first.id
