"""SQLiteLedger specifics: atomic across OS processes, WAL, off the event loop, clear file errors."""

from __future__ import annotations

import multiprocessing
import sqlite3
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from openmeter_billing import ConfigurationError
from openmeter_billing.billing.ledger import SQLiteLedger

KEYS = [f"evt_{i}" for i in range(40)]
PROCESSES = 4


def _slow_clock() -> float:
    """The ledger reads the clock between reading a row and writing its claim: widen that gap, so
    only a real lock (not luck) keeps two processes from both winning."""
    time.sleep(0.002)
    return time.time()


def _claim_in_process(path: str, index: int, start: Any, finished: Any, out: Any) -> None:
    """One worker process: claim every key at once, complete its wins, then read everything."""

    async def main() -> None:
        async with SQLiteLedger(path, now=_slow_clock) as ledger:
            start.wait(timeout=30)  # every process begins at the same moment
            won: dict[str, str] = {}

            async def claim(key: str) -> None:
                claim = await ledger.claim(key)
                if claim.state == "new":
                    won[key] = claim.token or ""

            async with anyio.create_task_group() as tg:
                for key in KEYS:
                    tg.start_soon(claim, key)
            for key, token in won.items():
                await ledger.complete(key, token, {"winner": index})
            finished.wait(timeout=30)  # nobody reads before every winner has completed
            final = {key: (await ledger.claim(key)).result for key in KEYS}
        out.put((index, sorted(won), final))

    anyio.run(main)


def test_processes_claiming_the_same_keys_get_exactly_one_winner_per_key(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children import this module by its pytest name (tests.billing...) from the rootdir.
    monkeypatch.setattr(sys, "path", [str(request.config.rootpath), *sys.path])
    ctx = multiprocessing.get_context("spawn")
    start, finished, out = ctx.Barrier(PROCESSES), ctx.Barrier(PROCESSES), ctx.Queue()
    path = str(tmp_path / "shared.sqlite3")
    workers = [
        ctx.Process(target=_claim_in_process, args=(path, i, start, finished, out))
        for i in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    try:
        reports = [out.get(timeout=60) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    wins = Counter(key for _, won, _ in reports for key in won)
    assert wins == Counter(KEYS)  # every key won once, by exactly one process
    winner_of = {key: index for index, won, _ in reports for key in won}
    for _, _, final in reports:
        assert final == {key: {"winner": winner_of[key]} for key in KEYS}


async def test_table_is_created_on_first_use_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    async with SQLiteLedger(path, table="billing_ledger") as ledger:
        assert not path.exists()  # nothing happens until the ledger is used
        await ledger.claim("k")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "billing_ledger" in tables


async def test_results_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    async with SQLiteLedger(path) as before:
        claim = await before.claim("pi_1")
        await before.complete("pi_1", claim.token or "", {"grant_id": "g_1"})
    async with SQLiteLedger(path) as after:
        assert (await after.claim("pi_1")).result == {"grant_id": "g_1"}


async def test_tables_in_one_file_are_independent(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    async with SQLiteLedger(path, table="a") as a, SQLiteLedger(path, table="b") as b:
        assert (await a.claim("k")).state == "new"
        assert (await b.claim("k")).state == "new"


async def test_database_work_runs_in_worker_threads(tmp_path: Path) -> None:
    threads: set[int] = set()

    def clock() -> float:
        threads.add(threading.get_ident())
        return time.time()

    async with SQLiteLedger(tmp_path / "l.sqlite3", now=clock) as ledger:
        claim = await ledger.claim("k")
        await ledger.complete("k", claim.token or "", {})
    assert threads
    assert threading.get_ident() not in threads


async def test_a_busy_file_is_waited_for_without_blocking_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite3"
    async with SQLiteLedger(path, busy_timeout=10) as ledger:
        await ledger.claim("warm-up")  # creates the file and table
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        ticks = 0
        result: list[str] = []

        async def claim() -> None:
            result.append((await ledger.claim("k")).state)

        async with anyio.create_task_group() as tg:
            tg.start_soon(claim)
            for _ in range(20):
                await anyio.sleep(0.01)
                ticks += 1
            assert result == []  # still waiting for the lock
            other.execute("COMMIT")
        other.close()
    assert ticks == 20
    assert result == ["new"]


async def test_a_lock_held_past_the_busy_timeout_raises(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite3"
    async with SQLiteLedger(path, busy_timeout=0.1) as ledger:
        await ledger.claim("warm-up")
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await ledger.claim("k")
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert (await ledger.claim("k")).state == "new"  # the failed claim left nothing behind


async def test_a_missing_folder_is_a_configuration_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "no-such-folder" / "ledger.sqlite3"
    async with SQLiteLedger(path) as ledger:
        with pytest.raises(ConfigurationError, match="no-such-folder"):
            await ledger.claim("k")


async def test_a_closed_ledger_refuses_further_use(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "l.sqlite3")
    await ledger.claim("k")
    await ledger.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await ledger.get("k")


async def test_in_memory_database_works_within_one_ledger() -> None:
    async with SQLiteLedger(":memory:") as ledger:
        claim = await ledger.claim("k")
        await ledger.complete("k", claim.token or "", {"ok": True})
        assert (await ledger.claim("k")).result == {"ok": True}
