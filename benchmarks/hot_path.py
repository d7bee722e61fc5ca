"""Hot-path benchmark: entitlement value reads and event ingests, typed client versus bare httpx.

What it answers: how much does ``OpenMeterBilling`` add on top of the HTTP request it has to send
anyway? Each operation is measured three ways in ONE run:

- ``client``: ``OpenMeterBilling`` over real HTTP (Local OpenMeter behind the loopback server);
- ``bare``: an ``httpx.AsyncClient`` sending byte-identical requests to the same server (the
  requests are captured from the client, and the script checks on the wire that they match);
- ``in-process``: ``OpenMeterBilling`` with ``transport=local`` (no sockets at all).

Repetitions interleave the modes (and alternate their order), so machine noise hits all of them.
The table shows medians; ``vs bare`` is the mode's ops/s divided by bare's (1.00 = no overhead).

By default the server runs in a child process, so on a 2-core machine client and server each get
a core and the client's own cost is not diluted by the server's work competing for one GIL
(``--server thread`` runs it in this process instead, as ``serve_in_thread`` does).

Run: ``python benchmarks/hot_path.py [--calls 2000] [--concurrency 8] [--repeat 5] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openmeter_billing import OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local._server import LoopbackServer

MODES = ("client", "bare", "in-process")
FEATURE = "tokens"
READER = "bench-reader"  # reads its entitlement value; never gets events, so reads stay uniform
WRITER = "bench-writer"  # receives every ingested event
CAPTURED = "/__bench/captured"  # served by the recorder, never by Local OpenMeter
# Headers httpx derives per request; the bare client lets httpx compute them the same way.
_PER_REQUEST_HEADERS = frozenset({"host", "content-length"})

Call = Callable[[], Awaitable[object]]


@dataclass
class Operation:
    """One hot-path operation and how each mode performs it."""

    name: str
    path: str
    calls: dict[str, Call]
    seconds: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Captured:
    """A request as it arrived at the server, for replay and for the wire check."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def replay_headers(self) -> dict[str, str]:
        """The headers a bare client must set itself to send the same request."""
        return {k: v for k, v in self.headers if k not in _PER_REQUEST_HEADERS}


class Recorder(httpx.BaseTransport):
    """Wraps Local OpenMeter server-side and remembers the last requests exactly as received.

    ``GET /__bench/captured`` returns them, so the wire check works wherever the server runs.
    """

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen: collections.deque[dict[str, Any]] = collections.deque(maxlen=2)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == CAPTURED:
            return httpx.Response(200, json=list(self.seen))
        self.seen.append(
            {
                "method": request.method,
                "target": request.url.raw_path.decode("ascii"),
                "headers": [[k.lower(), v] for k, v in request.headers.multi_items()],
                "body": base64.b64encode(request.read()).decode(),
            }
        )
        return self.inner.handle_request(request)


def serve(port: int = 0) -> None:
    """Child-process mode: serve a fresh Local OpenMeter and print its URL.

    Runs until stdin closes (the parent closes it when done, and the OS closes it if the
    parent dies, so no server outlives its benchmark) or until interrupted.
    """
    server = LoopbackServer(Recorder(LocalOpenMeter()), port=port)

    def stop_at_eof() -> None:
        sys.stdin.read()
        server.shutdown()

    threading.Thread(target=stop_at_eof, daemon=True).start()
    print(server.url, flush=True)
    server.serve_forever()


