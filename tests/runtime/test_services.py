"""The lifecycle owner runs background services beside requests: started lazily on the loop in
use, restarted after a crash, drained within a bound on close, at the end of asyncio.run and at
interpreter exit."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from openmeter_billing import ConfigurationError
from openmeter_billing.local import LocalOpenMeter

from ._scripts import run_script


class Recorder:
    """A service that counts its starts and drains and can be told to crash once."""

    def __init__(self, name: str = "recorder", *, crash_first: bool = False) -> None:
        self.name = name
        self.starts = 0
        self.drains = 0
        self.crash_first = crash_first
        self.running = anyio.Event()

    async def run(self) -> None:
        self.starts += 1
        if self.crash_first and self.starts == 1:
            raise RuntimeError("boom")
        self.running.set()
        await anyio.sleep_forever()

    async def drain(self) -> None:
        self.drains += 1


async def test_service_starts_on_first_use_and_drains_once_on_close() -> None:
    client = LocalOpenMeter().client()
    service = Recorder()
    client._runtime.add_service(service)
    with anyio.fail_after(2):
        await service.running.wait()
    await client.meters.list()
    await client.aclose()
    await client.aclose()
    assert (service.starts, service.drains) == (1, 1)


async def test_crashed_service_is_restarted() -> None:
    client = LocalOpenMeter().client()
    service = Recorder(crash_first=True)
    client._runtime.add_service(service)
    with anyio.fail_after(5):
        await service.running.wait()
    assert service.starts == 2
    await client.aclose()


def test_service_runs_on_each_loop_and_drains_when_asyncio_run_ends_without_close() -> None:
    client = LocalOpenMeter().client()
    service = Recorder()
    client._runtime.add_service(service)

    def use(starts: int) -> None:
        async def main() -> None:
            await client.meters.list()
            with anyio.fail_after(2):
                while service.starts < starts:  # noqa: ASYNC110 - polling a counter
                    await anyio.sleep(0.01)

        asyncio.run(main())

    use(1)
    assert (service.starts, service.drains) == (1, 1)
    use(2)
    assert (service.starts, service.drains) == (2, 2)


def test_drain_is_bounded_by_the_timeout() -> None:
    class Stuck(Recorder):
        async def drain(self) -> None:
            await anyio.sleep(60)

    async def main() -> float:
        client = LocalOpenMeter().client()
        client._runtime.drain_timeout = 0.2
        client._runtime.add_service(Stuck())
        await client.meters.list()
        started = anyio.current_time()
        await client.aclose()
        return anyio.current_time() - started

    assert asyncio.run(main()) < 5


def test_not_a_service_is_a_configuration_error() -> None:
    client = LocalOpenMeter().client()
    with pytest.raises(ConfigurationError, match="not a BackgroundService"):
        client._runtime.add_service(object())  # type: ignore[arg-type]


def test_unclosed_sync_client_drains_its_services_at_interpreter_exit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "drained"
    done = run_script(
        f"""
    import anyio
    from openmeter_billing.local import LocalOpenMeter

    class Flusher:
        name = "flusher"
        async def run(self):
            await anyio.sleep_forever()
        async def drain(self):
            open({str(marker)!r}, "w").write("flushed")

    client = LocalOpenMeter().sync_client()
    client.async_client._runtime.add_service(Flusher())
    client.meters.list()
    """,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "flushed"
