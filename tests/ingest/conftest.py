"""Ingest fixtures: Local OpenMeter behind a fault-injecting transport, clients with small batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ingest._faults import FaultyOpenMeter

from openmeter_billing import IngestOptions, OpenMeterBilling

FAST = {"initial_backoff": 0.01, "max_backoff": 0.05, "flush_interval": 0.05}


@pytest.fixture
def faulty() -> FaultyOpenMeter:
    return FaultyOpenMeter()


@pytest.fixture
async def make_client(
    faulty: FaultyOpenMeter,
) -> AsyncIterator[Callable[..., OpenMeterBilling]]:
    made: list[OpenMeterBilling] = []

    def make(outbox: Any = None, identity: Any = None, **options: Any) -> OpenMeterBilling:
        client = OpenMeterBilling(
            base_url=faulty.inner.base_url,
            transport=faulty,
            outbox=outbox,
            identity=identity,
            ingest=IngestOptions(**{**FAST, **options}),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
