"""The cached hot path (issue 12): what ``benchmarks/hot_path.py --cache`` measures and prints.

Sections, each measured against a baseline in the same run:

- cached value: ``await client.entitlements.value(customer, feature)`` on a fresh key, per call
  (p50/p99 of ``perf_counter_ns``) and CPU per call, vs a bare ``await`` of an ``async def`` that
  does a dict lookup; and through ``SyncOpenMeterBilling`` vs a plain dict lookup;
- uncached value over the loopback server: our client on httpx and on ``AiohttpTransport`` vs raw
  aiohttp, raw httpx and (when installed) the official ``openmeter`` SDK; the sync facade vs a raw
  ``httpx.Client``;
- upstream requests: 1,000 concurrent cold reads of one key; 60 s (``--seconds``) of 500 keys read
  at 1,000 reads/s in real time (Local OpenMeter in process), against the token bucket's rate;
- outage: 500 keys read once, then every upstream request fails (a failing transport), the clock
  passes the TTL, and 20,000 reads follow: answers by source, exceptions, p99.
"""

from __future__ import annotations

import asyncio
import gc
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from openmeter_billing import EntitlementCache, OpenMeterBilling, SyncOpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.transports import AiohttpTransport

Row = dict[str, Any]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class Failing(httpx.AsyncBaseTransport):
    """Local OpenMeter until ``down`` is set; then every request is a refused connection."""

    def __init__(self, local: LocalOpenMeter) -> None:
        self.local, self.down, self.value_reads = local, False, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/value"):
            self.value_reads += 1
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        return await self.local.handle_async_request(request)


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _timed(call: Callable[[], Awaitable[object]], calls: int) -> tuple[list[float], float]:
    """Per-call µs and CPU µs per call."""
    samples = []
    clock = time.perf_counter_ns
    cpu = time.process_time()
    for _ in range(calls):
        start = clock()
        await call()
        samples.append((clock() - start) / 1000)
    return samples, (time.process_time() - cpu) / calls * 1e6


def _timed_sync(call: Callable[[], object], calls: int) -> tuple[list[float], float]:
    samples = []
    clock = time.perf_counter_ns
    cpu = time.process_time()
    for _ in range(calls):
        start = clock()
        call()
        samples.append((clock() - start) / 1000)
    return samples, (time.process_time() - cpu) / calls * 1e6


def _summarise(name: str, runs: list[tuple[list[float], float]], baseline: str | None) -> Row:
    p50s = [statistics.median(s) for s, _ in runs]
    return {
        "measure": name,
        "p50_us": statistics.median(p50s),
        "p99_us": statistics.median(_pct(s, 0.99) for s, _ in runs),
        "cpu_us": statistics.median(c for _, c in runs),
        "min_p50": min(p50s),
        "max_p50": max(p50s),
        "baseline": baseline,
    }


async def _seed(client: OpenMeterBilling, customers: int = 1) -> None:
    await client.meters.create(
        slug="tokens", event_type="tokens", aggregation="SUM", value_property="$.tokens"
    )
    await client.features.create(key="tokens", name="Tokens", meter_slug="tokens")
    for index in range(customers):
        key = f"c{index}"
        await client.customers.create(name=key, key=key)
        await client.entitlements.create(
            key,
            {
                "type": "metered",
                "featureKey": "tokens",
                "usagePeriod": {"interval": "MONTH"},
                "issue": {"amount": 1_000_000},
            },
        )


async def cached_rows(calls: int, repeat: int) -> list[Row]:
    """Cached value vs a bare awaited dict lookup; the sync facade vs a plain dict lookup."""
    local = LocalOpenMeter()
    table = {("c0", "tokens"): object()}

    async def lookup() -> object:
        return table.get(("c0", "tokens"))

    async with local.client(cache=EntitlementCache()) as client:
        await _seed(client)
        await client.entitlements.value("c0", "tokens")
        runs: dict[str, list[tuple[list[float], float]]] = {"dict": [], "cached": []}
        for _ in range(repeat):
            gc.collect()
            runs["dict"].append(await _timed(lookup, calls))
            runs["cached"].append(
                await _timed(lambda: client.entitlements.value("c0", "tokens"), calls)
            )
    return [
        _summarise("await dict lookup (baseline)", runs["dict"], None),
        _summarise("cached value(), async", runs["cached"], "await dict lookup (baseline)"),
    ]


