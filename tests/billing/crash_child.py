"""A worker that grants a top-up and is killed before the ledger records it (run by a test).

Usage: ``python crash_child.py <base_url> sqlite <path>`` or ``... postgres <dsn> <table>``.
It prints ``granted`` once OpenMeter created the grant, then hangs (heartbeating) until killed.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import anyio
import httpx

from openmeter_billing import OpenMeterBilling
from openmeter_billing.billing.ledger import PostgresLedger, SQLiteLedger

LIVENESS = 1.0


class HangAfterGrant(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and request.url.path.endswith("/grants"):
            await response.aread()
            sys.stdout.write("granted\n")
            sys.stdout.flush()
            await anyio.sleep(3600)
        return response


def build_ledger(kind: str, *where: str) -> Any:
    if kind == "sqlite":
        return SQLiteLedger(where[0], liveness=LIVENESS)
    return PostgresLedger(where[0], table=where[1], liveness=LIVENESS)


async def main(base_url: str, kind: str, *where: str) -> None:
    from billing.test_billing_helpers import CATALOG, START

    async with OpenMeterBilling(
        transport=HangAfterGrant(),
        base_url=base_url,
        catalog=CATALOG,
        ledger=build_ledger(kind, *where),
        max_retries=0,
    ) as client:
        await client.topups.grant(
            "acme", "token_pack", idempotency_key="cs_kill", effective_at=START
        )


if __name__ == "__main__":
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    asyncio.run(main(*sys.argv[1:]))
