# ruff: noqa: F811  (pytest injects the imported fixtures by parameter name)
"""The pytest fixtures users import from openmeter_billing.testing, used the way they would."""

from __future__ import annotations

from openmeter_billing import OpenMeterBilling, SyncOpenMeterBilling
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.testing import (  # noqa: F401
    local_openmeter,
    openmeter_client,
    sync_openmeter_client,
)


async def test_async_client_fixture_talks_to_the_local_fixture(
    openmeter_client: OpenMeterBilling, local_openmeter: LocalOpenMeter
) -> None:
    await openmeter_client.customers.create(name="Acme", key="acme")
    assert [c["key"] for c in local_openmeter.snapshot()["customers"]] == ["acme"]


def test_sync_client_fixture_shares_the_same_state(
    sync_openmeter_client: SyncOpenMeterBilling, local_openmeter: LocalOpenMeter
) -> None:
    sync_openmeter_client.customers.create(name="Acme", key="acme")
    local_openmeter.clock.advance(days=1)
    assert sync_openmeter_client.customers.get("acme").name == "Acme"


def test_each_test_gets_a_fresh_emulator(local_openmeter: LocalOpenMeter) -> None:
    assert local_openmeter.snapshot()["customers"] == []
