"""pytest fixtures for testing code that uses openmeter-billing, backed by Local OpenMeter.

Import the ones you want into your ``conftest.py``::

    from openmeter_billing.testing import local_openmeter, openmeter_client, sync_openmeter_client

Every test then gets a fresh, empty OpenMeter with a frozen clock (``local_openmeter.clock``) and
clients wired to it. The fixtures are synchronous, so they work with pytest-asyncio, anyio's
pytest plugin or plain pytest alike.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openmeter_billing._client import OpenMeterBilling
from openmeter_billing._sync import SyncOpenMeterBilling
from openmeter_billing.local import LocalOpenMeter

__all__ = ["local_openmeter", "openmeter_client", "sync_openmeter_client"]


@pytest.fixture
def local_openmeter() -> LocalOpenMeter:
    """A fresh Local OpenMeter per test (its clock frozen at creation)."""
    return LocalOpenMeter()


@pytest.fixture
def openmeter_client(local_openmeter: LocalOpenMeter) -> OpenMeterBilling:
    """An async client on ``local_openmeter``; in-process, so there is nothing to close."""
    return local_openmeter.client()


@pytest.fixture
def sync_openmeter_client(local_openmeter: LocalOpenMeter) -> Iterator[SyncOpenMeterBilling]:
    """A blocking client on ``local_openmeter``, closed after the test."""
    with local_openmeter.sync_client() as client:
        yield client
