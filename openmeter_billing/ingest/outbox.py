"""The durable outbox contract: events committed at submit, deleted only once OpenMeter took them.

Two backends ship: `SQLiteOutbox` (every process on one host) and `PostgresOutbox` (many app
servers, and `events.submit_in` for usage recorded in your own transaction). Anything with the
same methods works. Methods are blocking; the flusher calls them from a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ._queue import Item
from .options import DeadLetter

__all__ = ["Lease", "Outbox"]


@runtime_checkable
class Lease(Protocol):
    """Rows one sender holds; no other sender gets them until `finish` (or the holder dies)."""

    @property
    def items(self) -> list[Item]:
        """``(event id, encoded event)`` in submit order."""
        ...

    def renew(self) -> None:
        """Keep holding the rows (called before each retry of a long outage)."""
        ...

    def finish(self, delivered: Sequence[str], dead: Sequence[DeadLetter]) -> None:
        """Delete ``delivered``, move ``dead`` to the dead letters, hand the rest back."""
        ...


@runtime_checkable
class Outbox(Protocol):
    """Durable storage for events between `events.submit` and OpenMeter's acknowledgement."""

    def put(self, items: Sequence[Item]) -> None:
        """Store ``items``; when this returns they are committed."""
        ...

    def claim(self, max_events: int, max_bytes: int) -> Lease | None:
        """Lease the oldest unleased rows (one batch), or None when there are none."""
        ...

    def pending(self) -> int:
        """Rows not yet delivered, leased or not, written by any process."""
        ...

    def dead_letters(self) -> list[DeadLetter]:
        """Events OpenMeter rejected, with its reason (kept until you delete them)."""
        ...

    def close(self) -> None:
        """Close this process's connections (rows stay)."""
        ...
