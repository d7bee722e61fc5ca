"""Ingest fixtures: Local OpenMeter (its own faults, observed), clients with small batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from ingest._observed import ObservedLocal

from openmeter_billing import IngestOptions, OpenMeterBilling

FAST = {"initial_backoff": 0.01, "max_backoff": 0.05, "flush_interval": 0.05}


@pytest.fixture
def faulty() -> ObservedLocal:
    return ObservedLocal()


@pytest.fixture
async def make_client(
    faulty: ObservedLocal,
) -> AsyncIterator[Callable[..., OpenMeterBilling]]:
    made: list[OpenMeterBilling] = []

    def make(outbox: Any = None, identity: Any = None, **options: Any) -> OpenMeterBilling:
        client = OpenMeterBilling(
            base_url=faulty.local.base_url,
            transport=faulty.local,
            outbox=outbox,
            identity=identity,
            ingest=IngestOptions(**{**FAST, **options}),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()
