"""Scale benchmark for Local OpenMeter: does a read or an ingest get slower as state grows?

What it answers (issue 11): with 10 customers and with 100,000, what does one entitlement value
read and one event ingest cost in-process; how long does seeding the customers (each with a
metered entitlement) take; what does an event dated before the newest one cost compared with an
in-order event once a customer has many events; and how much memory one stored event takes.

Everything runs in ONE process and ONE run, through a bare ``httpx.Client`` whose transport is
``LocalOpenMeter`` (no sockets), so the numbers are the emulator's own cost. Ratios are against the
smallest size measured in the same run.

Run: ``python benchmarks/local_scale.py [--customers 10,1000,10000,100000] [--events 100000]
[--samples 300] [--json]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from openmeter_billing.local import LocalOpenMeter

START = datetime(2025, 1, 15, 10, 0, 30, tzinfo=timezone.utc)
FEATURE = "tokens"
CE = {"content-type": "application/cloudevents+json"}


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 400:
        raise SystemExit(f"{response.request.method} {response.request.url}: {response.text}")
    return response


def _setup_catalog(http: httpx.Client) -> None:
    meter = {"slug": FEATURE, "eventType": FEATURE, "aggregation": "SUM", "valueProperty": "$.v"}
    _check(http.post("/api/v1/meters", json=meter))
    _check(http.post("/api/v1/features", json={"key": FEATURE, "name": "T", "meterSlug": FEATURE}))


def _seed(http: httpx.Client, first: int, last: int) -> None:
    """Customers ``c{first}``..``c{last - 1}``, each with a metered entitlement."""
    entitlement = {"type": "metered", "featureKey": FEATURE, "usagePeriod": {"interval": "MONTH"}}
    for n in range(first, last):
        _check(http.post("/api/v1/customers", json={"name": f"C {n}", "key": f"c{n}"}))
        _check(http.post(f"/api/v2/customers/c{n}/entitlements", json=entitlement))


def _event(subject: str, when: datetime | None = None) -> bytes:
    event: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "source": "bench",
        "specversion": "1.0",
        "type": FEATURE,
        "subject": subject,
        "data": {"v": 1},
    }
    if when is not None:
        event["time"] = when.isoformat()
    return json.dumps(event).encode()


def _timed(call: Callable[[], object], samples: int) -> list[float]:
    """Microseconds per call, ``samples`` times."""
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def _stats(name: str, values: list[float], unit: str) -> dict[str, Any]:
    return {
        "metric": name,
        "unit": unit,
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def _per_size(http: httpx.Client, size: int, samples: int) -> list[dict[str, Any]]:
    rng = random.Random(size)

    def read() -> None:
        _check(http.get(f"/api/v2/customers/c{rng.randrange(size)}/entitlements/{FEATURE}/value"))

    def ingest() -> None:
        _check(http.post("/api/v1/events", content=_event(f"c{rng.randrange(size)}"), headers=CE))

    return [
        _stats(f"value read @ {size:,} customers", _timed(read, samples), "µs"),
        _stats(f"single ingest @ {size:,} customers", _timed(ingest, samples), "µs"),
    ]


def _backdated(events: int, samples: int) -> tuple[list[dict[str, Any]], float]:
    """In-order vs back-dated ingest + read at ``events`` stored events; bytes per event.

    The events fall inside the entitlement's current usage period (one a second after it
    starts), so every read sums them: a back-dated event (30 s before the newest, the issue's
    case) lands among counted events instead of before the period, where nothing reads it.
    """
    local = LocalOpenMeter(start=START)
    with httpx.Client(transport=local, base_url=local.base_url) as http:
        _setup_catalog(http)
        _seed(http, 0, 1)  # the entitlement's usage period starts at START
        first = START + timedelta(seconds=1)
        newest = first + timedelta(seconds=events - 1)
        local.clock.set(newest + timedelta(seconds=90))
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        batch: list[bytes] = []
        for n in range(events):
            batch.append(_event("c0", first + timedelta(seconds=n)))
            if len(batch) == 1000 or n == events - 1:
                body = b"[" + b",".join(batch) + b"]"
                headers = {"content-type": "application/cloudevents-batch+json"}
                _check(http.post("/api/v1/events", content=body, headers=headers))
                batch.clear()
        gc.collect()
        per_event = (tracemalloc.get_traced_memory()[0] - before) / events
        tracemalloc.stop()
        value = f"/api/v2/customers/c0/entitlements/{FEATURE}/value"
        counted = _check(http.get(value)).json()["usage"]
        if counted < events:
            raise SystemExit(f"the value read counts {counted} of {events} events")

        def in_order() -> None:
            _check(http.post("/api/v1/events", content=_event("c0", newest), headers=CE))
            _check(http.get(value))

        def back_dated() -> None:
            when = newest - timedelta(seconds=30)
            _check(http.post("/api/v1/events", content=_event("c0", when), headers=CE))
            _check(http.get(value))

        rows = [
            _stats(f"in-order event + read @ {events:,} events", _timed(in_order, samples), "µs"),
            _stats(
                f"back-dated event + read @ {events:,} events", _timed(back_dated, samples), "µs"
            ),
        ]
    return rows, per_event


def _scale(sizes: Sequence[int], samples: int) -> list[dict[str, Any]]:
    local = LocalOpenMeter(start=START)
    rows: list[dict[str, Any]] = []
    seeded = 0
    wall = cpu = 0.0
    with httpx.Client(transport=local, base_url=local.base_url) as http:
        _setup_catalog(http)
        for size in sorted(sizes):
            t0, c0 = time.perf_counter(), time.process_time()
            _seed(http, seeded, size)
            wall += time.perf_counter() - t0
            cpu += time.process_time() - c0
            seeded = size
            # Wall time is what the goal is about; CPU time shows how much of it was this process
            # (on a shared machine the difference is other processes).
            rows.append(
                {"metric": f"seed {size:,} customers + entitlements", "unit": "s",
                 "min": wall, "median": wall, "max": wall}
            )  # fmt: skip
            rows.append(
                {"metric": f"seed {size:,} CPU time (this process)", "unit": "s",
                 "min": cpu, "median": cpu, "max": cpu}
            )  # fmt: skip
            print(
                f"  seeded {size:,} in {wall:.1f} s ({cpu:.1f} s CPU)", file=sys.stderr, flush=True
            )
            rows.extend(_per_size(http, size, samples))
    return rows


def _ratios(rows: list[dict[str, Any]]) -> None:
    """``vs base``: median over the same metric's median at the smallest size in this run."""
    base: dict[str, float] = {}
    for row in rows:
        kind = row["metric"].split(" @ ")[0]
        if row["unit"] != "µs":
            continue
        if kind == "back-dated event + read":
            kind = "in-order event + read"
        base.setdefault(kind, row["median"])
        row["vs base"] = row["median"] / base[kind]


def _table(rows: list[dict[str, Any]], per_event: float) -> str:
    head = f"{'metric':<46} {'unit':>4} {'min':>10} {'median':>10} {'max':>10} {'vs base':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r['vs base']:.2f}x" if "vs base" in r else ""
        lines.append(
            f"{r['metric']:<46} {r['unit']:>4} {r['min']:>10.1f} {r['median']:>10.1f} "
            f"{r['max']:>10.1f} {ratio:>8}"
        )
    lines.append(f"memory per stored event: {per_event / 1024:.2f} KB")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", default="10,1000,10000,100000")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.customers.split(",")]
    rows = _scale(sizes, args.samples)
    backdated, per_event = _backdated(args.events, args.samples)
    rows.extend(backdated)
    _ratios(rows)
    if args.json:
        print(json.dumps({"rows": rows, "bytes_per_event": per_event}, indent=2))
    else:
        print(_table(rows, per_event))
    return 0


if __name__ == "__main__":
    sys.exit(main())
