"""Shared fixtures: a respx-mocked OpenMeter whose every request is checked against the spec, and
a contract check of every exchange any Local OpenMeter has during the suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import _spec
import httpx
import pytest
import respx

from openmeter_billing import OpenMeterBilling
from openmeter_billing._http import HTTPCore

BASE_URL = "https://openmeter.test"
API_KEY = "om_test_secret_key_1234567890"


def _contract_check(router: respx.MockRouter) -> None:
    """Validate every request the test sent; skip quietly only outside CI without the spec."""
    if not _spec.spec_path().is_file():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"OpenMeter spec missing at {_spec.spec_path()} under CI")
        return
    for call in router.calls:
        _spec.validate_request(call.request)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    """A respx router for OpenMeter at BASE_URL. Requests that reach it must match the spec."""
    with respx.mock(base_url=BASE_URL, assert_all_called=False) as router:
        yield router
    _contract_check(router)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record retry delays instead of sleeping."""
    recorded: list[float] = []

    async def fake_sleep(delay: float) -> None:
        recorded.append(delay)

    monkeypatch.setattr(HTTPCore, "_sleep", staticmethod(fake_sleep))
    return recorded


@pytest.fixture
async def client(sleeps: list[float]) -> OpenMeterBilling:
    """An async client pointed at the respx router (retries do not sleep)."""
    async with OpenMeterBilling(api_key=API_KEY, base_url=BASE_URL) as c:
        yield c  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _local_openmeter_contract(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Record every Local OpenMeter exchange of the test, then check it against the spec.

    Responses must match the spec (with the real server's quirks normalised explicitly, see
    ``_local_contract``); requests it accepted (2xx) must match too, so Local OpenMeter is never
    more lenient than OpenMeter's own request validation.
    """
    try:
        from openmeter_billing.local._emulator import LocalOpenMeter
    except ImportError:  # Local OpenMeter not importable: nothing to record
        yield
        return
    import _local_contract

    exchanges: list[tuple[httpx.Request, httpx.Response]] = []
    original = LocalOpenMeter._answer

    def recording(self: LocalOpenMeter, request: httpx.Request) -> httpx.Response:
        response = original(self, request)
        exchanges.append((request, response))
        return response

    monkeypatch.setattr(LocalOpenMeter, "_answer", recording)
    yield
    if exchanges and _spec.spec_path().is_file():
        for request, response in exchanges:
            _local_contract.check_exchange(request, response)
    elif exchanges and os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"OpenMeter spec missing at {_spec.spec_path()} under CI")
