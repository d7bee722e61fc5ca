"""Billing events out of order or at once (issue 9, item 4), with every ledger and without one.

The final state must be the one the events give when applied one by one in time order, whatever
order and concurrency they arrive in: two named regressions from the issue, then a property test.
"""

from __future__ import annotations

import itertools
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from billing.conftest import pg_execute
from billing.test_billing_exactly_once import client_on
from billing.test_billing_helpers import START, event, prepare
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openmeter_billing import OpenMeterBilling
from openmeter_billing.billing.ledger import InMemoryLedger, PostgresLedger, SQLiteLedger
from openmeter_billing.local import LocalOpenMeter

KINDS = ["none", "memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
T = [START + timedelta(minutes=n) for n in range(12)]


@pytest.fixture
def make_ledger(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    """``make_ledger(kind)`` -> a fresh ledger (or None), its store unique to the call."""
    folder = Path(tempfile.mkdtemp(prefix="omb-order-"))
    truncated: list[bool] = []

    def make(kind: str) -> Any:
        if kind == "none":
            return None
        if kind == "memory":
            return InMemoryLedger()
        if kind == "sqlite":
            return SQLiteLedger(folder / f"{secrets.token_hex(4)}.sqlite3")
        dsn, table = request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_table")
        if not truncated:  # earlier tests' keys would read as duplicates
            pg_execute(dsn, f'TRUNCATE "{table}"')
            truncated.append(True)
        return PostgresLedger(dsn, table=table)

    return make


@asynccontextmanager
async def worker(local: LocalOpenMeter, ledger: Any) -> AsyncIterator[OpenMeterBilling]:
    async with client_on(local, ledger) as om:
        yield om
    if ledger is not None:
        await ledger.aclose()


async def live_terms(om: OpenMeterBilling, customer: str) -> dict[str, Any]:
    """What access the customer has: feature -> the terms that matter (not ids or times)."""
    terms = {}
    async for e in om.entitlements.list(customer):
        body = e.to_dict()
        terms[e.feature_key] = (
            body.get("type"),
            body.get("issueAfterReset"),
            body.get("config"),
        )
    return terms


@pytest.mark.parametrize("kind", KINDS)
async def test_active_and_canceled_at_once_leave_no_paid_access(
    kind: str, make_ledger: Callable[[str], Any]
) -> None:
    local = LocalOpenMeter(start=START)
    customers = [f"c{n}" for n in range(5)]
    async with worker(local, make_ledger(kind)) as om:
        await prepare(om, customers[0])
        for customer in customers[1:]:
            await om.customers.create(name=customer, key=customer, subject_keys=[customer])
        async with anyio.create_task_group() as tg:
            for customer in customers:
                sub = f"sub_{customer}"
                active = event(
                    "subscription.active", at=T[1], customer=customer, subscription_id=sub
                )
                canceled = event(
                    "subscription.canceled", at=T[2], customer=customer, subscription_id=sub
                )
                tg.start_soon(om.billing.apply_event, active)
                tg.start_soon(om.billing.apply_event, canceled)
        assert {c: await live_terms(om, c) for c in customers} == {c: {} for c in customers}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_late_downgrade_after_an_unchanged_renewal_is_stale(
    kind: str, make_ledger: Callable[[str], Any]
) -> None:
    local = LocalOpenMeter(start=START)
    async with worker(local, make_ledger(kind)) as om:
        await prepare(om)
        await om.billing.apply_event(event("subscription.active", at=T[1]))
        pro = await live_terms(om, "acme")
        renewed = await om.billing.apply_event(event("subscription.renewed", at=T[3]))
        assert renewed.status == "applied"
        assert {c.action for c in renewed.changes} == {"unchanged"}
        late = await om.billing.apply_event(event("subscription.updated", at=T[2], plan="free"))
        assert late.status == "stale" and T[3].isoformat() in late.reason
        assert await live_terms(om, "acme") == pro


# --- the property: any order, any concurrency, same final state as time order -----------------

KIND_OF_EVENT = {
    "created": ("subscription.created", {}),
    "active": ("subscription.active", {}),
    "updated": ("subscription.updated", {}),
    "renewed": ("subscription.renewed", {}),
    "uncanceled": ("subscription.uncanceled", {}),
    "cancel_at_end": ("subscription.canceled", {"cancel_at_period_end": True}),
    "cancel_now": ("subscription.canceled", {}),
    "expired": ("subscription.expired", {}),
    "revoked": ("subscription.revoked", {}),
}

story = st.lists(
    st.tuples(st.sampled_from(sorted(KIND_OF_EVENT)), st.sampled_from(["free", "pro"])),
    min_size=2,
    max_size=6,
)


def build_events(steps: list[tuple[str, str]], sub: str) -> list[Any]:
    built = []
    for n, (name, plan) in enumerate(steps):
        type_, extra = KIND_OF_EVENT[name]
        built.append(
            event(
                type_, at=T[n + 1], plan=plan, subscription_id=sub, event_id=f"{sub}_{n}", **extra
            )
        )
    return built


async def final_state(ledger: Any, deliveries: list[list[Any]]) -> dict[str, Any]:
    """Apply each batch's events concurrently, batch after batch; return the access left."""
    local = LocalOpenMeter(start=START)
    async with worker(local, ledger) as om:
        await prepare(om)
        for batch in deliveries:
            async with anyio.create_task_group() as tg:
                for delivery in batch:
                    tg.start_soon(om.billing.apply_event, delivery)
        return await live_terms(om, "acme")


@pytest.mark.parametrize("kind", KINDS)
@settings(
    max_examples=int(os.environ.get("ORDER_EXAMPLES", "10")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=story, data=st.data())
def test_any_order_and_concurrency_ends_as_time_order(
    kind: str, make_ledger: Callable[[str], Any], steps: list[tuple[str, str]], data: Any
) -> None:
    sub = f"sub_{secrets.token_hex(4)}"  # fresh keys, so stores shared across examples never mix
    events = build_events(steps, sub)
    shuffled = data.draw(st.permutations(events), label="arrival order")
    cuts = data.draw(
        st.lists(st.integers(1, len(events) - 1), unique=True, max_size=len(events) - 1),
        label="batch boundaries",
    )
    edges = [0, *sorted(cuts), len(events)]
    batches = [shuffled[a:b] for a, b in itertools.pairwise(edges)]
    expected = anyio.run(final_state, None, [[e] for e in events])
    assert anyio.run(final_state, make_ledger(kind), batches) == expected
