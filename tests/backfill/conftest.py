"""Fixtures for backfill tests: Local OpenMeter, a transport that fails on demand, no retry waits."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from openmeter_billing.local import LocalOpenMeter


@pytest.fixture
def local() -> LocalOpenMeter:
    return LocalOpenMeter(start=datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc))


@pytest.fixture(autouse=True)
def _no_retry_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries happen at once; the delays themselves are tested on `retry_delay`."""
    monkeypatch.setattr("openmeter_billing.backfill._runner.retry_delay", lambda *a: 0.0)