@contextlib.contextmanager
def _server(where: str) -> Iterator[str]:
    if where == "thread":
        with LoopbackServer(Recorder(LocalOpenMeter()), port=0) as server:
            yield server.url
        return
    script = str(Path(__file__).resolve())
    with subprocess.Popen(
        [sys.executable, script, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            url = child.stdout.readline().strip()
            if not url.startswith("http://"):
                raise RuntimeError(f"the server process did not start (it printed {url!r})")
            yield url
        finally:
            child.stdin.close()  # the child's cue to shut down
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()


async def _captured(bare: httpx.AsyncClient) -> list[Captured]:
    response = await bare.get(CAPTURED)
    response.raise_for_status()
    return [
        Captured(
            method=item["method"],
            target=item["target"],
            headers=[(k, v) for k, v in item["headers"]],
            body=base64.b64decode(item["body"]),
        )
        for item in response.json()
    ]


async def _run(call: Call, calls: int, concurrency: int) -> float:
    """Wall-clock seconds for ``calls`` calls spread over ``concurrency`` tasks."""
    remaining = iter(range(calls))  # shared: each task takes the next call until none are left

    async def worker() -> None:
        for _ in remaining:
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


async def _setup(client: OpenMeterBilling) -> None:
    await client.meters.create(
        slug=FEATURE, event_type=FEATURE, aggregation="SUM", value_property="$.tokens"
    )
    await client.features.create(key=FEATURE, name="Tokens", meter_slug=FEATURE)
    for key in (READER, WRITER):
        await client.customers.create(name=key, key=key, subject_keys=[key])
    await client.entitlements.create(
        READER,
        {
            "type": "metered",
            "featureKey": FEATURE,
            "usagePeriod": {"interval": "MONTH"},
            "issue": {"amount": 1_000_000},
        },
    )


def _event_id(body: bytes) -> str:
    return str(json.loads(body)["id"])


def _wire_check(client_sent: Captured, bare_sent: Captured) -> list[str]:
    """Differences between two requests on the wire, ignoring the per-event random id."""
    problems = []
    if (client_sent.method, client_sent.target) != (bare_sent.method, bare_sent.target):
        problems.append(f"request line {client_sent.target} != {bare_sent.target}")
    if sorted(client_sent.headers) != sorted(bare_sent.headers):
        problems.append(f"headers {sorted(client_sent.headers)} != {sorted(bare_sent.headers)}")
    body = client_sent.body
    if body.startswith(b"{") and b'"id"' in body:
        body = body.replace(_event_id(body).encode(), _event_id(bare_sent.body).encode())
    if body != bare_sent.body:
        problems.append(f"body {client_sent.body!r} != {bare_sent.body!r}")
    return problems


async def _operations(
    over_http: OpenMeterBilling, in_process: OpenMeterBilling, bare: httpx.AsyncClient
) -> tuple[list[Operation], list[str]]:
    """Capture what the client sends, build byte-identical bare calls and check them on the wire."""
    await over_http.entitlements.value(READER, FEATURE)
    await over_http.events.ingest(type=FEATURE, customer=WRITER, data={"tokens": 5})
    value_sent, ingest_sent = await _captured(bare)
    placeholder = _event_id(ingest_sent.body).encode()

    async def bare_value() -> None:
        response = await bare.get(value_sent.target, headers=value_sent.replay_headers())
        response.raise_for_status()

    async def bare_ingest() -> None:
        body = ingest_sent.body.replace(placeholder, str(uuid.uuid4()).encode())
        headers = ingest_sent.replay_headers()
        response = await bare.post(ingest_sent.target, content=body, headers=headers)
        response.raise_for_status()

    await bare_value()
    await bare_ingest()
    bare_value_sent, bare_ingest_sent = await _captured(bare)
    problems = _wire_check(value_sent, bare_value_sent)
    problems += _wire_check(ingest_sent, bare_ingest_sent)

    def value_with(client: OpenMeterBilling) -> Call:
        return lambda: client.entitlements.value(READER, FEATURE)

    def ingest_with(client: OpenMeterBilling) -> Call:
        return lambda: client.events.ingest(type=FEATURE, customer=WRITER, data={"tokens": 5})

    value_calls = {"client": value_with(over_http), "bare": bare_value}
    ingest_calls = {"client": ingest_with(over_http), "bare": bare_ingest}
    value_calls["in-process"] = value_with(in_process)
    ingest_calls["in-process"] = ingest_with(in_process)
    operations = [
        Operation("entitlement value", f"GET {value_sent.target}", value_calls),
        Operation("event ingest", f"POST {ingest_sent.target}", ingest_calls),
    ]
    return operations, problems


async def _repeat(operations: Sequence[Operation], args: argparse.Namespace) -> int:
    """Interleaved repetitions within the time budget; returns how many ran."""
    started = time.perf_counter()
    for repetition in range(args.repeat):
        began = time.perf_counter()
        # Alternate the order, so neither mode always runs first (or right after GC).
        order = MODES if repetition % 2 == 0 else MODES[::-1]
        for operation in operations:
            for mode in order:
                elapsed = await _run(operation.calls[mode], args.calls, args.concurrency)
                operation.seconds.setdefault(mode, []).append(elapsed)
        spent = time.perf_counter() - started
        if spent + (time.perf_counter() - began) > args.budget:
            return repetition + 1  # another repetition would overrun the budget
    repeat: int = args.repeat
    return repeat


async def _measure(args: argparse.Namespace) -> tuple[list[Operation], list[str], int]:
    local = LocalOpenMeter()
    with _server(args.server) as url:
        async with (
            OpenMeterBilling(base_url=url) as over_http,
            OpenMeterBilling(base_url=LocalOpenMeter.base_url, transport=local) as in_process,
            httpx.AsyncClient(base_url=url) as bare,
        ):
            await _setup(over_http)
            await _setup(in_process)
            operations, problems = await _operations(over_http, in_process, bare)
            warm_up = max(1, min(100, args.calls // 10))
            for operation in operations:
                for mode in MODES:  # opens the pools' connections and fills caches
                    await _run(operation.calls[mode], warm_up, args.concurrency)
            repetitions = await _repeat(operations, args)
    return operations, problems, repetitions


def _rows(operations: Sequence[Operation], calls: int) -> list[dict[str, Any]]:
    rows = []
    for operation in operations:
        medians = {mode: statistics.median(operation.seconds[mode]) for mode in MODES}
        for mode in MODES:
            rows.append(
                {
                    "operation": operation.name,
                    "path": operation.path,
                    "mode": mode,
                    "ops_per_s": round(calls / medians[mode], 1),
                    "us_per_op": round(medians[mode] / calls * 1e6, 1),
                    "vs_bare": round(medians["bare"] / medians[mode], 3),
                }
            )
    return rows


_COLUMNS = (
    ("operation", "operation", "<", "{}"),
    ("path", "path", "<", "{}"),
    ("mode", "mode", "<", "{}"),
    ("ops_per_s", "median ops/s", ">", "{:.0f}"),
    ("us_per_op", "median µs/op", ">", "{:.0f}"),
    ("vs_bare", "vs bare", ">", "{:.2f}x"),
)


def _table(rows: Sequence[dict[str, Any]]) -> str:
    cells = [[fmt.format(row[key]) for key, _, _, fmt in _COLUMNS] for row in rows]
    header = [title for _, title, _, _ in _COLUMNS]
    widths = [max(len(header[i]), *(len(line[i]) for line in cells)) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *cells]
    return "\n".join(
        "  ".join(f"{text:{_COLUMNS[i][2]}{widths[i]}}" for i, text in enumerate(line)).rstrip()
        for line in lines
    )


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent tasks")
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (median reported)")
    parser.add_argument(
        "--budget", type=float, default=45.0, help="seconds; no new repetition after it"
    )
    parser.add_argument("--server", choices=("process", "thread"), default="process")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--cache",
        action="store_true",
        help="measure the entitlement cache, transports and sync facade (cache_path.py) instead",
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="--cache: length of the paced read run"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("calls", "concurrency", "repeat"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table (or JSON); returns the exit status."""
    args = _parse(argv)
    if args.serve:
        serve()
        return 0
    started = time.perf_counter()
    if args.cache:
        return _cache_report(args, started)
    operations, problems, repetitions = asyncio.run(_measure(args))
    rows = _rows(operations, args.calls)
    settings = {
        "calls": args.calls,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "repetitions_run": repetitions,
        "server": args.server,
    }
    wire = "; ".join(problems) or "identical"
    if args.json:
        print(json.dumps({"settings": settings, "wire_check": wire, "rows": rows}, indent=2))
        return 0
    print(
        f"hot path: {args.calls} calls x {repetitions} of {args.repeat} repetitions, "
        f"concurrency {args.concurrency}, server in a {args.server}, "
        f"Python {sys.version.split()[0]}"
    )
    print(_table(rows))
    print(f"wire check (client vs bare requests): {wire}")
    print(f"total time {time.perf_counter() - started:.1f} s")
    return 0


def _cache_report(args: argparse.Namespace, started: float) -> int:
    """The cached hot path (issue 12): see ``cache_path.py`` beside this script."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cache_path

    with _server(args.server) as url:
        results = cache_path.run_all(url, args.calls, args.repeat, args.seconds)
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return 0
    print(
        f"cached hot path: {args.calls} calls x {args.repeat} repetitions (cached rows: at least "
        f"5000 calls), server in a {args.server}, Python {sys.version.split()[0]}"
    )
    cache_path.print_report(results)
    print(f"total time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
