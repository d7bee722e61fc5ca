"""The cache under the runtime: a second event loop, a forked child, and interpreter exit."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest
from cache.conftest import FakeClock, Upstream, make_client, seed
from runtime._scripts import run_script

from openmeter_billing import EntitlementCache
from openmeter_billing.local import LocalOpenMeter


def test_the_refresher_runs_on_each_event_loop_the_client_is_used_on() -> None:
    clock = FakeClock()
    upstream = Upstream(LocalOpenMeter())
    cache = EntitlementCache(ttl=30, clock=clock, rate=1000)
    client = make_client(upstream, cache)

    async def first() -> None:
        await seed(client)
        await client.entitlements.value("acme", "tokens")

    async def second() -> str:
        clock.advance(31)
        stale = await client.entitlements.value("acme", "tokens")  # queues a refresh
        for _ in range(200):
            if cache.peek("acme", "tokens") is not None:
                break
            await asyncio.sleep(0.005)
        refreshed = cache.peek("acme", "tokens")
        await client.aclose()
        return f"{stale.source}->{refreshed.source if refreshed else None}"

    asyncio.run(first())  # this loop ends without aclose: the runtime drains it
    assert asyncio.run(second()) == "stale->cache"


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork")
def test_a_forked_child_answers_from_the_inherited_cache_and_refreshes_on_its_own() -> None:
    finished = run_script(
        """
        import asyncio, json, os
        from openmeter_billing import EntitlementCache
        from openmeter_billing.local import LocalOpenMeter

        now = [1_700_000_000.0]
        local = LocalOpenMeter()
        client = local.client(cache=EntitlementCache(ttl=30, clock=lambda: now[0]))

        async def setup():
            await client.features.create(key="seats", name="Seats")
            await client.customers.create(name="Acme", key="acme")
            await client.entitlements.create("acme", {"type": "boolean", "featureKey": "seats"})
            return (await client.entitlements.value("acme", "seats")).source

        async def child():
            cached = (await client.entitlements.value("acme", "seats")).source
            now[0] += 31
            stale = (await client.entitlements.value("acme", "seats")).source
            for _ in range(200):
                if client.cache.peek("acme", "seats") is not None:
                    break
                await asyncio.sleep(0.005)
            await client.aclose()
            return [cached, stale, client.cache.peek("acme", "seats") is not None]

        first = asyncio.run(setup())
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.write(write, json.dumps(asyncio.run(child())).encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        print(json.dumps([first, json.loads(os.read(read, 1000))]))
        """,
        warnings="error",
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.last_json() == ["live", ["cache", "stale", True]]
