"""Backfill benchmark: N customers into ``openmeter-billing local`` over loopback, end to end.

What it answers: how long does ``openmeter-billing backfill customers`` take for a user base of
100,000, how much memory does it hold, does a rerun create nothing, and does a run interrupted
half-way (Ctrl-C) resume to exactly N customers?

Everything runs as real processes: the server is ``openmeter-billing local --port 0`` (one
process per scenario, so each starts empty) and each backfill is the CLI in its own process,
whose peak RSS is read from ``wait4``. The baseline, measured in the same run, is bare httpx
POSTing the same customer bodies at the same concurrency: the floor any client pays.

Run: ``python benchmarks/backfill.py [--customers 100000] [--concurrency 8] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-m", "openmeter_billing"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@dataclass
class Row:
    """One measured scenario."""

    scenario: str
    items: int
    seconds: list[float]
    rss_mib: float | None
    created: int | None = None
    unchanged: int | None = None
    skipped: int | None = None
    failed: int | None = None
    customers_on_server: int | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.items / self.median if self.median else 0.0


@contextmanager
def local_server() -> Iterator[str]:
    """``openmeter-billing local --port 0`` in a child process; yields its URL."""
    process = subprocess.Popen(
        [*CLI, "local", "--port", "0"], stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        yield banner.split(" on ", 1)[1].split(" ", 1)[0]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def write_users(path: Path, n: int) -> Path:
    with path.open("w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"user-{i}", "email": f"user{i}@example.com"}) + "\n")
    return path


def count_customers(url: str) -> int:
    body = httpx.get(f"{url}/api/v1/customers", params={"pageSize": 1}, timeout=60).json()
    return int(body["totalCount"])


def backfill(
    url: str, users: Path, state: Path, concurrency: int, *extra: str, stop_at: float | None = None
) -> tuple[float, float, dict[str, Any] | None]:
    """Run the CLI; returns (seconds, peak RSS MiB, JSON report or None when interrupted)."""
    command = [
        *CLI, "backfill", "customers", "--from", str(users), "--base-url", url,
        "--state", str(state), "--concurrency", str(concurrency), "--rate-limit", "off",
        "--progress", "lines", "--progress-every", "0.5", "--json", *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
    )
    assert process.stderr is not None
    assert process.stdout is not None
    for line in process.stderr:
        if stop_at is not None and line.startswith("backfill customers: "):
            settled, total = line.split()[2].split("/")
            if int(settled) >= stop_at * int(total.rstrip(",")):
                process.send_signal(signal.SIGINT)
                stop_at = None
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    rss = usage.ru_maxrss / 1024  # KiB on Linux
    report = json.loads(out) if out.strip() else None
    return seconds, rss, report


async def bare_posts(url: str, n: int, concurrency: int) -> float:
    """Seconds for bare httpx to POST n customer bodies, ``concurrency`` at a time."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        next_index = iter(range(n))

        async def worker() -> None:
            for i in next_index:
                body = {
                    "key": f"bare-{i}",
                    "name": f"bare{i}@example.com",
                    "primaryEmail": f"bare{i}@example.com",
                    "usageAttribution": {"subjectKeys": [f"bare-{i}"]},
                    "metadata": {"user_id": f"bare-{i}", "email": f"bare{i}@example.com"},
                }
                (await client.post("/api/v1/customers", json=body)).raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


def run(args: argparse.Namespace, work: Path) -> list[Row]:
    n, c = args.customers, args.concurrency
    users = write_users(work / "users.jsonl", n)
    sample = write_users(work / "sample.jsonl", min(n, args.sample))
    rows: list[Row] = []
    with local_server() as url:
        seconds = [asyncio.run(bare_posts(url, min(n, args.sample), c))]
        rows.append(Row("baseline: bare httpx POST", min(n, args.sample), seconds, None))
    with local_server() as url:
        state = work / "full.json"
        seconds_, rss, report = backfill(url, users, state, c)
        assert report is not None
        rows.append(_row("backfill (fresh server)", n, seconds_, rss, report, url))
        seconds_, rss, report = backfill(url, users, state, c, "--resume")
        assert report is not None
        rows.append(_row("rerun --resume (state file)", n, seconds_, rss, report, url))
        seconds_, rss, report = backfill(url, sample, work / "none.json", c)
        assert report is not None
        rows.append(_row("rerun, no state (sample)", report["total"], seconds_, rss, report, url))
    with local_server() as url:
        state = work / "interrupted.json"
        first, rss1, finished = backfill(url, users, state, c, stop_at=0.5)
        watermark = json.loads(state.read_text())["watermark"]
        label = "NOT interrupted" if finished is not None else "Ctrl-C at 50%"
        rows.append(Row(f"{label} (saved {watermark})", n, [first], rss1,
                        customers_on_server=count_customers(url)))  # fmt: skip
        seconds_, rss, report = backfill(url, users, state, c, "--resume")
        assert report is not None
        rows.append(_row("resume after Ctrl-C", n, seconds_, rss, report, url))
    return rows


def _row(name: str, n: int, seconds: float, rss: float, report: dict[str, Any], url: str) -> Row:
    return Row(
        name, n, [seconds], rss, report["created"], report["unchanged"], report["skipped"],
        report["failed"], count_customers(url),
    )  # fmt: skip


def render(rows: list[Row], args: argparse.Namespace) -> str:
    baseline = rows[0].rate
    head = (
        f"backfill: {args.customers} customers, concurrency {args.concurrency}, server "
        f"`openmeter-billing local` in a process, Python {sys.version.split()[0]}"
    )
    columns = (
        f"{'scenario':34} {'items':>7} {'min s':>7} {'median s':>8} {'max s':>7} {'items/s':>8} "
        f"{'vs bare':>7} {'peak RSS MiB':>12} {'created':>8} {'unchanged':>9} {'skipped':>8} "
        f"{'failed':>6} {'on server':>9}"
    )
    lines = [head, columns]
    for row in rows:

        def show(value: object) -> str:
            return "-" if value is None else str(value)

        rss = "-" if row.rss_mib is None else f"{row.rss_mib:.1f}"
        lines.append(
            f"{row.scenario:34} {row.items:>7} {min(row.seconds):>7.1f} {row.median:>8.1f} "
            f"{max(row.seconds):>7.1f} {row.rate:>8.0f} {row.rate / baseline:>6.2f}x {rss:>12} "
            f"{show(row.created):>8} {show(row.unchanged):>9} {show(row.skipped):>8} "
            f"{show(row.failed):>6} {show(row.customers_on_server):>9}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--sample", type=int, default=5_000, help="size of baseline and no-state rerun"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for name in ("customers", "concurrency", "sample"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # Started in the background of a non-interactive shell (``... &``): SIGINT is ignored
        # and every child would inherit that, so Ctrl-C would interrupt nothing. A handler
        # here is reset to the default in each child, which is what the scenarios need.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    with tempfile.TemporaryDirectory() as tmp:
        rows = run(args, Path(tmp))
    if args.json:
        print(json.dumps({"settings": vars(args), "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        print(render(rows, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
