"""`SQLiteOutbox`: lossless delivery for every process on one host, with nothing to run.

WAL journal with ``synchronous=NORMAL``: a committed event survives the process being killed
(it may be lost on power failure or an OS crash; pass ``synchronous="FULL"`` to fsync each
commit). Concurrent `put` calls share commits (group commit): the thread that gets the write lock
commits every row queued so far, so throughput grows with the number of submitters.

Leases: a sender marks rows with its owner (``pid:token``) and a deadline. Rows of a process that
died (killed, crashed) are taken over at once by any process on the host (its pid no longer
exists); rows of a live but stuck process after ``lease_seconds``.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from .._exceptions import ConfigurationError
from .._runtime import fork_generation
from ._queue import Item
from .options import DeadLetter

__all__ = ["SQLiteOutbox"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    body BLOB NOT NULL,
    lease_owner TEXT,
    lease_until REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_lease ON outbox (lease_until, seq);
CREATE TABLE IF NOT EXISTS outbox_dead (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    body BLOB NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
"""

_INSERT = "INSERT INTO outbox (event_id, body) VALUES (?, ?)"


class SQLiteOutbox:
    """A durable outbox in one SQLite file (see the module docstring for the guarantees).

    Args:
        path: The database file (created with its tables if missing). Share it between processes
            on one host; do not put it on a network file system.
        lease_seconds: How long a live sender may hold rows without renewing them.
        synchronous: ``NORMAL`` (survives process crashes) or ``FULL`` (also power loss).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lease_seconds: float = 60.0,
        synchronous: str = "NORMAL",
    ) -> None:
        if synchronous.upper() not in ("NORMAL", "FULL"):
            raise ConfigurationError(
                f"SQLiteOutbox synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}"
            )
        if lease_seconds <= 0:
            raise ConfigurationError("SQLiteOutbox lease_seconds must be positive")
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        self._synchronous = synchronous.upper()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._token = uuid.uuid4().hex[:12]
        self._generation = fork_generation()
        # Group commit: rows waiting for the writer, each with a slot for its outcome.
        self._waiting: list[tuple[Sequence[Item], list[object]]] = []
        self._waiting_lock = threading.Lock()
        self._write_lock = threading.Lock()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"SQLiteOutbox({str(self.path)!r})"

    @property
    def owner(self) -> str:
        """This process's lease owner name (the pid lets others see when it died)."""
        return f"{os.getpid()}:{self._token}"

    def _connect(self) -> sqlite3.Connection:
        if self._generation != fork_generation():  # a child: the parent's handles are not ours
            with self._lock:
                if self._generation != fork_generation():
                    self._local = threading.local()
                    self._connections = []
                    self._generation = fork_generation()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def put(self, items: Sequence[Item]) -> None:
        """Commit ``items``; concurrent callers share one transaction (group commit)."""
        slot: list[object] = [None]
        with self._waiting_lock:
            self._waiting.append((items, slot))
        with self._write_lock:
            if slot[0] is None:
                with self._waiting_lock:
                    group, self._waiting = self._waiting, []
                self._commit_group(group)
        if slot[0] is not True:
            raise slot[0]  # type: ignore[misc]  # the exception the shared commit raised

    def _commit_group(self, group: list[tuple[Sequence[Item], list[object]]]) -> None:
        conn = self._connect()
        outcome: object = True
        rows = [item for items, _ in group for item in items]
        try:
            if len(rows) == 1:  # alone: one statement is its own transaction
                conn.execute(_INSERT, rows[0])
            else:
                self._insert_many(conn, rows)
        except Exception as exc:
            outcome = exc
        for _, slot in group:
            slot[0] = outcome

    @staticmethod
    def _insert_many(conn: sqlite3.Connection, rows: list[Item]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def claim(self, max_events: int, max_bytes: int) -> _SQLiteLease | None:
        """Lease the oldest free rows (rows of dead processes count as free)."""
        conn = self._connect()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._free_dead_owners(conn, now)
            rows = conn.execute(
                "SELECT seq, event_id, body FROM outbox WHERE lease_until < ? ORDER BY seq LIMIT ?",
                (now, max_events),
            ).fetchall()
            rows = _fit(rows, max_bytes)
            if rows:
                conn.executemany(
                    "UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE seq = ?",
                    [(self.owner, now + self.lease_seconds, seq) for seq, _, _ in rows],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if not rows:
            return None
        return _SQLiteLease(self, [(seq, event_id, bytes(body)) for seq, event_id, body in rows])

    def _free_dead_owners(self, conn: sqlite3.Connection, now: float) -> None:
        owners = conn.execute(
            "SELECT DISTINCT lease_owner FROM outbox WHERE lease_until >= ?", (now,)
        ).fetchall()
        dead = [owner for (owner,) in owners if owner and not _alive(owner)]
        if dead:
            conn.executemany(
                "UPDATE outbox SET lease_owner = NULL, lease_until = 0 WHERE lease_owner = ?",
                [(owner,) for owner in dead],
            )

    def pending(self) -> int:
        """Undelivered rows of every process."""
        (count,) = self._connect().execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    def dead_letters(self) -> list[DeadLetter]:
        """Events OpenMeter rejected, oldest first."""
        rows = self._connect().execute(
            "SELECT event_id, body, status, reason FROM outbox_dead ORDER BY seq"
        )
        return [DeadLetter(i, bytes(b), int(s), str(r)) for i, b, s, r in rows.fetchall()]

    def close(self) -> None:
        """Close this process's connections."""
        if self._generation != fork_generation():
            return  # inherited handles: leave them to the parent
        with self._lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            conn.close()


class _SQLiteLease:
    def __init__(self, outbox: SQLiteOutbox, rows: list[tuple[int, str, bytes]]) -> None:
        self._outbox = outbox
        self._rows = rows
        self.items: list[Item] = [(event_id, body) for _, event_id, body in rows]

    def renew(self) -> None:
        conn = self._outbox._connect()
        until = time.time() + self._outbox.lease_seconds
        conn.executemany(
            "UPDATE outbox SET lease_until = ? WHERE seq = ? AND lease_owner = ?",
            [(until, seq, self._outbox.owner) for seq, _, _ in self._rows],
        )

    def finish(self, delivered: Sequence[str], dead: Sequence[DeadLetter]) -> None:
        done = set(delivered)
        dead_ids = {letter.event_id for letter in dead}
        conn = self._outbox._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            settled = [
                (seq,)
                for seq, event_id, _ in self._rows
                if event_id in done or event_id in dead_ids
            ]
            conn.executemany("DELETE FROM outbox WHERE seq = ?", settled)
            if len(settled) < len(self._rows):
                gone = {seq for (seq,) in settled}
                conn.executemany(
                    "UPDATE outbox SET lease_owner = NULL, lease_until = 0 "
                    "WHERE seq = ? AND lease_owner = ?",
                    [(seq, self._outbox.owner) for seq, _, _ in self._rows if seq not in gone],
                )
            conn.executemany(
                "INSERT INTO outbox_dead (event_id, body, status, reason, at) VALUES (?,?,?,?,?)",
                [(d.event_id, d.body, d.status, d.reason, time.time()) for d in dead],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _fit(rows: list[tuple[int, str, bytes]], max_bytes: int) -> list[tuple[int, str, bytes]]:
    """The longest prefix of ``rows`` whose JSON array fits ``max_bytes`` (at least one row)."""
    total = 2
    for index, (_, _, body) in enumerate(rows):
        total += len(body) + 1
        if index and total > max_bytes:
            return rows[:index]
    return rows


def _alive(owner: str) -> bool:
    """Whether the process named in a lease owner still runs (on this host)."""
    pid_text = owner.split(":", 1)[0]
    if not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True
