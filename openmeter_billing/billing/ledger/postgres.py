"""`PostgresLedger`: the exactly-once guard shared by every worker on every host.

Needs psycopg 3 (``pip install 'openmeter-billing[postgres]'``), imported only when a PostgreSQL
ledger is built so the rest of the library never pays for it.

Clock: every timestamp (``claimed_at``, ``completed_at``) comes from the ledger's ``now`` callable
(``time.time`` by default), never from the database server. That keeps the lease rule identical to
the other ledgers and lets tests move time; in production it means hosts sharing a table need
clocks in sync (NTP), with skew far below the lease.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, runtime_checkable

import anyio

from ..._exceptions import ConfigurationError
from ..._secret import Secret
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
    decode_result,
    encode_result,
    new_token,
)
from ._postgres_sql import DEFAULT_POSTGRES_TABLE, LedgerSQL, quote_table
from ._protocol import Claim, LedgerClaimLostError

if TYPE_CHECKING:
    import psycopg

__all__ = ["AsyncConnectionPoolLike", "PostgresLedger", "migrate_postgres_ledger"]


@runtime_checkable
class AsyncConnectionPoolLike(Protocol):
    """What the ledger needs from a pool, e.g. ``psycopg_pool.AsyncConnectionPool``."""

    def connection(self) -> AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]:
        """Lend a connection for the duration of an ``async with`` block."""
        ...


def _import_psycopg() -> ModuleType:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError(
            "the PostgreSQL ledger needs psycopg 3, which is not installed: "
            "pip install 'openmeter-billing[postgres]'"
        ) from exc
    return psycopg


class PostgresLedger(LedgerBase):
    """A ledger in a PostgreSQL table: one winner per key across every process and host.

    A claim is a single ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <stale> RETURNING`` statement,
    so two workers can never both win: PostgreSQL's unique index decides, not a read-then-write.

    Args:
        dsn_or_pool: A connection string (the ledger opens and owns one autocommit connection), a
            ``psycopg_pool.AsyncConnectionPool`` (best for many concurrent claims), or a
            ``psycopg.AsyncConnection`` that nothing else uses meanwhile. Each operation commits
            on its own. Pools and connections you pass stay yours: `aclose` leaves them open.
        lease: Seconds a claim stays exclusive; an older unfinished claim is taken over by the next
            ``claim`` (``recovered=True``). Set it above your slowest operation.
        retention: Seconds to keep finished results before `purge` may drop them; ``None`` keeps
            them forever.
        table: ``name`` or ``schema.name`` of the table.
        create_table: Create the table on first use (needs CREATE rights). Pass ``False`` when you
            apply `postgres_ledger_ddl` through your own migrations.
        liveness: Seconds an owner that heartbeats (`renew`) may stay silent before its claim
            counts as abandoned (a killed worker's key is free again after this long).
        now: The clock, seconds since the epoch; see the module notes on clock skew.

    Example::

        ledger = PostgresLedger("postgresql://app@db/app", lease=120)
        claim = await ledger.claim("stripe:evt_123")
    """

    def __init__(
        self,
        dsn_or_pool: str | AsyncConnectionPoolLike | psycopg.AsyncConnection[Any],
        *,
        lease: float = DEFAULT_LEASE,
        retention: float | None = None,
        table: str = DEFAULT_POSTGRES_TABLE,
        create_table: bool = True,
        liveness: float = DEFAULT_LIVENESS,
        now: Clock = time.time,
    ) -> None:
        super().__init__(lease=lease, retention=retention, now=now, liveness=liveness)
        self._psycopg = _import_psycopg()
        self.table = table
        self._sql = LedgerSQL.for_table(table)
        # Exactly one of these is set: where connections come from.
        self._dsn: Secret | None = None  # it may hold a password: never in repr, vars or pickle
        self._lent: psycopg.AsyncConnection[Any] | None = None
        self._pool: AsyncConnectionPoolLike | None = None
        if isinstance(dsn_or_pool, str):
            self._dsn = Secret(dsn_or_pool)
        elif isinstance(dsn_or_pool, self._psycopg.AsyncConnection):
            self._lent = dsn_or_pool
        else:
            self._pool = _check_pool(dsn_or_pool)
        self._owned: psycopg.AsyncConnection[Any] | None = None
        self._lock = anyio.Lock()  # one statement at a time on a single (owned or lent) connection
        self._needs_table = create_table
        self._closed = False

    def __repr__(self) -> str:
        source = "dsn" if self._dsn else "pool" if self._pool is not None else "connection"
        return f"<PostgresLedger table={self.table!r} source={source} lease={self.lease:g}s>"

    def __reduce__(self) -> NoReturn:
        raise TypeError(
            "a PostgresLedger holds connections and credentials and cannot be pickled; create "
            "one per process from your configuration"
        )

    async def claim(self, key: str) -> Claim:
        """Take ``key`` if it is free or its owner's lease ran out; see `Ledger.claim`."""
        check_key(key)
        async with self._connection() as conn:
            while True:
                token, params = self._take_params(key)
                won = await (await conn.execute(self._sql.claim, params)).fetchone()
                if won is not None:
                    return Claim("new", key, token, None, recovered=won[0] > 1)
                existing = self._peek(key, await self._select(conn, key))
                if existing is not None:
                    return existing
                # The row was released or purged between the two statements: claim again. Each
                # repeat needs another worker to finish with the key in that instant.

    async def complete(self, key: str, token: str, result: Mapping[str, Any]) -> None:
        """Store ``result`` for good; repeating it with the same token is a no-op."""
        check_key(key)
        check_token(token)
        params = {"key": key, "token": token, "now": self._now(), "result": encode_result(result)}
        async with self._connection() as conn:
            if await (await conn.execute(self._sql.complete, params)).fetchone() is not None:
                return
            # Nothing updated: explain why (or accept a repeated complete by the same owner).
            check_owner(key, token, await self._select(conn, key), "complete")

    async def release(self, key: str, token: str) -> None:
        """Forget an unfinished claim so the next ``claim`` is ``"new"`` (not recovered)."""
        check_key(key)
        check_token(token)
        async with self._connection() as conn:
            params = {"key": key, "token": token}
            if await (await conn.execute(self._sql.release, params)).fetchone() is not None:
                return
            if check_owner(key, token, await self._select(conn, key), "release"):
                raise LedgerClaimLostError(key, token, "cannot release: the key is already done")

    async def get(self, key: str) -> Claim | None:
        """Peek at ``key``: ``"in_progress"``, ``"done"`` with its result, or ``None``."""
        check_key(key)
        async with self._connection() as conn:
            return self._peek(key, await self._select(conn, key))

    async def renew(self, key: str, token: str) -> None:
        """Heartbeat for a claim or lock you hold; see `Ledger.renew`."""
        check_key(key)
        check_token(token)
        params = {"key": key, "token": token, "now": self._now()}
        async with self._connection() as conn:
            if await (await conn.execute(self._sql.renew, params)).fetchone() is None:
                check_live_owner(key, token, await self._select(conn, key), "renew")

    async def acquire(self, key: str) -> Claim:
        """Take the lock ``key`` if it is free or abandoned; see `Ledger.acquire`."""
        check_key(key)
        token, params = self._take_params(key)
        async with self._connection() as conn:
            won = await (await conn.execute(self._sql.acquire, params)).fetchone()
        if won is None:
            return Claim("in_progress", key, None, None)
        return Claim("new", key, token, decode_result(won[1]), recovered=won[0] > 1)

    async def unlock(self, key: str, token: str, data: Mapping[str, Any]) -> None:
        """Give the lock back with ``data`` for the next holder; see `Ledger.unlock`."""
        check_key(key)
        check_token(token)
        params = {"key": key, "token": token, "now": self._now(), "result": encode_result(data)}
        async with self._connection() as conn:
            if await (await conn.execute(self._sql.unlock, params)).fetchone() is None:
                check_live_owner(key, token, await self._select(conn, key), "unlock")

    def _take_params(self, key: str) -> tuple[str, dict[str, Any]]:
        """A fresh token and the parameters of a claim or acquire at this ledger's "now"."""
        token, now = new_token(), self._now()
        return token, {
            "key": key,
            "token": token,
            "now": now,
            "stale_before": now - self.lease,
            "silent_before": now - self.liveness,
        }

    async def purge(self) -> int:
        """Drop results finished more than ``retention`` seconds ago; returns how many.

        Does nothing (returns 0) when ``retention`` is ``None``. A purged key can be claimed as
        ``"new"`` again, so keep results longer than providers retry deliveries (days, not minutes).
        """
        if self.retention is None:
            return 0
        async with self._connection() as conn:
            cursor = await conn.execute(self._sql.purge, {"cutoff": self._now() - self.retention})
            return int(cursor.rowcount)

    async def aclose(self) -> None:
        """Close the connection the ledger opened itself; pools and lent connections stay open."""
        async with self._lock:
            self._closed = True
            if self._owned is not None:
                await self._owned.close()
                self._owned = None

    async def _select(self, conn: psycopg.AsyncConnection[Any], key: str) -> Row | None:
        found = await (await conn.execute(self._sql.select, {"key": key})).fetchone()
        if found is None:
            return None
        state, token, claimed_at, attempts, completed_at, result, heartbeat_at = found
        return Row(state, token, claimed_at, attempts, completed_at, result, heartbeat_at)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """Lend a connection for one operation, creating the table first if asked to."""
        async with self._borrow() as conn:
            await self._ensure_table(conn)
            if conn.autocommit:
                yield conn
            else:
                # Pools hand out non-autocommit connections: commit each operation on its own,
                # so a claim is visible (and its row lock released) the moment it returns.
                async with conn.transaction():
                    yield conn

    @asynccontextmanager
    async def _borrow(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._pool is not None:
            self._refuse_if_closed()
            async with self._pool.connection() as conn:
                yield conn
            return
        async with self._lock:
            self._refuse_if_closed()  # checked under the lock: aclose may have run while we waited
            yield await self._single_connection()

    def _refuse_if_closed(self) -> None:
        if self._closed:
            raise ConfigurationError("this PostgresLedger was closed; create a new one")

    async def _single_connection(self) -> psycopg.AsyncConnection[Any]:
        """The lent connection, or our own one (reopened after the server dropped it)."""
        if self._lent is not None:
            return self._lent
        if self._owned is None or self._owned.closed or self._owned.broken:
            connect = self._psycopg.AsyncConnection.connect
            assert self._dsn is not None  # set when neither a pool nor a connection was lent
            self._owned = await connect(self._dsn.reveal(), autocommit=True)
        return self._owned

    async def _ensure_table(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self._needs_table:
            await _migrate_on(conn, self.table, self._sql.ddl)
            self._needs_table = False


def _check_pool(source: object) -> AsyncConnectionPoolLike:
    """Accept an async pool; refuse synchronous pools and connections with a clear message."""
    # A method, not the `connection` property that psycopg's connections also have.
    if callable(getattr(type(source), "connection", None)):
        assert isinstance(source, AsyncConnectionPoolLike)
        if hasattr(source.connection(), "__aenter__"):
            return source
    raise ConfigurationError(
        "dsn_or_pool: expected a connection string, a psycopg_pool.AsyncConnectionPool or a "
        f"psycopg.AsyncConnection, got {type(source).__name__} (synchronous connections and "
        "pools cannot be used from async code)"
    )


async def _migrate_on(conn: psycopg.AsyncConnection[Any], table: str, ddl: str) -> None:
    """Apply ``ddl`` in one transaction, serialised so parallel first runs do not collide."""
    async with conn.transaction():
        # CREATE TABLE IF NOT EXISTS races on the catalog when two workers start at once.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
        await conn.execute(ddl)


async def migrate_postgres_ledger(
    conn_or_dsn: str | psycopg.AsyncConnection[Any],
    *,
    table: str = DEFAULT_POSTGRES_TABLE,
) -> None:
    """Create the ledger table (and its purge index) if missing; safe to run on every deploy.

    Run it from your deploy step when the app's database user may not create tables, and build the
    ledger with ``create_table=False``. The SQL is `postgres_ledger_ddl`.

    Example::

        await migrate_postgres_ledger("postgresql://admin@db/app", table="billing.ledger")
    """
    psycopg = _import_psycopg()
    quote_table(table)  # a bad name fails here, before connecting
    ddl = LedgerSQL.for_table(table).ddl
    if isinstance(conn_or_dsn, str):
        async with await psycopg.AsyncConnection.connect(conn_or_dsn) as conn:
            await _migrate_on(conn, table, ddl)
    elif isinstance(conn_or_dsn, psycopg.AsyncConnection):
        await _migrate_on(conn_or_dsn, table, ddl)
    else:
        raise ConfigurationError(
            "conn_or_dsn: expected a connection string or a psycopg.AsyncConnection, "
            f"got {type(conn_or_dsn).__name__}"
        )
