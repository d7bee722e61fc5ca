"""The backfill's pure parts: the checkpoint watermark, the pacer, retry delays, progress text."""

from __future__ import annotations

import httpx
import pytest

from openmeter_billing import RateLimitError
from openmeter_billing._http import make_status_error
from openmeter_billing.backfill import BackfillFailure, BackfillProgress, Checkpoint, _pacing
from openmeter_billing.backfill._progress import render_bar, render_line
from openmeter_billing.backfill._state import Tracker


def test_watermark_waits_for_the_oldest_item_in_flight() -> None:
    tracker = Tracker(Checkpoint(kind="customers"))
    for index in range(4):
        tracker.started(index)
    tracker.settled(2)
    tracker.settled(1)
    assert (tracker.checkpoint.watermark, tracker.checkpoint.settled_above) == (0, {1, 2})
    tracker.settled(0, BackfillFailure(0, "k", "boom", "RuntimeError"))
    assert (tracker.checkpoint.watermark, tracker.checkpoint.settled_above) == (3, set())
    assert not tracker.checkpoint.is_done(0)  # failed: a resume tries it again
    assert tracker.checkpoint.is_done(1)
    assert not tracker.checkpoint.is_done(3)


def test_checkpoint_round_trips_through_json() -> None:
    original = Checkpoint(
        kind="customers",
        source="users.jsonl",
        watermark=10,
        settled_above={12},
        failed={4: BackfillFailure(4, "u4", "conflict", "ConflictError", 2)},
    )
    assert Checkpoint.from_dict(original.to_dict(), "x") == original


async def test_rate_limiter_spaces_requests_by_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(_pacing.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(_pacing.anyio, "sleep", fake_sleep)
    limiter = _pacing.RateLimiter(4.0, burst=2)
    for _ in range(6):
        await limiter.acquire()
    # Two from the burst, then one every quarter second.
    assert slept == pytest.approx([0.25, 0.25, 0.25, 0.25])
    assert now[0] == pytest.approx(101.0)


def test_retry_delay_honours_retry_after_else_backs_off() -> None:
    request = httpx.Request("POST", "http://127.0.0.1/api/v1/customers")
    limited = make_status_error(httpx.Response(429, headers={"Retry-After": "7"}, request=request))
    assert isinstance(limited, RateLimitError)
    assert _pacing.is_transient(limited)
    assert _pacing.retry_delay(limited, 1, 0.5) == 7.0
    plain = RuntimeError("x")
    assert not _pacing.is_transient(plain)
    assert 1.0 <= _pacing.retry_delay(plain, 3, 0.5) <= 2.0  # 0.5 * 2**2, jittered down to half


def test_progress_text_for_a_terminal_and_for_logs() -> None:
    progress = BackfillProgress(
        kind="customers", total=200, settled=50, skipped=10, failed=1, elapsed=2.0, rate=20.0
    )
    assert render_bar(progress) == (
        "customers [#######---------------------] 50/200  25% 20/s ETA 8s failed 1"
    )
    assert render_line(progress) == (
        "backfill customers: 50/200 (25.0%), 20/s, eta 8s, skipped 10, failed 1"
    )
    unknown = BackfillProgress("customers", None, 5, 0, 0, 1.0, 5.0)
    assert render_line(unknown) == "backfill customers: 5, 5/s, eta ?, skipped 0, failed 0"
