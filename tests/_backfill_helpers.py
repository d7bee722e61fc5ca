"""A transport that fails chosen requests and passes the rest to Local OpenMeter."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from openmeter_billing.local import LocalOpenMeter


class Flaky(httpx.AsyncBaseTransport):
    """Answers ``status`` to requests that ``should_fail`` picks, passes the rest to Local."""

    def __init__(
        self,
        local: LocalOpenMeter,
        should_fail: Callable[[httpx.Request], bool],
        status: int = 503,
    ) -> None:
        self.local = local
        self.should_fail = should_fail
        self.status = status
        self.failed = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.should_fail(request):
            self.failed += 1
            body = {"type": "about:blank", "title": "Failing on purpose", "status": self.status}
            return httpx.Response(
                self.status, json=body, headers={"content-type": "application/problem+json"}
            )
        return await self.local.handle_async_request(request)
