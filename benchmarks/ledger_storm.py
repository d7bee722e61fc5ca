"""Exactly-once under a storm: duplicate top-ups on one SQLite ledger, and recovery from a crash.

Two measurements, printed as a table:

- **storm**: ``--calls`` concurrent duplicate ``topups.grant`` calls in one process, all with the
  same idempotency key, on one `SQLiteLedger` over Local OpenMeter (a checkpoint around every
  request stands in for the network). Reports how many raised `OperationInProgressError`, how many
  grants OpenMeter holds (must be 1) and the wall time, per repetition and as min/median/max.
- **crash**: a child process grants a top-up through the Local OpenMeter loopback server and is
  killed with SIGKILL after the grant was created but before the ledger recorded it. The parent
  then retries the same top-up and reports how long it took until the retry succeeded (capped at
  ``--crash-cap`` seconds) and how many grants exist (must be 1).

Run: ``python benchmarks/ledger_storm.py`` (``--calls 1000 --repeat 3 --crash-cap 30``).
Nothing is asserted: this is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from openmeter_billing import OpenMeterBilling, OperationInProgressError
from openmeter_billing.billing.ledger import SQLiteLedger
from openmeter_billing.catalog import (
    Feature,
    Meter,
    MeteredEntitlement,
    Plan,
    Price,
    TopUp,
    TopUpGrant,
    define_catalog,
)
from openmeter_billing.local import LocalOpenMeter

START = datetime(2025, 3, 3, 9, 0, 30, tzinfo=timezone.utc)
KEY = "cs_storm"
CATALOG = define_catalog(
    meters={"tokens": Meter(event_type="tokens", aggregation="SUM", value_property="$.tokens")},
    features={"ai_tokens": Feature(type="metered", meter="tokens")},
    plans={
        "pro": Plan(
            entitlements={"ai_tokens": MeteredEntitlement(amount=1_000, reset="month")},
            prices={"monthly": Price(amount=2000, currency="USD", interval="month")},
        )
    },
    topups={
        "token_pack": TopUp(
            feature="ai_tokens",
            amount=500,
            grant=TopUpGrant(priority=10),
            prices={"once": Price(amount=500, currency="USD", interval="one_time")},
        )
    },
)


class Latency(httpx.AsyncBaseTransport):
    """Yield around every request, as a network would (Local answers without awaiting)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await anyio.lowlevel.checkpoint()
        response: httpx.Response = await self.inner.handle_async_request(request)
        await anyio.lowlevel.checkpoint()
        return response


class DieAfterGrant(httpx.AsyncBaseTransport):
    """The child's transport: after OpenMeter created the grant, say so and hang until killed."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/grants"):
            await response.aread()
            sys.stdout.write("granted\n")
            sys.stdout.flush()
            await anyio.sleep(3600)
        return response


def grants(local: LocalOpenMeter) -> int:
    return sum(
        1
        for g in local.snapshot()["grants"]
        if (g.get("metadata") or {}).get("openmeter_billing.idempotency_key") == KEY
    )


async def prepare(client: OpenMeterBilling) -> None:
    await client.catalog.push()
    await client.customers.create(name="Acme", key="acme", subject_keys=["acme"])
    await client.entitlements.create(
        "acme", {"type": "metered", "featureKey": "ai_tokens", "usagePeriod": {"interval": "MONTH"}}
    )


async def storm_once(calls: int, folder: Path, over_http: bool) -> tuple[int, int, float]:
    from openmeter_billing.local._server import LoopbackServer

    local = LocalOpenMeter(start=START)
    ledger = SQLiteLedger(folder / f"storm-{time.monotonic_ns()}.sqlite3")
    errors = 0
    with contextlib.ExitStack() as stack:
        if over_http:
            server = stack.enter_context(LoopbackServer(local, port=0))
            where: dict[str, Any] = {"base_url": server.url}
        else:
            where = {"transport": Latency(local), "base_url": LocalOpenMeter.base_url}
        errors = await _storm(calls, ledger, where)
    await ledger.aclose()
    return errors, grants(local), _storm_seconds.pop()


_storm_seconds: list[float] = []


async def _storm(calls: int, ledger: SQLiteLedger, where: dict[str, Any]) -> int:
    errors = 0
    async with OpenMeterBilling(**where, catalog=CATALOG, ledger=ledger, max_retries=0) as client:
        await prepare(client)

        async def one() -> None:
            nonlocal errors
            try:
                await client.topups.grant("acme", "token_pack", idempotency_key=KEY)
            except OperationInProgressError:
                errors += 1

        began = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(calls):
                tg.start_soon(one)
        _storm_seconds.append(time.perf_counter() - began)
    return errors


def child(url: str, path: str) -> None:
    async def main() -> None:
        async with OpenMeterBilling(
            transport=DieAfterGrant(),
            base_url=url,
            catalog=CATALOG,
            ledger=SQLiteLedger(path),
            max_retries=0,
        ) as client:
            await client.topups.grant("acme", "token_pack", idempotency_key=KEY)

    asyncio.run(main())


async def crash_once(cap: float, folder: Path) -> tuple[float | None, int]:
    from openmeter_billing.local._server import LoopbackServer

    local = LocalOpenMeter(start=START)
    path = str(folder / f"crash-{time.monotonic_ns()}.sqlite3")
    with LoopbackServer(local, port=0) as server:
        async with OpenMeterBilling(
            base_url=server.url, catalog=CATALOG, ledger=SQLiteLedger(path), max_retries=0
        ) as client:
            await prepare(client)
            proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before timing
                [sys.executable, __file__, "--child", server.url, path],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None
            line = await anyio.to_thread.run_sync(proc.stdout.readline)
            assert line.strip() == "granted", line
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            began = time.perf_counter()
            recovered: float | None = None
            while time.perf_counter() - began < cap:
                try:
                    await client.topups.grant("acme", "token_pack", idempotency_key=KEY)
                except OperationInProgressError:
                    continue
                recovered = time.perf_counter() - began
                break
    return recovered, grants(local)


def summary(values: list[float]) -> str:
    return f"{min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f}"


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        runs = [await storm_once(args.calls, folder, args.http) for _ in range(args.repeat)]
        rates = [100 * e / args.calls for e, _, _ in runs]
        over = "the loopback HTTP server" if args.http else "the in-process transport"
        print(
            f"storm: {args.calls} concurrent duplicate topups.grant, SQLiteLedger, "
            f"Local OpenMeter over {over}, {args.repeat}x"
        )
        print("| run | OperationInProgressError | rate % | grants | seconds |")
        print("|---|---|---|---|---|")
        for n, (errors, count, seconds) in enumerate(runs, 1):
            print(f"| {n} | {errors} | {100 * errors / args.calls:.1f} | {count} | {seconds:.2f} |")
        print(f"error rate % min/median/max: {summary(rates)}")
        print(f"seconds min/median/max: {summary([s for _, _, s in runs])}")
        if args.crash_cap > 0:
            took, count = await crash_once(args.crash_cap, folder)
            shown = f"{took:.2f} s" if took is not None else f"> {args.crash_cap:.0f} s (gave up)"
            print(
                f"crash: child SIGKILLed after its grant; retry succeeded after {shown}; "
                f"grants: {count}"
            )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--http", action="store_true", help="talk to Local OpenMeter over loopback HTTP"
    )
    parser.add_argument("--crash-cap", type=float, default=30.0, help="0 skips the crash run")
    asyncio.run(main(parser.parse_args()))
