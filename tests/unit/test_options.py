"""One set of constructor arguments: `ClientOptions` mirrors `OpenMeterBilling.__init__` exactly,
so the sync facade and Local OpenMeter's helpers accept (and mypy checks) the same keywords."""

from __future__ import annotations

import inspect

import pytest

from openmeter_billing import ConfigurationError, OpenMeterBilling, SyncOpenMeterBilling
from openmeter_billing._options import ClientOptions
from openmeter_billing.local import LocalOpenMeter


def test_client_options_match_the_async_constructor() -> None:
    parameters = inspect.signature(OpenMeterBilling.__init__).parameters
    spelled_out = {name: str(p.annotation) for name, p in parameters.items() if name != "self"}
    mirrored = {
        name: getattr(t, "__forward_arg__", str(t))
        for name, t in ClientOptions.__annotations__.items()
    }
    assert mirrored == spelled_out


def test_sync_facade_passes_every_option_and_validates_the_same_way() -> None:
    local = LocalOpenMeter()
    with SyncOpenMeterBilling(
        transport=local, base_url=local.base_url, max_retries=0, event_source="tests"
    ) as client:
        assert client.async_client.max_retries == 0
        assert client.async_client.event_source == "tests"
    with pytest.raises(ConfigurationError, match="event_source"):
        SyncOpenMeterBilling(transport=local, base_url=local.base_url, event_source="")
