"""Ingest benchmark: ``events.submit`` against raw baselines measured in the same run.

Rows (one run; median of ``--repeat`` rounds, with min/max):

- ``submit`` p50/p99 (µs per call) vs a bare ``queue.Queue.put_nowait`` of a pre-built dict;
- end-to-end events/s to Local OpenMeter behind the loopback server (in this process) vs raw
  httpx posting the same pre-built batches (500 events per batch, 4 in flight);
- RSS growth for 10,000 queued events;
- SQLite and PostgreSQL outbox submit rate and end-to-end rate (PostgreSQL with
  ``OPENMETER_BILLING_TEST_PG_DSN``).

Fault runs (SIGKILL producers, 100 % then 30 % 503) at full size: ``benchmarks/ingest_faults.py``
(bounded versions are tests in tests/ingest).

Run: ``python benchmarks/ingest.py [--events 20000] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from openmeter_billing import IngestOptions, OpenMeterBilling, PostgresOutbox, SQLiteOutbox
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local._server import LoopbackServer

OPTIONS = IngestOptions(batch_size=500, max_in_flight=4, flush_interval=0.05)


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]


def bench_submit(n: int) -> dict[str, float]:
    client = OpenMeterBilling(
        base_url="http://127.0.0.1:9",
        ingest=IngestOptions(flush_interval=3600, max_queue_events=n + 1),
    )
    client._ingest.active[asyncio.new_event_loop()] = (
        asyncio.Event()
    )  # no flusher: measure submit only
    times = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        client.events.submit(type="ai-tokens", subject="customer-1", data={"tokens": i})
        times.append((clock() - start) / 1000)
    bare = queue.Queue()
    bare_times = []
    for i in range(n):
        event = {"id": str(i), "type": "ai-tokens", "subject": "customer-1", "data": {"tokens": i}}
        start = clock()
        bare.put_nowait(event)
        bare_times.append((clock() - start) / 1000)
    p50, p99 = _percentiles(times)
    b50, b99 = _percentiles(bare_times)
    return {"submit_p50_us": p50, "submit_p99_us": p99, "put_p50_us": b50, "put_p99_us": b99}


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_rss(n: int = 10_000) -> float:
    client = OpenMeterBilling(
        base_url="http://127.0.0.1:9", ingest=IngestOptions(flush_interval=3600)
    )
    client._ingest.active[asyncio.new_event_loop()] = asyncio.Event()
    before = rss_mib()
    for i in range(n):
        client.events.submit(type="ai-tokens", subject="customer-1", data={"tokens": i})
    return rss_mib() - before


async def bench_end_to_end(url: str, n: int, outbox: object = None) -> tuple[float, float]:
    """(submit rate, end-to-end rate) in events/s."""
    client = OpenMeterBilling(base_url=url, ingest=OPTIONS, outbox=outbox)  # type: ignore[arg-type]
    async with client:
        start = time.perf_counter()
        for i in range(n):
            client.events.submit(type="ai-tokens", subject="customer-1", data={"tokens": i})
        submitted = time.perf_counter()
        left = await client.events.flush()
        done = time.perf_counter()
    assert left == 0
    return n / (submitted - start), n / (done - start)


async def bench_raw(url: str, n: int) -> float:
    bodies = []
    for offset in range(0, n, 500):
        batch = [
            {
                "specversion": "1.0",
                "id": str(uuid.uuid4()),
                "source": "bench",
                "type": "ai-tokens",
                "subject": "customer-1",
                "data": {"tokens": i},
            }
            for i in range(offset, min(offset + 500, n))
        ]
        bodies.append(json.dumps(batch, separators=(",", ":")).encode())
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    limiter = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=url) as http:

        async def post(body: bytes) -> None:
            async with limiter:
                (
                    await http.post("/api/v1/events", content=body, headers=headers)
                ).raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(post(b) for b in bodies))
        return n / (time.perf_counter() - start)


def _row(name: str, values: list[float], unit: str, baseline: list[float] | None = None) -> str:
    med = statistics.median(values)
    ratio = f"{med / statistics.median(baseline):.2f}x" if baseline else ""
    return f"{name:<38} {min(values):>11.1f} {med:>11.1f} {max(values):>11.1f} {unit:<8} {ratio}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    # First: later rows free memory this would reuse, reading a growth of 0.
    rows: dict[str, list[float]] = {"rss_10k_mib": [bench_rss()]}
    for _ in range(args.repeat):
        for key, value in bench_submit(args.events).items():
            rows.setdefault(key, []).append(value)
    dsn = os.environ.get("OPENMETER_BILLING_TEST_PG_DSN")
    with LoopbackServer(LocalOpenMeter(), port=0) as server, tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            rows.setdefault("raw", []).append(asyncio.run(bench_raw(server.url, args.events)))
            _, e2e = asyncio.run(bench_end_to_end(server.url, args.events))
            rows.setdefault("memory_e2e", []).append(e2e)
            sub, e2e = asyncio.run(
                bench_end_to_end(server.url, args.events // 4, SQLiteOutbox(Path(tmp) / f"{r}.db"))
            )
            rows.setdefault("sqlite_submit", []).append(sub)
            rows.setdefault("sqlite_e2e", []).append(e2e)
            if dsn:
                outbox = PostgresOutbox(dsn, table=f"bench_outbox_{os.getpid()}_{r}")
                sub, e2e = asyncio.run(bench_end_to_end(server.url, args.events // 10, outbox))
                rows.setdefault("postgres_submit", []).append(sub)
                rows.setdefault("postgres_e2e", []).append(e2e)
                outbox.close()
    print(f"{'measure':<38} {'min':>11} {'median':>11} {'max':>11} unit     vs baseline")
    print(_row("bare queue.put_nowait p50", rows["put_p50_us"], "µs"))
    print(_row("submit() p50", rows["submit_p50_us"], "µs", rows["put_p50_us"]))
    print(_row("submit() p99", rows["submit_p99_us"], "µs", rows["put_p99_us"]))
    print(_row("raw httpx, pre-built 500x4", rows["raw"], "ev/s"))
    print(_row("submit+flush end-to-end (memory)", rows["memory_e2e"], "ev/s", rows["raw"]))
    print(_row("RSS growth, 10,000 queued", rows["rss_10k_mib"], "MiB"))
    print(_row("SQLite outbox submit", rows["sqlite_submit"], "ev/s"))
    print(_row("SQLite outbox end-to-end", rows["sqlite_e2e"], "ev/s", rows["raw"]))
    if dsn:
        print(_row("PostgreSQL outbox submit", rows["postgres_submit"], "ev/s"))
        print(_row("PostgreSQL outbox end-to-end", rows["postgres_e2e"], "ev/s", rows["raw"]))


if __name__ == "__main__":
    main()
