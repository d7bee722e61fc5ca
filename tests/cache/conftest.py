"""Cache fixtures: Local OpenMeter behind a transport that counts value reads and fails on demand.

Local OpenMeter's own fault injection is being built elsewhere; until it lands, outages are a
wrapper transport: ``down`` raises a connection error, ``status`` answers that HTTP status, and
``hang`` holds every request until the test releases it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from openmeter_billing import EntitlementCache, OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter

START = datetime(2025, 3, 10, 8, 0, 30, tzinfo=timezone.utc)


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Upstream(httpx.AsyncBaseTransport):
    """Local OpenMeter with a request log and a switch for outages."""

    def __init__(self, local: LocalOpenMeter) -> None:
        self.local = local
        self.mode = "ok"  # ok | down | status | hang
        self.status = 503
        self.headers: dict[str, str] = {}
        self.released = asyncio.Event()
        self.paths: list[str] = []

    def value_reads(self, feature: str | None = None) -> int:
        """GETs of an entitlement value (of one feature, or any)."""
        return sum(
            1
            for path in self.paths
            if path.endswith("/value") and (feature is None or f"/{feature}/" in path)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "status":
            return httpx.Response(self.status, headers=self.headers, json={"title": "unavailable"})
        if self.mode == "hang":
            await self.released.wait()
        return await self.local.handle_async_request(request)


async def until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait (really) for background work, failing the test if it never happens."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def local() -> LocalOpenMeter:
    return LocalOpenMeter(start=START)


@pytest.fixture
def upstream(local: LocalOpenMeter) -> Upstream:
    return Upstream(local)


async def seed(client: OpenMeterBilling, *, amount: float = 100, features: int = 1) -> None:
    """A SUM meter, features ``tokens`` (+ ``f1``...), customer ``acme`` entitled to each."""
    await client.meters.create(
        slug="tokens", event_type="tokens", aggregation="SUM", value_property="$.tokens"
    )
    await client.customers.create(name="Acme", key="acme", subject_keys=["acme"])
    for index in range(features):
        key = "tokens" if index == 0 else f"f{index}"
        await client.features.create(key=key, name=key, meter_slug="tokens")
        await client.entitlements.create(
            "acme",
            {
                "type": "metered",
                "featureKey": key,
                "usagePeriod": {"interval": "MONTH"},
                "issue": {"amount": amount},
            },
        )


def make_client(upstream: Upstream, cache: EntitlementCache, **kwargs: Any) -> OpenMeterBilling:
    return OpenMeterBilling(
        base_url=LocalOpenMeter.base_url, transport=upstream, cache=cache, max_retries=0, **kwargs
    )


@pytest.fixture
async def om(upstream: Upstream, clock: FakeClock) -> AsyncIterator[OpenMeterBilling]:
    """A client with a 30 s cache on a fake clock, ``acme`` entitled to 100 ``tokens``."""
    cache = EntitlementCache(ttl=30.0, clock=clock, rate=1000.0, miss_timeout=0.5)
    async with make_client(upstream, cache) as client:
        await seed(client)
        upstream.paths.clear()
        yield client
