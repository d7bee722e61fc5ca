"""Counters an `EntitlementCache` keeps, for dashboards and tests."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["CacheStats"]


@dataclass
class CacheStats:
    """What the cache did since it was created (plain counters, never reset by the library).

    Attributes:
        hits: Fresh answers from memory.
        stale: Answers past their TTL (``stale`` or ``stale_error``).
        misses: Reads that had to wait for OpenMeter.
        fallbacks: Answers from the feature's fallback.
        upstream: Value reads sent to OpenMeter (cold misses and refreshes).
        refreshes: Background refreshes started.
        errors: Upstream reads that failed because OpenMeter was unavailable.
        evictions: Values dropped to stay within ``max_size``.
        invalidations: Values dropped because something changed them.
        shared_hits: Values found in the shared (Redis) tier instead of asking OpenMeter.
    """

    hits: int = 0
    stale: int = 0
    misses: int = 0
    fallbacks: int = 0
    upstream: int = 0
    refreshes: int = 0
    errors: int = 0
    evictions: int = 0
    invalidations: int = 0
    shared_hits: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a dict, for logging or metrics."""
        return asdict(self)
