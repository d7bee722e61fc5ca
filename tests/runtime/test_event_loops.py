"""One async client across event loops: sequential asyncio.run calls and threads with their own
loops work (a pool per loop); a caller's own http_client on a second loop is a clear error."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest

from openmeter_billing import ConfigurationError, OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local._server import LoopbackServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    local = LocalOpenMeter()
    with local.sync_client() as setup:
        for key in ("a", "b"):
            setup.customers.create(key=key, name=key, subject_keys=[key])
    with LoopbackServer(local, port=0) as running:
        yield running


def test_one_client_serves_two_sequential_asyncio_runs(server: LoopbackServer) -> None:
    client = OpenMeterBilling(base_url=server.url)

    async def read(key: str) -> str:
        return (await client.customers.get(key)).key

    assert asyncio.run(read("a")) == "a"
    assert asyncio.run(read("b")) == "b"  # "Event loop is closed" before pools were per loop
    asyncio.run(client.aclose())


def test_one_client_serves_two_threads_with_their_own_loops_at_once(
    server: LoopbackServer,
) -> None:
    client = OpenMeterBilling(base_url=server.url, timeout=5)
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def worker(key: str) -> None:
        async def main() -> None:
            barrier.wait()
            results[key] = [(await client.customers.get(key)).key for _ in range(100)]

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(key,)) for key in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert errors == []
    assert results == {"a": ["a"] * 100, "b": ["b"] * 100}
    asyncio.run(client.aclose())


def test_pools_of_finished_loops_are_closed_when_their_loop_ends(server: LoopbackServer) -> None:
    client = OpenMeterBilling(base_url=server.url)
    pools: list[httpx.AsyncClient] = []

    async def read() -> None:
        await client.customers.get("a")
        pools.append(client._http.runtime.http_client())

    asyncio.run(read())
    asyncio.run(read())
    assert pools[0] is not pools[1]
    assert all(pool.is_closed for pool in pools)  # asyncio.run finalised them on its way out


def test_own_http_client_on_a_second_loop_is_a_configuration_error() -> None:
    local = LocalOpenMeter()
    with local.sync_client() as setup:
        setup.customers.create(key="a", name="a", subject_keys=["a"])
    mine = httpx.AsyncClient(transport=local)  # bound to the first loop that uses it
    client = OpenMeterBilling(base_url=local.base_url, http_client=mine)

    async def read() -> str:
        return (await client.customers.get("a")).key

    assert asyncio.run(read()) == "a"
    with pytest.raises(ConfigurationError, match="event loop it was first used on"):
        asyncio.run(read())
