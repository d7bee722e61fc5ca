"""Background usage ingest: `events.submit`, its flusher, and durable outboxes.

``client.events.submit(...)`` validates and encodes an event, fixes its id and returns at once;
a background flusher sends batches. Memory mode keeps a bounded queue (``IngestOptions``);
``outbox=SQLiteOutbox(path)`` or ``outbox=PostgresOutbox(dsn)`` commit each event before submit
returns and delete it only after OpenMeter accepted it. See ``docs/events.md``, ``docs/outbox.md``.
"""

from ._reconcile import ReconcileResult
from .options import DeadLetter, IngestOptions, IngestStats, OverflowPolicy, QueueFullError
from .outbox import Lease, Outbox
from .postgres_outbox import DEFAULT_OUTBOX_TABLE, PostgresOutbox, postgres_outbox_ddl
from .sqlite_outbox import SQLiteOutbox

__all__ = [
    "DEFAULT_OUTBOX_TABLE",
    "DeadLetter",
    "IngestOptions",
    "IngestStats",
    "Lease",
    "Outbox",
    "OverflowPolicy",
    "PostgresOutbox",
    "QueueFullError",
    "ReconcileResult",
    "SQLiteOutbox",
    "postgres_outbox_ddl",
]
