"""Exactly once under a storm (issue 9, item 5): duplicates wait without writing, crashes heal fast.

The crash tests run a real worker process, kill it with SIGKILL between the grant and the ledger's
``complete``, and check that the key is recovered long before the 300 s lease, with one grant.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from billing.crash_child import LIVENESS
from billing.test_billing_exactly_once import client_on, topup_grants
from billing.test_billing_helpers import CATALOG, START, event, prepare

from openmeter_billing import BillingOptions, OpenMeterBilling, OperationInProgressError
from openmeter_billing.billing.ledger import PostgresLedger, SQLiteLedger
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local._server import LoopbackServer

STORM = int(os.environ.get("STORM", "1000"))
CHILD = Path(__file__).with_name("crash_child.py")


class CountingSQLiteLedger(SQLiteLedger):
    """Counts the write transactions that try to take a key."""

    claims = 0

    async def claim(self, key: str) -> Any:
        self.claims += key.startswith("topup:")
        return await super().claim(key)


async def test_a_storm_of_duplicate_topups_gives_one_grant_and_no_errors(tmp_path: Path) -> None:
    local = LocalOpenMeter(start=START)
    ledger = CountingSQLiteLedger(tmp_path / "storm.sqlite3")
    errors: list[BaseException] = []
    results: list[Any] = []
    async with client_on(local, ledger) as om:
        await prepare(om)
        await om.billing.apply_event(event("subscription.active", at=START))

        async def deliver() -> None:
            try:
                results.append(
                    await om.topups.grant(
                        "acme", "token_pack", idempotency_key="cs_storm", effective_at=START
                    )
                )
            except OperationInProgressError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(STORM):
                tg.start_soon(deliver)
    await ledger.aclose()
    assert errors == []
    assert len(topup_grants(local, "cs_storm")) == 1
    assert sum(r.created for r in results) == 1 and len(results) == STORM
    # Waiters share the first call's flight instead of polling the file with write transactions.
    assert ledger.claims == 1


def ledger_args(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> list[str]:
    if kind == "sqlite":
        return [str(tmp_path / "crash.sqlite3")]
    return [request.getfixturevalue("pg_dsn"), request.getfixturevalue("pg_table")]


def build(kind: str, args: list[str]) -> Any:
    if kind == "sqlite":
        return SQLiteLedger(args[0], liveness=LIVENESS)
    return PostgresLedger(args[0], table=args[1], liveness=LIVENESS)


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_killed_worker_is_recovered_within_seconds_without_a_duplicate(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    args = ledger_args(kind, tmp_path, request)
    local = LocalOpenMeter(start=START)
    with LoopbackServer(local, port=0) as server:
        ledger = build(kind, args)
        async with OpenMeterBilling(
            base_url=server.url, catalog=CATALOG, ledger=ledger, max_retries=0
        ) as om:
            await prepare(om)
            child = await anyio.open_process(
                [sys.executable, str(CHILD), server.url, kind, *args],
                stdout=subprocess.PIPE,
            )
            assert child.stdout is not None
            line = await child.stdout.receive()
            assert line.strip() == b"granted"
            claimed = await ledger.get("topup:cs_kill")
            assert claimed is not None and claimed.state == "in_progress"
            os.kill(child.pid, signal.SIGKILL)
            await child.wait()
            # The dead worker stops heartbeating: a retry waits about LIVENESS seconds (its
            # default patience is 10 s, far below the 300 s lease), then takes over and finds
            # the grant the dead worker created instead of creating another one.
            retry = await om.topups.grant(
                "acme", "token_pack", idempotency_key="cs_kill", effective_at=START
            )
        await ledger.aclose()
    assert not retry.created
    assert len(topup_grants(local, "cs_kill")) == 1
    assert retry.grant.id == topup_grants(local, "cs_kill")[0]["id"]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_live_owner_keeps_its_key_past_the_liveness_by_heartbeating(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    args = ledger_args(kind, tmp_path, request)
    local = LocalOpenMeter(start=START)
    ledger = build(kind, args)
    gate = anyio.Event()
    outcomes: list[str] = []

    async def slow_hook(_event: Any) -> None:
        await gate.wait()

    async with client_on(
        local, ledger, billing_options=BillingOptions(before_apply=slow_hook)
    ) as om:
        await prepare(om)
        delivery = event("subscription.active", at=START, event_id="evt_slow")

        async def deliver() -> None:
            outcomes.append((await om.billing.apply_event(delivery)).status)

        other = build(kind, args)  # a second worker on the same store
        async with anyio.create_task_group() as tg:
            tg.start_soon(deliver)
            await anyio.sleep(LIVENESS * 2.5)  # several liveness periods: only heartbeats keep it
            taken = await other.claim("billing:stripe:evt_slow")
            assert taken.state == "in_progress"
            gate.set()
        await other.aclose()
    await ledger.aclose()
    assert outcomes == ["applied"]
