"""The exactly-once guarantees, pinned for every ledger (memory, SQLite, PostgreSQL).

Fixtures come from ``tests/billing/conftest.py``: ``ledger`` (one ledger of the parametrised kind),
``make_ledger(**options)`` (more ledgers on the same store) and ``clock`` (a fake clock to move).
"""

from __future__ import annotations

import secrets
from typing import Any

import anyio
import pytest

from openmeter_billing import InvalidInputError
from openmeter_billing.billing.ledger import Claim, Ledger, LedgerClaimLostError


async def claim_concurrently(ledger: Any, key: str, times: int) -> list[Claim]:
    claims: list[Claim] = []

    async def one() -> None:
        claims.append(await ledger.claim(key))

    async with anyio.create_task_group() as tg:
        for _ in range(times):
            tg.start_soon(one)
    return claims


def test_every_ledger_satisfies_the_protocol(ledger: Any) -> None:
    assert isinstance(ledger, Ledger)


async def test_fifty_concurrent_duplicate_claims_have_exactly_one_winner(ledger: Any) -> None:
    claims = await claim_concurrently(ledger, "stripe:evt_dup", 50)

    winners = [c for c in claims if c.state == "new"]
    assert len(winners) == 1
    assert sum(c.state == "in_progress" for c in claims) == 49
    assert all(c.token is None and c.result is None for c in claims if c.state != "new")
    assert winners[0].token and not winners[0].recovered

    await ledger.complete("stripe:evt_dup", winners[0].token, {"grant_id": "g_1", "amount": 500})
    later = await claim_concurrently(ledger, "stripe:evt_dup", 10)
    assert {c.state for c in later} == {"done"}
    assert all(c.result == {"grant_id": "g_1", "amount": 500} for c in later)
    assert all(c.token is None for c in later)


async def test_two_workers_on_one_store_see_one_winner(make_ledger: Any) -> None:
    worker_a, worker_b = make_ledger(), make_ledger()
    first = await worker_a.claim("polar:order_1")
    second = await worker_b.claim("polar:order_1")
    assert (first.state, second.state) == ("new", "in_progress")

    await worker_a.complete("polar:order_1", first.token, {"ok": True})
    assert await worker_b.claim("polar:order_1") == Claim(
        "done", "polar:order_1", None, {"ok": True}
    )


async def test_different_keys_are_claimed_independently(ledger: Any) -> None:
    a = await ledger.claim("key-a")
    b = await ledger.claim("key-b")
    assert a.state == b.state == "new"
    assert a.token != b.token


async def test_crash_between_claim_and_complete_is_recovered_after_the_lease(
    make_ledger: Any, clock: Any
) -> None:
    ledger = make_ledger(lease=10)
    crashed = await ledger.claim("topup:pi_1")

    clock.advance(9.5)
    assert (await ledger.claim("topup:pi_1")).state == "in_progress"

    clock.advance(0.5)
    retry = await ledger.claim("topup:pi_1")
    assert retry.state == "new"
    assert retry.recovered is True
    assert retry.token not in (None, crashed.token)

    # The stale owner wakes up: it must learn that it lost, whatever it tries.
    with pytest.raises(LedgerClaimLostError) as lost:
        await ledger.complete("topup:pi_1", crashed.token, {"grant_id": "stale"})
    assert lost.value.key == "topup:pi_1"
    assert "lease" in str(lost.value)
    with pytest.raises(LedgerClaimLostError):
        await ledger.release("topup:pi_1", crashed.token)

    await ledger.complete("topup:pi_1", retry.token, {"grant_id": "fresh"})
    assert (await ledger.get("topup:pi_1")).result == {"grant_id": "fresh"}


async def test_recovered_claim_is_itself_exclusive_for_a_new_lease(
    make_ledger: Any, clock: Any
) -> None:
    ledger = make_ledger(lease=10)
    await ledger.claim("k")
    clock.advance(11)
    assert (await ledger.claim("k")).recovered is True
    assert (await ledger.claim("k")).state == "in_progress"
    clock.advance(11)
    again = await ledger.claim("k")
    assert (again.state, again.recovered) == ("new", True)


async def test_owner_may_complete_after_its_lease_if_nobody_took_over(
    make_ledger: Any, clock: Any
) -> None:
    ledger = make_ledger(lease=10)
    slow = await ledger.claim("slow")
    clock.advance(60)
    await ledger.complete("slow", slow.token, {"late": True})
    assert (await ledger.claim("slow")).result == {"late": True}


async def test_released_claim_is_new_again_and_not_recovered(ledger: Any) -> None:
    failed = await ledger.claim("evt_fail")
    await ledger.release("evt_fail", failed.token)
    assert await ledger.get("evt_fail") is None

    retry = await ledger.claim("evt_fail")
    assert (retry.state, retry.recovered) == ("new", False)
    assert retry.token != failed.token
    with pytest.raises(LedgerClaimLostError):
        await ledger.complete("evt_fail", failed.token, {})


async def test_complete_repeated_by_the_owner_keeps_the_first_result(ledger: Any) -> None:
    claim = await ledger.claim("k")
    await ledger.complete("k", claim.token, {"n": 1})
    await ledger.complete("k", claim.token, {"n": 2})
    assert (await ledger.get("k")).result == {"n": 1}


async def test_release_after_complete_is_refused(ledger: Any) -> None:
    claim = await ledger.claim("k")
    await ledger.complete("k", claim.token, {"n": 1})
    with pytest.raises(LedgerClaimLostError, match="already done"):
        await ledger.release("k", claim.token)
    assert (await ledger.get("k")).state == "done"


