"""`PostgresOutbox`: one outbox for many app servers, and usage recorded in your own transaction.

Leases are row locks: a sender opens a transaction, selects the oldest rows ``FOR UPDATE SKIP
LOCKED`` (another sender skips them instead of waiting), sends them, deletes the delivered rows
and commits. Two relays therefore never send the same rows at once, and if a relay dies its
connection drops, the transaction rolls back and the rows are free again. A transaction stays
open while its batch is sent or retried (``idle in transaction`` for that long is expected).

`transactional_insert` (used by ``events.submit_in``) writes a row with the application's own
connection: the event exists if and only if the application's transaction commits.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError
from .._runtime import abandon, fork_generation
from ..billing.ledger._common import check_identifier
from ._queue import Item
from .options import DeadLetter

if TYPE_CHECKING:
    import psycopg

__all__ = ["DEFAULT_OUTBOX_TABLE", "PostgresOutbox", "postgres_outbox_ddl"]

DEFAULT_OUTBOX_TABLE = "openmeter_billing_outbox"


def _import_psycopg() -> ModuleType:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError(
            "PostgresOutbox needs psycopg 3, which is not installed: "
            "pip install 'openmeter-billing[postgres]'"
        ) from exc
    return psycopg


def postgres_outbox_ddl(table: str = DEFAULT_OUTBOX_TABLE) -> str:
    """The SQL creating the outbox and its dead-letter table (idempotent, for your migrations)."""
    quoted, dead = _names(table)
    return (
        f"CREATE TABLE IF NOT EXISTS {quoted} (seq bigserial PRIMARY KEY, "
        "event_id text NOT NULL, body bytea NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now());\n"
        f"CREATE TABLE IF NOT EXISTS {dead} (seq bigserial PRIMARY KEY, event_id text NOT NULL, "
        "body bytea NOT NULL, status integer NOT NULL, reason text NOT NULL, "
        "at timestamptz NOT NULL DEFAULT now());"
    )


def _names(table: str) -> tuple[str, str]:
    parts = check_identifier("table", table, allow_schema=True)
    quoted = ".".join(f'"{p}"' for p in parts)
    dead = ".".join(f'"{p}"' for p in (*parts[:-1], (parts[-1] + "_dead")[:63]))
    return quoted, dead


class PostgresOutbox:
    """A durable outbox in PostgreSQL, shared by every process on every host.

    Args:
        dsn: A libpq connection string. The outbox opens its own connections (one per
            submitting thread, one per batch in flight); after a fork the child opens new ones.
        table: ``name`` or ``schema.name``; a ``<name>_dead`` table keeps rejected events.
        create_table: Create both tables on first use; pass False when you apply
            `postgres_outbox_ddl` through your migrations.
    """

    def __init__(
        self, dsn: str, *, table: str = DEFAULT_OUTBOX_TABLE, create_table: bool = True
    ) -> None:
        given: object = dsn
        if not isinstance(given, str) or not dsn:
            raise ConfigurationError("PostgresOutbox needs a connection string (dsn=...)")
        self._psycopg = _import_psycopg()
        self._dsn = dsn
        self.table = table
        self._table, self._dead = _names(table)
        self._local = threading.local()
        self._idle: list[psycopg.Connection[Any]] = []
        self._all: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._generation = fork_generation()
        if create_table:
            with self._psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(postgres_outbox_ddl(table))

    def __repr__(self) -> str:
        return f"PostgresOutbox(table={self.table!r})"  # never the DSN: it may hold a password

    def _check_fork(self) -> None:
        if self._generation != fork_generation():
            with self._lock:
                if self._generation != fork_generation():
                    abandon((self._local, self._idle, self._all))  # the parent's sockets
                    self._local = threading.local()
                    self._idle, self._all = [], []
                    self._generation = fork_generation()

    def _new_connection(self, autocommit: bool) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] = self._psycopg.connect(self._dsn, autocommit=autocommit)
        with self._lock:
            self._all.append(conn)
        return conn

    def _own(self) -> psycopg.Connection[Any]:
        self._check_fork()
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._new_connection(autocommit=False)
            self._local.conn = conn
        return conn

    def put(self, items: Sequence[Item]) -> None:
        """Insert ``items`` in one committed transaction."""
        conn = self._own()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(self.insert_sql, items)

    @property
    def insert_sql(self) -> str:
        """The INSERT ``submit_in`` runs on the application's connection (two parameters)."""
        return f"INSERT INTO {self._table} (event_id, body) VALUES (%s, %s)"  # noqa: S608

    def claim(self, max_events: int, max_bytes: int) -> _PostgresLease | None:
        """Lock the oldest unlocked rows in a transaction that stays open until `finish`."""
        self._check_fork()
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._new_connection(autocommit=False)
        try:
            rows = conn.execute(
                f"SELECT seq, event_id, body FROM {self._table} ORDER BY seq "  # noqa: S608
                "LIMIT %s FOR UPDATE SKIP LOCKED",
                (max_events,),
            ).fetchall()
        except BaseException:
            conn.close()
            raise
        rows = _fit(rows, max_bytes)
        if not rows:
            conn.rollback()
            self._give_back(conn)
            return None
        return _PostgresLease(self, conn, [(s, i, bytes(b)) for s, i, b in rows])

    def _give_back(self, conn: psycopg.Connection[Any]) -> None:
        if self._generation == fork_generation() and not conn.closed:
            with self._lock:
                self._idle.append(conn)

    def pending(self) -> int:
        """Undelivered rows (including rows leased right now)."""
        conn = self._own()
        with conn.transaction():
            row = conn.execute(f"SELECT count(*) FROM {self._table}").fetchone()  # noqa: S608
        return int(row[0]) if row else 0

    def dead_letters(self) -> list[DeadLetter]:
        """Events OpenMeter rejected, oldest first."""
        conn = self._own()
        with conn.transaction():
            rows = conn.execute(
                f"SELECT event_id, body, status, reason FROM {self._dead} ORDER BY seq"  # noqa: S608
            ).fetchall()
        return [DeadLetter(i, bytes(b), int(s), str(r)) for i, b, s, r in rows]

    def close(self) -> None:
        """Close this process's connections."""
        if self._generation != fork_generation():
            return
        with self._lock:
            connections, self._all, self._idle = self._all, [], []
            self._local = threading.local()
        for conn in connections:
            conn.close()


