"""What a backfill reports: live progress while it runs and the final tally."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = ["BackfillFailure", "BackfillProgress", "BackfillReport", "Outcome"]

#: What one item did: ``created``, ``updated`` or ``unchanged`` (it was already in place).
Outcome: TypeAlias = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class BackfillFailure:
    """One item that failed after its retries.

    Attributes:
        index: The item's position in the input (0-based; line number minus one for a file).
        key: The customer key, or the subscription's idempotency key, when it got that far.
        reason: The error's message (never a secret: errors carry none).
        error: The error's class name, for example ``ConflictError``.
        attempts: How many times the item was tried.
    """

    index: int
    key: str | None
    reason: str
    error: str
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (also what the state file stores)."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class BackfillProgress:
    """A snapshot for a progress display, handed to ``on_progress`` a few times a second.

    Attributes:
        kind: ``customers`` or ``subscriptions``.
        total: How many items the input holds, when known.
        settled: Items finished in any way (including skipped and failed).
        skipped: Items a checkpoint says were done by an earlier run.
        failed: Items that failed after their retries.
        elapsed: Seconds since this run started.
        rate: Items worked on per second in this run (skipped ones excluded).
    """

    kind: str
    total: int | None
    settled: int
    skipped: int
    failed: int
    elapsed: float
    rate: float

    @property
    def fraction(self) -> float | None:
        """Share of the input settled, 0..1, when the total is known."""
        if not self.total:
            return None
        return min(1.0, self.settled / self.total)

    @property
    def eta(self) -> float | None:
        """Seconds left at the current rate, when the total is known and work has begun."""
        if self.total is None or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.settled) / self.rate)


@dataclass
class BackfillReport:
    """The tally of one run: ``ok`` when nothing failed.

    ``skipped`` counts items a checkpoint marked done by an earlier run; a rerun of a finished
    backfill skips everything and creates nothing.
    """

    kind: str
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failures: list[BackfillFailure] = field(default_factory=list)
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def failed(self) -> int:
        """How many items failed."""
        return len(self.failures)

    @property
    def ok(self) -> bool:
        """True when every item was done (or skipped as done) and the run was not interrupted."""
        return not self.failures and not self.interrupted

    def count(self, outcome: Outcome) -> None:
        """Tally one item's outcome."""
        setattr(self, outcome, getattr(self, outcome) + 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``openmeter-billing backfill ... --json``)."""
        return {
            "kind": self.kind,
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "failed": self.failed,
            "failures": [f.to_dict() for f in self.failures],
            "elapsed": round(self.elapsed, 3),
            "interrupted": self.interrupted,
            "ok": self.ok,
        }

    def render(self, *, max_failures: int = 20) -> str:
        """A short human-readable summary with the first failures and their reasons."""
        head = (
            f"backfill {self.kind}: {self.total} items in {self.elapsed:.1f}s: "
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.skipped} skipped (done before), {self.failed} failed"
        )
        lines = [head + (" (interrupted)" if self.interrupted else "")]
        for failure in self.failures[:max_failures]:
            who = failure.key or "?"
            lines.append(f"  item {failure.index} ({who}): {failure.error}: {failure.reason}")
        if self.failed > max_failures:
            lines.append(f"  ... and {self.failed - max_failures} more")
        return "\n".join(lines)
