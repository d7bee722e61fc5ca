"""`SQLiteLedger`: the embedded exactly-once guard for every worker process on one host.

Each operation is one short ``BEGIN IMMEDIATE`` transaction: SQLite hands out its write lock to
one connection at a time across all processes, so reading the row and writing the claim cannot
interleave with another worker's. WAL journaling lets `get` read while a claim writes. The
blocking ``sqlite3`` calls run in anyio's worker threads so the event loop never waits on the disk
or on a busy lock.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import anyio.to_thread

from ..._exceptions import ConfigurationError
from ._common import (
    DEFAULT_LEASE,
    DEFAULT_LIVENESS,
    Clock,
    LedgerBase,
    Row,
    check_identifier,
    check_key,
    check_live_owner,
    check_owner,
    check_seconds,
    check_token,
    decide_claim,
    decide_lock,
    encode_result,
)
from ._protocol import Claim, LedgerClaimLostError

__all__ = ["DEFAULT_SQLITE_PATH", "SQLiteLedger"]

DEFAULT_SQLITE_PATH = "openmeter-billing-ledger.sqlite3"
_T = TypeVar("_T")


class SQLiteLedger(LedgerBase):
    """A ledger in a SQLite file, safe across threads, tasks and processes on one host.

    The table is created on first use. Point every worker of one deployment at the same file on a
    local disk (not NFS: SQLite's locks are unreliable there). For several hosts, use
    `PostgresLedger`.

    Args:
        path: The database file (created if missing; its folder must exist), or ``":memory:"``.
        lease: Seconds a claim stays exclusive; an older unfinished claim is taken over by the next
            ``claim`` (``recovered=True``). Set it above your slowest operation.
        retention: Seconds to keep finished results before `purge` may drop them; ``None`` keeps
            them forever.
        table: The table name, for sharing one file with other data.
        busy_timeout: Seconds to wait for another process's write lock before failing.
        liveness: Seconds an owner that heartbeats (`renew`) may stay silent before its claim
            counts as abandoned (a killed worker's key is free again after this long).
        now: The clock (seconds since the epoch); inject a fake one in tests. Every process sharing
            the file should use the same kind of clock.

    Example::

        async with SQLiteLedger("/var/lib/myapp/ledger.sqlite3") as ledger:
            claim = await ledger.claim("stripe:evt_123")
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = DEFAULT_SQLITE_PATH,
        *,
        lease: float = DEFAULT_LEASE,
        retention: float | None = None,
        table: str = "openmeter_billing_ledger",
        busy_timeout: float = 30.0,
        liveness: float = DEFAULT_LIVENESS,
        now: Clock = time.time,
    ) -> None:
        super().__init__(lease=lease, retention=retention, now=now, liveness=liveness)
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigurationError(f"path: must be a file path or ':memory:', got {path!r}")
        self.path = os.fspath(path)
        (self.table,) = check_identifier("table", table)
        checked_timeout = check_seconds("busy_timeout", busy_timeout)
        assert checked_timeout is not None
        self._busy_timeout = checked_timeout
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        # One connection shared by worker threads, one statement sequence at a time.
        self._lock = threading.Lock()

    async def claim(self, key: str) -> Claim:
        """Take ``key`` if it is free or its owner's lease ran out; see `Ledger.claim`."""
        check_key(key)

        def work(conn: sqlite3.Connection) -> Claim:
            row, now = self._select(conn, key), self._now()
            answer, write = decide_claim(key, row, now, self.lease, self.liveness)
            if write is not None:
                self._write(conn, key, write)
            return answer

        return await self._transaction(work)

    async def renew(self, key: str, token: str) -> None:
        """Heartbeat for a claim or lock you hold; see `Ledger.renew`."""
        check_key(key)
        check_token(token)

        def work(conn: sqlite3.Connection) -> None:
            check_live_owner(key, token, self._select(conn, key), "renew")
            conn.execute(
                f'UPDATE "{self.table}" SET heartbeat_at = ? WHERE key = ?',  # noqa: S608
                (self._now(), key),
            )

        await self._transaction(work)

    async def acquire(self, key: str) -> Claim:
        """Take the lock ``key`` if it is free or abandoned; see `Ledger.acquire`."""
        check_key(key)

        def work(conn: sqlite3.Connection) -> Claim:
            row, now = self._select(conn, key), self._now()
            answer, write = decide_lock(key, row, now, self.lease, self.liveness)
            if write is not None:
                self._write(conn, key, write)
            return answer

        return await self._transaction(work)

    async def unlock(self, key: str, token: str, data: Mapping[str, Any]) -> None:
        """Give the lock back with ``data`` for the next holder; see `Ledger.unlock`."""
        check_key(key)
        check_token(token)
        encoded = encode_result(data)

        def work(conn: sqlite3.Connection) -> None:
            check_live_owner(key, token, self._select(conn, key), "unlock")
            conn.execute(
                f'UPDATE "{self.table}" SET state = ?, completed_at = ?, result = ? '  # noqa: S608
                "WHERE key = ?",
                ("done", self._now(), encoded, key),
            )

        await self._transaction(work)

    async def complete(self, key: str, token: str, result: Mapping[str, Any]) -> None:
        """Store ``result`` for good; repeating it with the same token is a no-op."""
        check_key(key)
        check_token(token)
        encoded = encode_result(result)

        def work(conn: sqlite3.Connection) -> None:
            if check_owner(key, token, self._select(conn, key), "complete"):
                return
            conn.execute(
                f'UPDATE "{self.table}" SET state = ?, completed_at = ?, result = ? '  # noqa: S608
                "WHERE key = ?",
                ("done", self._now(), encoded, key),
            )

        await self._transaction(work)

    async def release(self, key: str, token: str) -> None:
        """Forget an unfinished claim so the next ``claim`` is ``"new"`` (not recovered)."""
        check_key(key)
        check_token(token)

        def work(conn: sqlite3.Connection) -> None:
            if check_owner(key, token, self._select(conn, key), "release"):
                raise LedgerClaimLostError(key, token, "cannot release: the key is already done")
            conn.execute(f'DELETE FROM "{self.table}" WHERE key = ?', (key,))  # noqa: S608

        await self._transaction(work)

    async def get(self, key: str) -> Claim | None:
        """Peek at ``key``: ``"in_progress"``, ``"done"`` with its result, or ``None``."""
        check_key(key)
        # A plain read outside any transaction: WAL lets it run beside a writer, so pollers
        # never queue for the write lock.
        return await self._run(lambda conn: self._peek(key, self._select(conn, key)))

    async def purge(self) -> int:
        """Drop results finished more than ``retention`` seconds ago; returns how many.

        Does nothing (returns 0) when ``retention`` is ``None``. A purged key can be claimed as
        ``"new"`` again, so keep results longer than providers retry deliveries (days, not minutes).
        """
        retention = self.retention
        if retention is None:
            return 0

        def work(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                f'DELETE FROM "{self.table}" WHERE completed_at <= ?',  # noqa: S608
                (self._now() - retention,),
            )
            return cursor.rowcount

        return await self._transaction(work)

    async def aclose(self) -> None:
        """Close the connection; the ledger cannot be used afterwards."""

        def close() -> None:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await anyio.to_thread.run_sync(close)

    def _select(self, conn: sqlite3.Connection, key: str) -> Row | None:
        found = conn.execute(
            "SELECT state, token, claimed_at, attempts, completed_at, result, "  # noqa: S608
            f'heartbeat_at FROM "{self.table}" WHERE key = ?',
            (key,),
        ).fetchone()
        return None if found is None else Row(*found)

    def _write(self, conn: sqlite3.Connection, key: str, row: Row) -> None:
        conn.execute(
            f'INSERT OR REPLACE INTO "{self.table}" '  # noqa: S608 - checked identifier
            "(key, state, token, attempts, claimed_at, completed_at, result, heartbeat_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                row.state,
                row.token,
                row.attempts,
                row.claimed_at,
                row.completed_at,
                row.result_json,
                row.heartbeat_at,
            ),
        )

    async def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``work`` in ``BEGIN IMMEDIATE``: it holds the file's write lock from the start."""

        def atomically(conn: sqlite3.Connection) -> _T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                value = work(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return value

        return await self._run(atomically)

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                return work(self._connection())

        return await anyio.to_thread.run_sync(locked)

    def _connection(self) -> sqlite3.Connection:
        """Open (once) and prepare the shared connection; called with the lock held."""
        if self._closed:
            raise ConfigurationError("this SQLiteLedger was closed; create a new one")
        if self._conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=self._busy_timeout,
                    isolation_level=None,  # we issue BEGIN IMMEDIATE/COMMIT ourselves
                    check_same_thread=False,  # anyio's worker threads take turns under the lock
                )
            except sqlite3.OperationalError as exc:
                raise ConfigurationError(
                    f"path: cannot open SQLite ledger {self.path!r}: {exc} "
                    "(create the folder first, or pass a writable path)"
                ) from exc
            try:
                self._prepare(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL is crash-safe with NORMAL; FULL would fsync on every claim for no gain in atomicity.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{self.table}" ('
            "key TEXT PRIMARY KEY NOT NULL, "
            "state TEXT NOT NULL CHECK (state IN ('in_progress', 'done')), "
            "token TEXT NOT NULL, "
            "claimed_at REAL NOT NULL, "
            "attempts INTEGER NOT NULL DEFAULT 1, "
            "completed_at REAL, "
            "result TEXT, "
            "heartbeat_at REAL)"
        )
        columns = {c[1] for c in conn.execute(f'PRAGMA table_info("{self.table}")')}
        if "heartbeat_at" not in columns:  # a file created by an earlier version
            conn.execute(f'ALTER TABLE "{self.table}" ADD COLUMN heartbeat_at REAL')
        conn.execute(
            f'CREATE INDEX IF NOT EXISTS "{self.table}_completed_at" '
            f'ON "{self.table}" (completed_at) WHERE completed_at IS NOT NULL'
        )
