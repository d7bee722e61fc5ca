"""Webhook inboxes: every delivery recorded (headers without credentials, body, verdict,
outcome) so a failed one can be replayed with ``client.webhooks.replay(delivery_id)``."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import anyio.to_thread

__all__ = ["InMemoryInbox", "InboxEntry", "SQLiteInbox", "WebhookInbox"]

#: Headers never stored: credentials and cookies (signatures are kept: they are not secrets).
_DROPPED = {"authorization", "cookie", "proxy-authorization", "x-api-key"}


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers worth keeping, lower-cased, without credentials."""
    return {k.lower(): v for k, v in headers.items() if k.lower() not in _DROPPED}


@dataclass(frozen=True)
class InboxEntry:
    """One delivery as received and what became of it.

    ``verdict`` is ``verified`` or a `WebhookVerificationError` reason; only verified entries
    can be replayed. ``event_type``/``occurred_at`` are set once verified.
    """

    provider: str
    delivery_id: str
    received_at: str
    headers: Mapping[str, str]
    body: bytes
    verdict: str
    outcome: str
    http_status: int
    event_type: str | None = None
    occurred_at: str | None = None


@runtime_checkable
class WebhookInbox(Protocol):
    """Where deliveries are recorded. Keys are (provider, delivery id); the last write wins."""

    async def record(self, entry: InboxEntry) -> None:
        """Store or replace the entry for its provider and delivery id."""
        ...

    async def find(self, delivery_id: str, provider: str | None = None) -> list[InboxEntry]:
        """Entries with this delivery id (of one provider when given)."""
        ...


class InMemoryInbox:
    """An inbox for tests and one process."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], InboxEntry] = {}

    async def record(self, entry: InboxEntry) -> None:
        self._entries[(entry.provider, entry.delivery_id)] = entry

    async def find(self, delivery_id: str, provider: str | None = None) -> list[InboxEntry]:
        return [
            e for (p, d), e in self._entries.items() if d == delivery_id and provider in (None, p)
        ]

    def entries(self) -> list[InboxEntry]:
        """Everything recorded, oldest first."""
        return list(self._entries.values())


class SQLiteInbox:
    """An inbox in a SQLite file, shared by every process on the host."""

    def __init__(self, path: str | Path = "openmeter_billing_inbox.sqlite3") -> None:
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS webhook_inbox (provider TEXT, delivery_id TEXT, "
                "received_at TEXT, headers TEXT, body BLOB, verdict TEXT, outcome TEXT, "
                "http_status INTEGER, event_type TEXT, occurred_at TEXT, "
                "PRIMARY KEY (provider, delivery_id))"
            )

    async def record(self, entry: InboxEntry) -> None:
        row = (
            entry.provider,
            entry.delivery_id,
            entry.received_at,
            json.dumps(dict(entry.headers)),
            entry.body,
            entry.verdict,
            entry.outcome,
            entry.http_status,
            entry.event_type,
            entry.occurred_at,
        )
        await anyio.to_thread.run_sync(self._write, row)

    def _write(self, row: tuple[object, ...]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO webhook_inbox VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row
            )

    async def find(self, delivery_id: str, provider: str | None = None) -> list[InboxEntry]:
        return await anyio.to_thread.run_sync(self._read, delivery_id, provider)

    def _read(self, delivery_id: str, provider: str | None) -> list[InboxEntry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM webhook_inbox WHERE delivery_id = ? AND (? IS NULL OR provider = ?)",
                (delivery_id, provider, provider),
            ).fetchall()
        return [
            InboxEntry(
                r[0], r[1], r[2], json.loads(r[3]), bytes(r[4]), r[5], r[6], r[7], r[8], r[9]
            )
            for r in rows
        ]

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()


def with_outcome(entry: InboxEntry, outcome: str, http_status: int) -> InboxEntry:
    """A copy of ``entry`` with a new outcome."""
    return replace(entry, outcome=outcome, http_status=http_status)
