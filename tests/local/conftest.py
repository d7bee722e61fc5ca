"""Fixtures for Local OpenMeter tests: an emulator at a fixed time, a client and a raw HTTP client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone

import httpx
import pytest

from openmeter_billing import OpenMeterBilling
from openmeter_billing.local import LocalOpenMeter

START = datetime(2025, 1, 15, 10, 0, 30, tzinfo=timezone.utc)


@pytest.fixture
def local() -> LocalOpenMeter:
    """An emulator whose clock starts mid-minute on 2025-01-15 10:00:30 UTC."""
    return LocalOpenMeter(start=START)


@pytest.fixture
async def om(local: LocalOpenMeter) -> AsyncIterator[OpenMeterBilling]:
    """The public async client on ``local`` (no retries, so errors surface at once)."""
    async with local.client(max_retries=0) as client:
        yield client


@pytest.fixture
async def raw(local: LocalOpenMeter) -> AsyncIterator[httpx.AsyncClient]:
    """A bare httpx client on ``local``, for requests the typed client would refuse to send."""
    async with httpx.AsyncClient(transport=local, base_url=LocalOpenMeter.base_url) as client:
        yield client


async def make_metered(
    om: OpenMeterBilling,
    *,
    customer: str = "acme",
    feature: str = "tokens",
    aggregation: str = "SUM",
    entitlement: dict[str, object] | None = None,
) -> None:
    """A meter + feature + customer, and a metered entitlement when ``entitlement`` is given."""
    await om.meters.create(
        slug=feature,
        event_type=feature,
        aggregation=aggregation,  # type: ignore[arg-type]
        value_property=None if aggregation == "COUNT" else "$.value",
    )
    await om.features.create(key=feature, name=feature.title(), meter_slug=feature)
    await om.customers.create(name=customer.title(), key=customer)
    if entitlement is not None:
        await om.entitlements.create(
            customer, {"type": "metered", "featureKey": feature, **entitlement}
        )