class _PostgresLease:
    def __init__(
        self,
        outbox: PostgresOutbox,
        conn: psycopg.Connection[Any],
        rows: list[tuple[int, str, bytes]],
    ) -> None:
        self._outbox = outbox
        self._conn = conn
        self._rows = rows
        self.items: list[Item] = [(event_id, body) for _, event_id, body in rows]

    def renew(self) -> None:
        """Row locks last as long as the transaction: nothing to renew."""

    def finish(self, delivered: Sequence[str], dead: Sequence[DeadLetter]) -> None:
        gone = set(delivered) | {letter.event_id for letter in dead}
        conn = self._conn
        try:
            with conn.cursor() as cur:
                seqs = [seq for seq, event_id, _ in self._rows if event_id in gone]
                if seqs:
                    cur.execute(
                        f"DELETE FROM {self._outbox._table} WHERE seq = ANY(%s)",  # noqa: S608
                        (seqs,),
                    )
                if dead:
                    cur.executemany(
                        f"INSERT INTO {self._outbox._dead} (event_id, body, status, reason) "  # noqa: S608
                        "VALUES (%s, %s, %s, %s)",
                        [(d.event_id, d.body, d.status, d.reason) for d in dead],
                    )
            conn.commit()
        except BaseException:
            conn.close()  # the rows stay locked until the server sees the connection gone
            raise
        self._outbox._give_back(conn)


def _fit(rows: list[Any], max_bytes: int) -> list[Any]:
    total = 2
    for index, row in enumerate(rows):
        total += len(row[2]) + 1
        if index and total > max_bytes:
            return rows[:index]
    return list(rows)
