"""Ledger locks and heartbeats, the same on every ledger (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from openmeter_billing.billing.ledger import LedgerClaimLostError


async def test_a_lock_passes_its_data_to_the_next_holder(make_ledger: Callable[..., Any]) -> None:
    ledger = make_ledger()
    first = await ledger.acquire("lock:a")
    assert first.state == "new" and first.result is None and not first.recovered
    assert (await ledger.acquire("lock:a")).state == "in_progress"
    await ledger.unlock("lock:a", first.token, {"newest": "t1"})
    second = await ledger.acquire("lock:a")
    assert second.state == "new" and second.result == {"newest": "t1"}


async def test_a_silent_lock_holder_is_taken_over_after_the_liveness(
    make_ledger: Callable[..., Any], clock: Any
) -> None:
    ledger = make_ledger(liveness=2)
    held = await ledger.acquire("lock:b")
    await ledger.unlock("lock:b", held.token, {"n": 1})
    held = await ledger.acquire("lock:b")
    await ledger.renew("lock:b", held.token)
    clock.advance(2)
    taken = await ledger.acquire("lock:b")
    assert taken.state == "new" and taken.recovered and taken.result == {"n": 1}
    with pytest.raises(LedgerClaimLostError):
        await ledger.unlock("lock:b", held.token, {"n": 2})


async def test_a_heartbeating_claim_is_stale_after_the_liveness_not_the_lease(
    make_ledger: Callable[..., Any], clock: Any
) -> None:
    ledger = make_ledger(lease=300, liveness=2)
    claim = await ledger.claim("k")
    await ledger.renew("k", claim.token)
    clock.advance(1)
    await ledger.renew("k", claim.token)
    clock.advance(1.5)
    peek = await ledger.get("k")
    assert peek is not None and peek.state == "in_progress" and not peek.stale
    clock.advance(1)
    peek = await ledger.get("k")
    assert peek is not None and peek.stale
    taken = await ledger.claim("k")
    assert taken.state == "new" and taken.recovered
    with pytest.raises(LedgerClaimLostError):
        await ledger.renew("k", claim.token)


async def test_an_owner_that_never_renews_keeps_the_whole_lease(
    make_ledger: Callable[..., Any], clock: Any
) -> None:
    ledger = make_ledger(lease=30, liveness=2)
    await ledger.claim("k2")
    clock.advance(29)
    assert (await ledger.claim("k2")).state == "in_progress"
    clock.advance(1)
    assert (await ledger.claim("k2")).recovered


async def test_renew_refuses_a_finished_key(make_ledger: Callable[..., Any]) -> None:
    ledger = make_ledger()
    claim = await ledger.claim("k3")
    await ledger.complete("k3", claim.token, {})
    with pytest.raises(LedgerClaimLostError):
        await ledger.renew("k3", claim.token)
