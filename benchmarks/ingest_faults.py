"""Ingest fault runs at the issue's full size: nothing lost, nothing counted twice.

1. **SIGKILL**: producers submit to a `SQLiteOutbox` over HTTP and are SIGKILLed mid-stream
   (``--kills`` times, default 20), then one more process opens the outbox and flushes. Every id a
   `submit` returned must be stored in OpenMeter exactly once.
2. **Outage**: a memory-mode client and a SQLite-outbox client submit steadily through
   ``--outage`` seconds (default 60) of 100 % 503, then ``--flaky`` seconds (default 30) of 30 %
   random 503, then flush. 0 lost, 0 stored twice (default `IngestOptions`, real backoff).

Local OpenMeter's own faults run behind the loopback server, on the wall clock.
Run: ``python benchmarks/ingest_faults.py [--kills 20] [--outage 60] [--flaky 30]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx

from openmeter_billing import OpenMeterBilling, SQLiteOutbox
from openmeter_billing.local import Faults, LocalOpenMeter
from openmeter_billing.local._server import LoopbackServer
from openmeter_billing.local.faults import INGEST

_PRODUCER = """
import sys
from openmeter_billing import IngestOptions, OpenMeterBilling, SQLiteOutbox
client = OpenMeterBilling(base_url=sys.argv[1], outbox=SQLiteOutbox(sys.argv[2]),
                          ingest=IngestOptions(batch_size=50, flush_interval=0.02))
while True:
    sys.stdout.write(client.events.submit(type="t", subject="kill") + "\\n")
    sys.stdout.flush()
"""

_RESTART = """
import asyncio, sys
from openmeter_billing import OpenMeterBilling, SQLiteOutbox
async def main():
    async with OpenMeterBilling(base_url=sys.argv[1], outbox=SQLiteOutbox(sys.argv[2])) as c:
        print(await c.events.flush(timeout=60))
asyncio.run(main())
"""


class Acks:
    """Counts, per event id, the event POSTs Local OpenMeter acknowledged."""

    def __init__(self, local: LocalOpenMeter) -> None:
        self.count: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        local.add_observer(self._observe)

    def _observe(self, request: httpx.Request, response: httpx.Response) -> None:
        posted = request.method == "POST" and request.url.path == "/api/v1/events"
        if posted and response.status_code < 300:
            with self._lock:
                self.count.update(e["id"] for e in json.loads(request.content))


def stored(local: LocalOpenMeter) -> collections.Counter[str]:
    return collections.Counter(record.event.id for record in local._state.events)


def verdict(returned: list[str], local: LocalOpenMeter, acks: Acks) -> dict[str, int]:
    kept = stored(local)
    return {
        "returned ids": len(returned),
        "lost": sum(1 for i in returned if kept[i] == 0),
        "stored twice": sum(1 for i in returned if kept[i] > 1),
        "acknowledged twice (deduplicated)": sum(1 for i in returned if acks.count[i] > 1),
    }


def sigkill_run(url: str, local: LocalOpenMeter, acks: Acks, kills: int) -> dict[str, int]:
    rng = random.Random(1)
    returned: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "outbox.db")
        for _ in range(kills):
            child = subprocess.Popen(
                [sys.executable, "-c", _PRODUCER, url, path], stdout=subprocess.PIPE, text=True
            )
            assert child.stdout is not None
            wanted, lines = rng.randint(50, 2000), []
            while len(lines) < wanted:
                lines.append(child.stdout.readline().strip())
            os.kill(child.pid, signal.SIGKILL)
            rest, _ = child.communicate(timeout=30)
            returned += [line for line in [*lines, *rest.splitlines()] if line]
        left = subprocess.run(
            [sys.executable, "-c", _RESTART, url, path], capture_output=True, text=True, check=True
        ).stdout.strip()
    return {"kills": kills, **verdict(returned, local, acks), "pending after restart": int(left)}


async def outage_run(
    url: str, local: LocalOpenMeter, acks: Acks, outage: float, flaky: float
) -> dict[str, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        clients = {
            "memory": OpenMeterBilling(base_url=url),
            "sqlite": OpenMeterBilling(base_url=url, outbox=SQLiteOutbox(Path(tmp) / "o.db")),
        }
        ids: dict[str, list[str]] = {name: [] for name in clients}
        rule = local.faults.outage(INGEST, for_=timedelta(seconds=outage))
        local.faults.fail(INGEST, share=0.3, after=0)  # fires once the outage rule has ended
        start = time.monotonic()
        while time.monotonic() - start < outage + flaky:
            for name, client in clients.items():
                ids[name] += [
                    client.events.submit(type="t", subject=f"outage-{name}") for _ in range(10)
                ]
            await asyncio.sleep(0.05)  # ~200 events/s per client
        local.faults.clear()
        results = {}
        for name, client in clients.items():
            left = await client.events.flush(timeout=120)
            stats = client.events.stats()
            await client.aclose()
            results[name] = {
                **verdict(ids[name], local, acks),
                "pending after flush": left,
                "retried sends (events)": stats.retried,
                "dropped": stats.dropped,
            }
        results["outage rule hits"] = {"503 answers": rule.hits}
        return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--outage", type=float, default=60.0)
    parser.add_argument("--flaky", type=float, default=30.0)
    args = parser.parse_args()
    local = LocalOpenMeter(faults=Faults(seed=7, wall_clock=True))
    acks = Acks(local)
    with LoopbackServer(local, port=0) as server:
        started = time.monotonic()
        killed = sigkill_run(server.url, local, acks, args.kills)
        print(f"SIGKILL run ({time.monotonic() - started:.0f} s):", json.dumps(killed))
        started = time.monotonic()
        outage = asyncio.run(outage_run(server.url, local, acks, args.outage, args.flaky))
        print(f"outage run ({time.monotonic() - started:.0f} s):")
        for name, row in outage.items():
            print(f"  {name}: {json.dumps(row)}")


if __name__ == "__main__":
    main()
