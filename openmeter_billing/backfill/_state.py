"""Checkpoints: which items of an input are done, in a few bytes however long the input is.

Items are numbered by their position in the input, so the input must come back in the same
order on resume (a file does; a callable must). The state is a low watermark (every item below
it is settled), the few items settled above it while older ones were still in flight, and the
failed items, which a resumed run tries again.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import ConfigurationError
from ._report import BackfillFailure

__all__ = ["Checkpoint", "StateFile"]

VERSION = 1


@dataclass
class Checkpoint:
    """Which items of one input are settled (done or failed); the state file's contents.

    Attributes:
        kind: ``customers`` or ``subscriptions``; a checkpoint of one kind is refused by the other.
        source: What the input was (a file path, ``module:callable``); informative.
        watermark: Every item with a lower index is settled.
        settled_above: Settled items at or above the watermark.
        failed: Failed items by index; a resumed run tries them again.
    """

    kind: str
    source: str | None = None
    watermark: int = 0
    settled_above: set[int] = field(default_factory=set)
    failed: dict[int, BackfillFailure] = field(default_factory=dict)

    def is_done(self, index: int) -> bool:
        """Whether an earlier run finished item ``index`` (failed items are not done)."""
        if index in self.failed:
            return False
        return index < self.watermark or index in self.settled_above

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "version": VERSION,
            "kind": self.kind,
            "source": self.source,
            "watermark": self.watermark,
            "settled_above": sorted(self.settled_above),
            "failed": [f.to_dict() for f in sorted(self.failed.values(), key=lambda f: f.index)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> Checkpoint:
        """Read a stored checkpoint; anything unreadable is a `ConfigurationError`."""
        try:
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r} is not {VERSION}")
            failed = [BackfillFailure(**item) for item in data.get("failed", [])]
            return cls(
                kind=str(data["kind"]),
                source=data.get("source"),
                watermark=int(data["watermark"]),
                settled_above={int(i) for i in data.get("settled_above", [])},
                failed={f.index: f for f in failed},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"backfill state {where} is not readable ({exc}); delete it to start over"
            ) from exc


class StateFile:
    """A checkpoint kept in a JSON file, replaced atomically on every save.

    Args:
        path: Where to keep it, for example ``backfill-customers.json``.
        resume: Read the file if it exists and skip what it says is done. False starts over
            (the file is overwritten at the first save).
    """

    def __init__(self, path: str | os.PathLike[str], *, resume: bool = True) -> None:
        self.path = Path(path)
        self.resume = resume

    def __repr__(self) -> str:
        return f"StateFile({str(self.path)!r}, resume={self.resume})"

    def load(self, kind: str, source: str | None) -> Checkpoint:
        """The stored checkpoint (when resuming and it exists), else an empty one."""
        if not self.resume or not self.path.exists():
            return Checkpoint(kind=kind, source=source)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"backfill state {self.path} cannot be read ({exc}); delete it to start over"
            ) from exc
        if not isinstance(data, dict):
            raise ConfigurationError(f"backfill state {self.path} is not a JSON object")
        checkpoint = Checkpoint.from_dict(data, str(self.path))
        if checkpoint.kind != kind:
            raise ConfigurationError(
                f"backfill state {self.path} belongs to a {checkpoint.kind} backfill, not {kind}; "
                "pass another state file"
            )
        return checkpoint

    def save(self, checkpoint: Checkpoint) -> None:
        """Write ``checkpoint`` atomically: a crash leaves the old file or the new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(checkpoint.to_dict(), separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class Tracker:
    """Moves a checkpoint forward as items settle, out of order, under bounded concurrency."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self._in_flight: set[int] = set()
        self._next = checkpoint.watermark

    def started(self, index: int) -> None:
        """Item ``index`` is being worked on (or checked); it holds the watermark back."""
        self._in_flight.add(index)
        self._next = max(self._next, index + 1)

    def settled(self, index: int, failure: BackfillFailure | None = None) -> None:
        """Item ``index`` is finished: done, or failed with ``failure``."""
        self._in_flight.discard(index)
        state = self.checkpoint
        if failure is None:
            state.failed.pop(index, None)
        else:
            state.failed[index] = failure
        if index >= state.watermark:
            state.settled_above.add(index)
        low = min(self._in_flight, default=self._next)
        if low > state.watermark:
            state.watermark = low
            state.settled_above = {i for i in state.settled_above if i >= low}
