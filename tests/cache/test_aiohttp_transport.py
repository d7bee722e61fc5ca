"""AiohttpTransport over real HTTP (the loopback server): same answers, retries and errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from openmeter_billing import APIConnectionError, NotFoundError, OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local._server import LoopbackServer
from openmeter_billing.transports import AiohttpTransport


class Flaky(httpx.BaseTransport):
    """Local OpenMeter that answers 503 to the first ``failures`` value reads."""

    def __init__(self, failures: int) -> None:
        self.local = LocalOpenMeter()
        self.failures = failures

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/value") and self.failures > 0:
            self.failures -= 1
            return httpx.Response(503, json={"title": "unavailable"})
        return self.local.handle_request(request)


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(Flaky(failures=2), port=0) as running:
        yield running


async def test_the_client_works_over_aiohttp_with_retries_and_typed_errors(
    server: LoopbackServer,
) -> None:
    async with OpenMeterBilling(base_url=server.url, transport=AiohttpTransport()) as client:
        await client.features.create(key="seats", name="Seats")
        await client.customers.create(name="Acme", key="acme")
        await client.entitlements.create("acme", {"type": "boolean", "featureKey": "seats"})
        value = await client.entitlements.value("acme", "seats")  # two 503s, then retried
        assert value.has_access is True
        with pytest.raises(NotFoundError):
            await client.features.get("nope")


async def test_a_refused_connection_is_an_api_connection_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OpenMeterBilling(
        base_url=f"http://127.0.0.1:{port}", transport=AiohttpTransport(), max_retries=0
    )
    async with client:
        with pytest.raises(APIConnectionError):
            await client.features.list()
