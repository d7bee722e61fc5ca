"""One subscription's billing events, one at a time: a lock plus the state it guards.

With a ledger the lock is a ledger lock row (`Ledger.acquire`/`renew`/`unlock`), shared by every
worker using that store, and its saved data outlives the process. Without one it is an
in-process lock, and the data lives on the client (one process, no memory across restarts).
Either way, callers in this process queue on an in-memory lock first, so only one of them at a
time talks to the store.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from .._exceptions import OperationInProgressError
from ._ledger_run import heartbeating, wait_to_take
from .ledger import Ledger, LedgerClaimLostError

logger = logging.getLogger("openmeter_billing")
_T = TypeVar("_T")
_MAX_NAME = 200


@dataclass
class _Waiters:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    users: int = 0


class OrderedLocks:
    """Named locks whose holder reads and updates a small JSON-able dict."""

    def __init__(self) -> None:
        self._waiters: dict[tuple[int, str], _Waiters] = {}
        self._data: dict[str, dict[str, Any]] = {}  # ledger-less state, per lock name

    async def run(
        self,
        ledger: Ledger | None,
        name: str,
        fn: Callable[[dict[str, Any]], Awaitable[_T]],
        *,
        wait: float,
    ) -> _T:
        """Hold lock ``name`` (waiting up to ``wait`` seconds) while ``fn(data)`` runs.

        ``data`` is what the previous holder left; changes ``fn`` makes to it are saved when
        the lock is given back, also when ``fn`` fails (so ``fn`` should change it last).

        Raises:
            OperationInProgressError: another holder kept the lock past ``wait``.
        """
        name = _storable(name)
        slot = (threading.get_ident(), name)  # anyio locks belong to one event loop (thread)
        waiters = self._waiters.setdefault(slot, _Waiters())
        waiters.users += 1
        deadline = anyio.current_time() + wait
        try:
            with anyio.move_on_after(wait) as waited:
                await waiters.lock.acquire()
            if waited.cancelled_caught:
                raise OperationInProgressError(name)
            try:
                if ledger is None:
                    return await fn(self._data.setdefault(name, {}))
                return await _run_under_ledger_lock(ledger, name, fn, deadline)
            finally:
                waiters.lock.release()
        finally:
            waiters.users -= 1
            if waiters.users == 0:
                del self._waiters[slot]


async def _run_under_ledger_lock(
    ledger: Ledger,
    name: str,
    fn: Callable[[dict[str, Any]], Awaitable[_T]],
    deadline: float,
) -> _T:
    claim = await wait_to_take(ledger, name, ledger.acquire, deadline)
    assert claim.token is not None
    token, data = claim.token, dict(claim.result or {})
    try:
        return await heartbeating(ledger, name, token, lambda: fn(data))
    finally:
        with anyio.CancelScope(shield=True):
            try:
                await ledger.unlock(name, token, data)
            except LedgerClaimLostError:
                # We outlived the lock (stalled past its liveness); the taker's view stands.
                logger.warning("the ledger lock %r was taken over while held", name)


def _storable(name: str) -> str:
    """Keep lock names within the ledger's key limit (long subscription ids are hashed)."""
    if len(name) <= _MAX_NAME:
        return name
    return name[:64] + ":" + hashlib.sha256(name.encode()).hexdigest()
