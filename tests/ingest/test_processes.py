"""Real processes: interpreter exit, fork, SIGKILL mid-stream with a SQLite outbox.

The server is Local OpenMeter behind the loopback HTTP server in this test process; producers are
fresh interpreters (`run_script`) or ``subprocess.Popen`` children killed with SIGKILL.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ingest._observed import ObservedLocal
from runtime._scripts import run_script

from openmeter_billing.local._server import LoopbackServer


@pytest.fixture
def server() -> Iterator[tuple[str, ObservedLocal]]:
    faulty = ObservedLocal()
    with LoopbackServer(faulty.local, port=0) as loopback:
        yield loopback.url, faulty


@pytest.mark.parametrize(
    "body",
    [
        # async client, no event loop at all: its own daemon flusher thread, drained at exit
        "client = OpenMeterBilling(base_url=URL)\n"
        "ids = [client.events.submit(type='t', subject='s') for _ in range(50)]",
        # async client inside asyncio.run, never closed: drained when the loop ends
        "client = OpenMeterBilling(base_url=URL)\n"
        "async def main():\n"
        "    return [client.events.submit(type='t', subject='s') for _ in range(50)]\n"
        "ids = asyncio.run(main())",
        # sync facade, never closed: its loop thread flushes at exit
        "client = SyncOpenMeterBilling(base_url=URL)\n"
        "ids = [client.events.submit(type='t', subject='s') for _ in range(50)]",
    ],
    ids=["no-loop", "asyncio-run-unclosed", "sync-unclosed"],
)
def test_events_submitted_before_exit_are_delivered(server, body: str) -> None:
    url, faulty = server
    script = (
        "import asyncio, json\n"
        "from openmeter_billing import OpenMeterBilling, SyncOpenMeterBilling\n"
        f"URL = {url!r}\n{body}\nprint(json.dumps(ids))\n"
    )
    done = run_script(script, timeout=30)
    assert done.returncode == 0, done.stderr
    ids = done.last_json()
    assert faulty.stored_ids() == dict.fromkeys(ids, 1)  # type: ignore[arg-type]
    assert done.seconds < 15


def test_exit_reports_what_memory_mode_could_not_send(server) -> None:
    url, faulty = server
    faulty.down()
    done = run_script(
        f"""
        import json
        from openmeter_billing import IngestOptions, OpenMeterBilling
        def report(ids, why):
            print(json.dumps([len(ids), why]), flush=True)
        options = IngestOptions(drain_timeout=0.5, on_drop=report)
        client = OpenMeterBilling(base_url={url!r}, ingest=options)
        client.events.submit(type="t", subject="s")
        """,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.last_json() == [1, "interpreter exit"]
    assert "dropping 1 usage events" in done.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_its_own_queue_and_flusher(server) -> None:
    url, faulty = server
    done = run_script(
        f"""
        import json, os
        from openmeter_billing import OpenMeterBilling
        client = OpenMeterBilling(base_url={url!r})
        parent_id = client.events.submit(type="t", subject="parent")
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            child_id = client.events.submit(type="t", subject="child")
            os.write(write, json.dumps([child_id, client.events.stats().submitted]).encode())
            raise SystemExit(0)  # a normal exit: the child's own flusher delivers its event
        os.waitpid(pid, 0)
        child_id, child_submitted = json.loads(os.read(read, 1000))
        print(json.dumps([parent_id, child_id, child_submitted]))
        """,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    parent_id, child_id, child_submitted = done.last_json()  # type: ignore[misc]
    assert child_submitted == 1  # the parent's queued event is not the child's to send
    assert faulty.stored_ids() == {parent_id: 1, child_id: 1}


_PRODUCER = """
import sys, time
from openmeter_billing import IngestOptions, OpenMeterBilling, SQLiteOutbox
client = OpenMeterBilling(base_url=sys.argv[1], outbox=SQLiteOutbox(sys.argv[2]),
                          ingest=IngestOptions(batch_size=20, flush_interval=0.02))
while True:
    event_id = client.events.submit(type="t", subject="s")
    sys.stdout.write(event_id + "\\n")
    sys.stdout.flush()
"""


def sigkill_producers(url: str, path: Path, kills: int, seed: int = 1) -> list[str]:
    """Start producers and SIGKILL each mid-stream; return every id `submit` returned."""
    import random

    rng = random.Random(seed)
    returned: list[str] = []
    for _ in range(kills):
        child = subprocess.Popen(
            [sys.executable, "-c", _PRODUCER, url, str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        deadline = time.monotonic() + 20
        wanted = rng.randint(20, 200)
        lines: list[str] = []
        while len(lines) < wanted and time.monotonic() < deadline:
            lines.append(child.stdout.readline().strip())
        os.kill(child.pid, signal.SIGKILL)
        rest, _ = child.communicate(timeout=20)
        returned += [line for line in [*lines, *rest.splitlines()] if line]
    return returned


def test_sigkilled_producers_lose_nothing_with_a_sqlite_outbox(server, tmp_path) -> None:
    url, faulty = server
    path = tmp_path / "outbox.db"
    returned = sigkill_producers(url, path, kills=4)
    assert len(returned) >= 80
    done = run_script(
        f"""
        import asyncio, json
        from openmeter_billing import OpenMeterBilling, SQLiteOutbox
        async def main():
            async with OpenMeterBilling(base_url={url!r}, outbox=SQLiteOutbox({str(path)!r})) as c:
                return await c.events.flush(timeout=20)
        print(json.dumps(asyncio.run(main())))
        """,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.last_json() == 0
    stored = faulty.stored_ids()
    lost = [i for i in returned if i not in stored]
    assert lost == []
    assert max(stored.values()) == 1
    redelivered = sum(1 for n in faulty.acknowledged.values() if n > 1)
    print(json.dumps({"returned": len(returned), "redelivered": redelivered}))
    assert collections.Counter(returned).most_common(1)[0][1] == 1
