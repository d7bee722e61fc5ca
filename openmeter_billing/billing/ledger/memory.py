"""`InMemoryLedger`: the exactly-once guard for tests and single-process, single-worker apps."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

import anyio

from ._common import (
    DEFAULT_LEASE,
    DEFAULT_LIVENESS,
    Clock,
    LedgerBase,
    Row,
    check_key,
    check_live_owner,
    check_owner,
    check_token,
    decide_claim,
    decide_lock,
    encode_result,
)
from ._protocol import Claim, LedgerClaimLostError

__all__ = ["InMemoryLedger"]


class InMemoryLedger(LedgerBase):
    """A ledger in a dict: exact semantics of the durable ledgers, none of their durability.

    Everything is lost when the process exits and nothing is shared between processes, so use it for
    tests and for apps that run exactly one worker. Results are stored as JSON text, so what you get
    back is exactly what the SQLite and PostgreSQL ledgers would return.

    Args:
        lease: Seconds a claim stays exclusive; an older unfinished claim is taken over by the next
            ``claim`` (``recovered=True``). Set it above your slowest operation.
        retention: Seconds to keep finished results before `purge` may drop them; ``None`` keeps
            them forever.
        liveness: Seconds an owner that heartbeats (`renew`) may stay silent before its claim
            counts as abandoned.
        now: The clock (seconds since the epoch); inject a fake one in tests.

    Example::

        ledger = InMemoryLedger(lease=60)
        claim = await ledger.claim("stripe:evt_123")
    """

    def __init__(
        self,
        *,
        lease: float = DEFAULT_LEASE,
        retention: float | None = None,
        liveness: float = DEFAULT_LIVENESS,
        now: Clock = time.time,
    ) -> None:
        super().__init__(lease=lease, retention=retention, now=now, liveness=liveness)
        self._rows: dict[str, Row] = {}
        # The dict operations never await, but the lock keeps that true if the code ever changes.
        self._lock = anyio.Lock()

    async def claim(self, key: str) -> Claim:
        """Take ``key`` if it is free or its owner's lease ran out; see `Ledger.claim`."""
        check_key(key)
        async with self._lock:
            row, now = self._rows.get(key), self._now()
            answer, write = decide_claim(key, row, now, self.lease, self.liveness)
            if write is not None:
                self._rows[key] = write
            return answer

    async def complete(self, key: str, token: str, result: Mapping[str, Any]) -> None:
        """Store ``result`` for good; repeating it with the same token is a no-op."""
        check_key(key)
        check_token(token)
        encoded = encode_result(result)
        async with self._lock:
            row = self._rows.get(key)
            if check_owner(key, token, row, "complete"):
                return
            assert row is not None
            self._rows[key] = Row("done", token, row.claimed_at, row.attempts, self._now(), encoded)

    async def release(self, key: str, token: str) -> None:
        """Forget an unfinished claim so the next ``claim`` is ``"new"`` (not recovered)."""
        check_key(key)
        check_token(token)
        async with self._lock:
            if check_owner(key, token, self._rows.get(key), "release"):
                raise LedgerClaimLostError(key, token, "cannot release: the key is already done")
            del self._rows[key]

    async def get(self, key: str) -> Claim | None:
        """Peek at ``key``: ``"in_progress"``, ``"done"`` with its result, or ``None``."""
        check_key(key)
        async with self._lock:
            return self._peek(key, self._rows.get(key))

    async def renew(self, key: str, token: str) -> None:
        """Heartbeat for a claim or lock you hold; see `Ledger.renew`."""
        check_key(key)
        check_token(token)
        async with self._lock:
            row = check_live_owner(key, token, self._rows.get(key), "renew")
            self._rows[key] = dataclasses.replace(row, heartbeat_at=self._now())

    async def acquire(self, key: str) -> Claim:
        """Take the lock ``key`` if it is free or abandoned; see `Ledger.acquire`."""
        check_key(key)
        async with self._lock:
            row, now = self._rows.get(key), self._now()
            answer, write = decide_lock(key, row, now, self.lease, self.liveness)
            if write is not None:
                self._rows[key] = write
            return answer

    async def unlock(self, key: str, token: str, data: Mapping[str, Any]) -> None:
        """Give the lock back with ``data`` for the next holder; see `Ledger.unlock`."""
        check_key(key)
        check_token(token)
        encoded = encode_result(data)
        async with self._lock:
            row = check_live_owner(key, token, self._rows.get(key), "unlock")
            self._rows[key] = Row("done", token, row.claimed_at, row.attempts, self._now(), encoded)

    async def purge(self) -> int:
        """Drop results finished more than ``retention`` seconds ago; returns how many.

        Does nothing (returns 0) when ``retention`` is ``None``. A purged key can be claimed as
        ``"new"`` again, so keep results longer than providers retry deliveries (days, not minutes).
        """
        if self.retention is None:
            return 0
        cutoff = self._now() - self.retention
        async with self._lock:
            old = [
                k
                for k, row in self._rows.items()
                if row.completed_at is not None and row.completed_at <= cutoff
            ]
            for k in old:
                del self._rows[k]
            return len(old)
