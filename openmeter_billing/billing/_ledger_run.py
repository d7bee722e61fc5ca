"""Run a piece of work once per key through the client's ledger (or directly without one)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from .._exceptions import OperationInProgressError
from .ledger import Ledger, LedgerClaimLostError

logger = logging.getLogger("openmeter_billing")

#: How long a duplicate delivery waits for the first one to finish before giving up.
WAIT_FOR_OWNER = 10.0
POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class Outcome:
    """The work's result, and whether this call did the work (False: an earlier one did)."""

    result: Mapping[str, Any]
    fresh: bool


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
    claim = await ledger.claim(key)
    with anyio.move_on_after(WAIT_FOR_OWNER if wait is None else wait):
        while claim.state == "in_progress":
            await anyio.sleep(POLL_INTERVAL)
            claim = await ledger.claim(key)
    if claim.state == "done":
        return Outcome(claim.result or {}, False)
    if claim.state == "in_progress" or claim.token is None:
        raise OperationInProgressError(key)
    try:
        result = await work(claim.recovered)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _release(ledger, key, claim.token)
        raise
    await ledger.complete(key, claim.token, result)
    return Outcome(result, True)


async def _release(ledger: Ledger, key: str, token: str) -> None:
    """Give the key back; a lost claim must not hide the error that made us give it back."""
    try:
        await ledger.release(key, token)
    except LedgerClaimLostError:
        logger.warning("could not release %r: the claim was taken over meanwhile", key)