def cached_sync_rows(calls: int, repeat: int) -> list[Row]:
    """A cached value through the sync facade vs a plain dict lookup (no event loop running)."""
    local = LocalOpenMeter()
    table = {("c0", "tokens"): object()}
    sync_runs: dict[str, list[tuple[list[float], float]]] = {"dict": [], "cached": []}
    with local.sync_client(cache=EntitlementCache()) as sync:
        local_client = sync.async_client
        sync._loop.run(lambda: _seed(local_client))
        sync.entitlements.value("c0", "tokens")
        for _ in range(repeat):
            sync_runs["dict"].append(_timed_sync(lambda: table.get(("c0", "tokens")), calls))
            sync_runs["cached"].append(
                _timed_sync(lambda: sync.entitlements.value("c0", "tokens"), calls)
            )
    return [
        _summarise("dict lookup, sync (baseline)", sync_runs["dict"], None),
        _summarise(
            "cached value(), sync facade", sync_runs["cached"], "dict lookup, sync (baseline)"
        ),
    ]


async def uncached_rows(url: str, calls: int, repeat: int) -> list[Row]:
    """One uncached value read per call over the loopback server, several stacks."""
    import aiohttp

    path = "/api/v2/customers/c0/entitlements/tokens/value"
    async with (
        OpenMeterBilling(base_url=url) as over_httpx,
        OpenMeterBilling(base_url=url, transport=AiohttpTransport()) as over_aiohttp,
        httpx.AsyncClient(base_url=url) as raw_httpx,
        aiohttp.ClientSession(url) as raw_aiohttp,
    ):
        await _seed(over_httpx)

        async def httpx_get() -> object:
            return (await raw_httpx.get(path)).json()

        async def aiohttp_get() -> object:
            async with raw_aiohttp.get(path) as response:
                return await response.json()

        calls_by_name: dict[str, Callable[[], Awaitable[object]]] = {
            "raw aiohttp (baseline)": aiohttp_get,
            "raw httpx": httpx_get,
            "client on httpx": lambda: over_httpx.entitlements.value("c0", "tokens"),
            "client on AiohttpTransport": lambda: over_aiohttp.entitlements.value("c0", "tokens"),
        }
        official = _official_sdk(url)
        if official is not None:
            calls_by_name["official openmeter SDK"] = official
        runs: dict[str, list[tuple[list[float], float]]] = {name: [] for name in calls_by_name}
        for call in calls_by_name.values():
            await _timed(call, max(10, calls // 10))  # warm the pool
        for _ in range(repeat):
            for name, call in calls_by_name.items():
                runs[name].append(await _timed(call, calls))
    base = "raw aiohttp (baseline)"
    return [_summarise(name, r, None if name == base else base) for name, r in runs.items()]


def _official_sdk(url: str) -> Callable[[], Awaitable[object]] | None:
    try:
        from openmeter.aio import Client  # type: ignore[import-not-found]
    except ImportError:
        return None
    client = Client(endpoint=url)

    async def read() -> object:
        return await client.get_customer_entitlement_value("c0", "tokens")

    return read


def sync_rows(url: str, calls: int, repeat: int) -> list[Row]:
    """The sync facade's uncached call vs a raw ``httpx.Client`` call (the thread hop's cost)."""
    path = "/api/v2/customers/c0/entitlements/tokens/value"
    with SyncOpenMeterBilling(base_url=url) as sync, httpx.Client(base_url=url) as raw:
        sync.entitlements.value("c0", "tokens")
        raw.get(path)
        runs: dict[str, list[tuple[list[float], float]]] = {"raw": [], "facade": []}
        for _ in range(repeat):
            runs["raw"].append(_timed_sync(lambda: raw.get(path).json(), calls))
            runs["facade"].append(
                _timed_sync(lambda: sync.entitlements.value("c0", "tokens"), calls)
            )
    base = "raw httpx.Client (baseline)"
    return [
        _summarise(base, runs["raw"], None),
        _summarise("SyncOpenMeterBilling, uncached", runs["facade"], base),
    ]


async def upstream_rows(seconds: float = 60.0) -> list[Row]:
    """Upstream value reads: 1,000 concurrent cold reads of one key; then ``seconds`` of real
    time in which 500 keys are read at 1,000 reads/s (TTL 30 s, so each key expires once a
    minute and the refresher has to keep up under the token bucket)."""
    local = LocalOpenMeter()
    counting = Failing(local)
    cache = EntitlementCache(ttl=30.0)
    async with OpenMeterBilling(
        base_url=LocalOpenMeter.base_url, transport=counting, cache=cache
    ) as client:
        await _seed(client, customers=500)
        counting.value_reads = 0
        await asyncio.gather(*(client.entitlements.value("c0", "tokens") for _ in range(1000)))
        cold = counting.value_reads
        for index in range(500):  # every key read once (outside the bucket), then the reads
            await client.entitlements.value(f"c{index}", "tokens", fresh=True)
        counting.value_reads = 0
        rng = random.Random(12)
        sources: dict[str, int] = {}
        started = time.monotonic()
        done = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(elapsed * 1000)  # paced: 1,000 reads per second of real time
            for _ in range(due - done):
                value = await client.entitlements.value(f"c{rng.randrange(500)}", "tokens")
                sources[value.source] = sources.get(value.source, 0) + 1
            done = max(done, due)
            await asyncio.sleep(0.005)
        rate = counting.value_reads / seconds
    return [
        {"measure": "1,000 concurrent cold reads of one key", "requests": cold, "goal": "1"},
        {
            "measure": f"{seconds:g} s of 500 keys at 1,000 reads/s",
            "requests": counting.value_reads,
            "goal": f"<= 25/s (got {rate:.1f}/s; {done} reads: {sources})",
        },
    ]


async def outage_rows() -> list[Row]:
    """500 warm keys, then OpenMeter down past the TTL: what 20,000 reads get."""
    local = LocalOpenMeter()
    failing = Failing(local)
    clock = FakeClock()
    cache = EntitlementCache(ttl=30.0, clock=clock)
    async with OpenMeterBilling(
        base_url=LocalOpenMeter.base_url, transport=failing, cache=cache, max_retries=0
    ) as client:
        await _seed(client, customers=500)
        for index in range(500):  # fresh=True: warm-up reads do not spend the bucket's tokens
            await client.entitlements.value(f"c{index}", "tokens", fresh=True)
        failing.down = True
        clock.now += 31
        sources: dict[str, int] = {}
        errors = 0
        samples: list[float] = []
        cpu = time.process_time()
        rng = random.Random(7)
        keys = [f"c{rng.randrange(500)}" for _ in range(20_000)]
        for step, key in enumerate(keys):
            start = time.perf_counter_ns()
            try:
                value = await client.entitlements.value(key, "tokens")
            except Exception:
                errors += 1
                value = None
            samples.append((time.perf_counter_ns() - start) / 1000)
            if value is not None:  # counted outside the timed call
                sources[value.source] = sources.get(value.source, 0) + 1
            if step % 100 == 0:
                await asyncio.sleep(0)
    return [
        {
            "measure": "outage, 20,000 reads of 500 seen keys",
            "sources": sources,
            "exceptions": errors,
            "p50_us": statistics.median(samples),
            "p99_us": _pct(samples, 0.99),
            "cpu_us": (time.process_time() - cpu) / len(keys) * 1e6,
        }
    ]


def format_latency(rows: list[Row]) -> str:
    by_name = {row["measure"]: row for row in rows}
    lines = [
        f"{'measure':<34} {'p50 µs':>9} {'p99 µs':>9} {'CPU µs':>9} {'min..max p50':>16}  ratio",
    ]
    for row in rows:
        base = by_name.get(row["baseline"]) if row["baseline"] else None
        ratio = (
            f"{row['p50_us'] / base['p50_us']:.2f}x p50, {row['cpu_us'] / base['cpu_us']:.2f}x CPU"
            if base
            else "baseline"
        )
        spread = f"{row['min_p50']:.1f}..{row['max_p50']:.1f}"
        lines.append(
            f"{row['measure']:<34} {row['p50_us']:>9.1f} {row['p99_us']:>9.1f} "
            f"{row['cpu_us']:>9.1f} {spread:>16}  {ratio}"
        )
    return "\n".join(lines)


def run_all(url: str, calls: int, repeat: int, seconds: float = 60.0) -> dict[str, Any]:
    """Every section; the uncached ones use the loopback server at ``url``."""
    cached_calls = max(calls, 5000)
    return {
        "cached": asyncio.run(cached_rows(cached_calls, repeat))
        + cached_sync_rows(cached_calls, repeat),
        "uncached": asyncio.run(uncached_rows(url, calls, repeat)) + sync_rows(url, calls, repeat),
        "upstream": asyncio.run(upstream_rows(seconds)),
        "outage": asyncio.run(outage_rows()),
    }


def print_report(results: dict[str, Any]) -> None:
    """The tables of `run_all`."""
    print("\ncached entitlement value (per call; ratio against the baseline above it)")
    print(format_latency(results["cached"]))
    print("\nuncached entitlement value over the loopback server")
    print(format_latency(results["uncached"]))
    print("\nupstream value requests")
    for row in results["upstream"]:
        print(f"  {row['measure']:<40} {row['requests']:>6}   goal {row['goal']}")
    print("\noutage (every upstream request refused, clock past the TTL)")
    for row in results["outage"]:
        print(
            f"  {row['measure']}: sources {row['sources']}, exceptions {row['exceptions']}, "
            f"p50 {row['p50_us']:.1f} µs, p99 {row['p99_us']:.1f} µs, "
            f"CPU {row['cpu_us']:.1f} µs/read (with the failing refreshes)"
        )
