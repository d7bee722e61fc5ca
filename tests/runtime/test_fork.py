"""After os.fork() a client starts fresh connections: parent and child never read each other's
responses, and nothing hangs in the child (gunicorn --preload, Celery prefork and uWSGI fork)."""

from __future__ import annotations

import sys

import pytest

from ._scripts import run_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="os.fork() needs a POSIX system")

# Each process reads its own customer 300 times over real keep-alive HTTP through ONE client
# created (and used) before the fork, and counts answers that name someone else.
PRELUDE = """
    import asyncio, json, os, sys, threading
    from openmeter_billing import OpenMeterBilling, SyncOpenMeterBilling
    from openmeter_billing.local import LocalOpenMeter
    from openmeter_billing.local._server import LoopbackServer

    READS = 300
    local = LocalOpenMeter()
    server = LoopbackServer(local, port=0)
    server.__enter__()
    with local.sync_client() as setup:
        for key in ("parent", "child"):
            setup.customers.create(key=key, name=key, subject_keys=[key])

    def report(name, crossed, errors):
        print(json.dumps({"who": name, "crossed": crossed, "errors": errors}), flush=True)
"""


def _results(stdout: str) -> dict[str, dict[str, object]]:
    import json

    rows = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    return {row["who"]: row for row in rows}


def test_sync_client_used_before_fork_serves_parent_and_child_without_crossing() -> None:
    done = run_script(
        PRELUDE
        + """
    client = SyncOpenMeterBilling(base_url=server.url)
    client.customers.get("parent")  # a keep-alive connection exists before the fork

    def read_many(me):
        crossed = errors = 0
        for _ in range(READS):
            try:
                if client.customers.get(me).key != me:
                    crossed += 1
            except Exception as exc:
                errors += 1
                print(repr(exc), file=sys.stderr)
        return crossed, errors

    pid = os.fork()
    if pid == 0:
        report("child", *read_many("child"))
        os._exit(0)
    report("parent", *read_many("parent"))
    _, status = os.waitpid(pid, 0)
    client.close()
    sys.exit(os.waitstatus_to_exitcode(status))
    """,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = _results(done.stdout)
    assert set(results) == {"parent", "child"}, done.stderr
    for row in results.values():
        assert row["crossed"] == 0 and row["errors"] == 0, (row, done.stderr)


def test_async_client_with_a_running_loop_at_fork_serves_the_child_on_its_own_pool() -> None:
    # The parent keeps reading on its event loop in a thread while the child, forked meanwhile,
    # runs its own loop with the same client object.
    done = run_script(
        PRELUDE
        + """
    client = OpenMeterBilling(base_url=server.url)
    forked = threading.Event()

    async def read_many(me, between=None):
        crossed = errors = 0
        for i in range(READS):
            try:
                if (await client.customers.get(me)).key != me:
                    crossed += 1
            except Exception as exc:
                errors += 1
                print(repr(exc), file=sys.stderr)
            if between is not None and i == 5:
                between.set()
                await asyncio.sleep(0)
        return crossed, errors

    parent_result = {}
    def parent_loop():
        parent_result["r"] = asyncio.run(read_many("parent", between=forked))
    worker = threading.Thread(target=parent_loop)
    worker.start()
    forked.wait()
    pid = os.fork()
    if pid == 0:
        report("child", *asyncio.run(read_many("child")))
        os._exit(0)
    worker.join()
    report("parent", *parent_result["r"])
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
    """,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = _results(done.stdout)
    assert set(results) == {"parent", "child"}, done.stderr
    for row in results.values():
        assert row["crossed"] == 0 and row["errors"] == 0, (row, done.stderr)
