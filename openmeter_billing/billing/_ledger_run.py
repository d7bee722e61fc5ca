"""Run a piece of work once per key through the client's ledger (or directly without one).

Three things keep a storm of duplicates cheap and a crash short:

- Duplicates in one process share one flight: the first call talks to the ledger, the others
  wait for its outcome in memory and never touch the store.
- A duplicate whose owner lives elsewhere polls with `Ledger.get` (a read), and claims (a
  write) only when the key is free or its owner counts as gone.
- The owner heartbeats (`Ledger.renew`) while the work runs, so a killed owner's key is taken
  over after the ledger's ``liveness`` (seconds), not after the whole lease.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from .._exceptions import OperationInProgressError
from .ledger import Claim, Ledger, LedgerClaimLostError

logger = logging.getLogger("openmeter_billing")

#: How long a duplicate delivery waits for the first one to finish before giving up.
WAIT_FOR_OWNER = 10.0
POLL_INTERVAL = 0.05

_T = TypeVar("_T")


@dataclass(frozen=True)
class Outcome:
    """The work's result, and whether this call did the work (False: an earlier one did)."""

    result: Mapping[str, Any]
    fresh: bool


@dataclass
class _Flight:
    """One in-process attempt at a key that later duplicates wait on instead of the ledger."""

    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: Outcome | None = None
    busy: bool = False


#: Flights per ledger object, keyed by (thread, key): an event loop lives on one thread, and
#: anyio events cannot be awaited from another loop. Weak, so a dropped ledger leaves nothing.
_FLIGHTS: weakref.WeakKeyDictionary[Any, dict[tuple[int, str], _Flight]] = (
    weakref.WeakKeyDictionary()
)


async def run_once(
    ledger: Ledger | None,
    key: str,
    work: Callable[[bool], Awaitable[Mapping[str, Any]]],
    *,
    wait: float | None = None,
) -> Outcome:
    """Do ``work`` once for ``key``.

    ``work`` gets ``recovered=True`` when an earlier owner crashed mid-way: it must then check
    OpenMeter before acting. A failure releases the claim so a retry can succeed. A concurrent
    duplicate waits up to ``wait`` seconds (default `WAIT_FOR_OWNER`) for the owner's result,
    then raises `OperationInProgressError` (answer the webhook with a retryable status).
    """
    if ledger is None:
        return Outcome(await work(False), True)
    patience = WAIT_FOR_OWNER if wait is None else wait
    deadline = anyio.current_time() + patience
    flights = _FLIGHTS.setdefault(ledger, {})
    slot = (threading.get_ident(), key)
    with anyio.move_on_after(patience):
        while (flight := flights.get(slot)) is not None:
            await flight.done.wait()
            if flight.outcome is not None:
                return Outcome(flight.outcome.result, False)
            if flight.busy:
                raise OperationInProgressError(key)
            # The owner failed and released the key: the next waiter tries for itself.
    if slot in flights:
        raise OperationInProgressError(key)
    flights[slot] = flight = _Flight()
    try:
        flight.outcome = await _claim_and_run(ledger, key, work, deadline)
        return flight.outcome
    except OperationInProgressError:
        flight.busy = True
        raise
    finally:
        del flights[slot]
        flight.done.set()


async def _claim_and_run(
    ledger: Ledger,
    key: str,
    work: Callable[[bool], Awaitable[Mapping[str, Any]]],
    deadline: float,
) -> Outcome:
    claim = await wait_to_take(ledger, key, ledger.claim, deadline)
    if claim.state == "done":
        return Outcome(claim.result or {}, False)
    assert claim.token is not None
    token = claim.token
    try:
        result = await heartbeating(ledger, key, token, lambda: work(claim.recovered))
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _release(ledger, key, token)
        raise
    await ledger.complete(key, token, result)
    return Outcome(result, True)


async def wait_to_take(
    ledger: Ledger,
    key: str,
    take: Callable[[str], Awaitable[Claim]],
    deadline: float,
) -> Claim:
    """``take`` the key; while a live owner holds it, poll read-only until it can succeed.

    ``take`` (`Ledger.claim` or `Ledger.acquire`) runs shielded: a claim won just as the
    deadline passes must reach the caller, or the key would stay held by nobody.

    Raises:
        OperationInProgressError: a live owner still holds the key at ``deadline``.
    """
    while True:
        with anyio.CancelScope(shield=True):
            claim = await take(key)
        if claim.state != "in_progress":
            return claim
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
            while True:
                peek = await ledger.get(key)
                if peek is None or peek.stale or peek.state == "done":
                    break  # free, abandoned or finished: worth one write
                await anyio.sleep(POLL_INTERVAL)
        if anyio.current_time() >= deadline:
            raise OperationInProgressError(key)


async def heartbeating(
    ledger: Ledger, key: str, token: str, work: Callable[[], Awaitable[_T]]
) -> _T:
    """Run ``work`` while renewing ``key`` every fifth of the ledger's liveness."""
    interval = float(getattr(ledger, "liveness", 5.0)) / 5
    outcome: list[_T] = []
    failure: list[BaseException] = []

    async def beat() -> None:
        while True:
            try:
                await ledger.renew(key, token)
            except LedgerClaimLostError:
                logger.warning("lost the ledger claim on %r while working on it", key)
                return
            except Exception:  # a flaky store must not kill the work; the lease still bounds it
                logger.warning("could not renew the ledger claim on %r", key, exc_info=True)
            await anyio.sleep(interval)

    async with anyio.create_task_group() as tg:
        tg.start_soon(beat)
        try:
            outcome.append(await work())
        except BaseException as exc:  # re-raised below, outside the task group's wrapping
            failure.append(exc)
        tg.cancel_scope.cancel()
    if failure:
        raise failure[0]
    return outcome[0]


async def _release(ledger: Ledger, key: str, token: str) -> None:
    """Give the key back; a lost claim must not hide the error that made us give it back."""
    try:
        await ledger.release(key, token)
    except LedgerClaimLostError:
        logger.warning("could not release %r: the claim was taken over meanwhile", key)