async def test_a_token_that_never_owned_the_key_is_refused(ledger: Any) -> None:
    stranger = secrets.token_hex(16)
    with pytest.raises(LedgerClaimLostError, match="not claimed"):
        await ledger.complete("unclaimed", stranger, {})
    owner = await ledger.claim("owned")
    with pytest.raises(LedgerClaimLostError, match="another token"):
        await ledger.complete("owned", stranger, {})
    with pytest.raises(LedgerClaimLostError, match="another token"):
        await ledger.release("owned", stranger)
    assert (await ledger.claim("owned")).state == "in_progress"
    await ledger.complete("owned", owner.token, {})


async def test_get_peeks_without_claiming(ledger: Any, clock: Any) -> None:
    assert await ledger.get("peek") is None
    assert (await ledger.claim("peek")).state == "new"

    seen = await ledger.get("peek")
    assert seen == Claim("in_progress", "peek", None, None)
    assert (await ledger.claim("peek")).state == "in_progress"


async def test_results_round_trip_as_plain_json(ledger: Any) -> None:
    result: dict[str, Any] = {
        "grant": {"id": "01J", "amount": 1_000_000, "ratio": 0.25, "tags": ("a", "b")},
        "big": 2**62,
        "none": None,
        "flag": False,
        "text": "Grüße ✓",
    }
    claim = await ledger.claim("json")
    await ledger.complete("json", claim.token, result)

    stored = (await ledger.claim("json")).result
    assert stored == {**result, "grant": {**result["grant"], "tags": ["a", "b"]}}
    stored["grant"]["id"] = "mutated"  # callers own their copy
    assert (await ledger.get("json")).result["grant"]["id"] == "01J"


@pytest.mark.parametrize(
    ("key", "shown"),
    [("", "got 0"), ("x" * 513, "got 513"), (None, "NoneType"), (42, "int"), ("a\x00b", "NUL")],
)
async def test_bad_keys_are_rejected_naming_the_field(ledger: Any, key: Any, shown: str) -> None:
    token = secrets.token_hex(16)
    calls = [
        ledger.claim(key),
        ledger.get(key),
        ledger.complete(key, token, {}),
        ledger.release(key, token),
    ]
    for call in calls:
        with pytest.raises(InvalidInputError, match=shown) as info:
            await call
        assert info.value.field == "key"


async def test_a_key_of_512_characters_is_accepted(ledger: Any) -> None:
    key = "k" * 512
    claim = await ledger.claim(key)
    await ledger.complete(key, claim.token, {"ok": 1})
    assert (await ledger.get(key)).result == {"ok": 1}


@pytest.mark.parametrize(
    ("result", "shown"),
    [
        ({"when": object()}, r"result\['when'\]: object"),
        ({"amount": float("nan")}, "not a finite number"),
        ({"deep": {"list": [1, float("inf")]}}, r"result\['deep'\]\['list'\]\[1\]"),
        ({1: "int key"}, "key 1"),
        ({"raw": b"bytes"}, "bytes"),
        ({"set": {1, 2}}, "set"),
        ({"nul": "a\x00"}, "NUL"),
        (["not", "a", "mapping"], "must be a mapping"),
        (None, "must be a mapping"),
    ],
)
async def test_non_json_results_are_rejected_and_the_claim_stays_usable(
    ledger: Any, result: Any, shown: str
) -> None:
    claim = await ledger.claim("bad-result")
    with pytest.raises(InvalidInputError, match=shown) as info:
        await ledger.complete("bad-result", claim.token, result)
    assert info.value.field == "result"

    assert (await ledger.get("bad-result")).state == "in_progress"
    await ledger.complete("bad-result", claim.token, {"fixed": True})
    assert (await ledger.get("bad-result")).state == "done"


@pytest.mark.parametrize("token", ["", None, 123])
async def test_malformed_tokens_are_rejected_naming_the_field(ledger: Any, token: Any) -> None:
    await ledger.claim("k")
    with pytest.raises(InvalidInputError) as info:
        await ledger.complete("k", token, {})
    assert info.value.field == "token"


async def test_purge_drops_only_results_older_than_the_retention(
    make_ledger: Any, clock: Any
) -> None:
    ledger = make_ledger(retention=100, lease=1_000)
    for key, then_wait in (("old", 50), ("young", 0)):
        claim = await ledger.claim(key)
        await ledger.complete(key, claim.token, {"key": key})
        clock.advance(then_wait)
    await ledger.claim("running")  # unfinished claims are never purged
    clock.advance(60)  # "old" finished 110 s ago, "young" 60 s ago

    assert await ledger.purge() == 1
    assert await ledger.get("old") is None
    assert (await ledger.get("young")).result == {"key": "young"}
    assert (await ledger.get("running")).state == "in_progress"
    assert (await ledger.claim("old")).state == "new"


async def test_results_are_kept_forever_without_retention(ledger: Any, clock: Any) -> None:
    claim = await ledger.claim("k")
    await ledger.complete("k", claim.token, {"v": 1})
    clock.advance(10 * 365 * 86_400)
    assert await ledger.purge() == 0
    assert (await ledger.claim("k")).result == {"v": 1}


async def test_ledger_works_as_an_async_context_manager(make_ledger: Any) -> None:
    async with make_ledger() as ledger:
        assert (await ledger.claim("ctx")).state == "new"
