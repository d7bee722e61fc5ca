"""Entitlement decisions from memory: `EntitlementCache` (one process), `RedisEntitlementCache`.

See docs/cache.md for the model (fresh, stale, stale-if-error, fallback), invalidation and sizing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._bucket import RateLimiter, TokenBucket
from ._cache import EntitlementCache
from ._entry import Fallback
from ._stats import CacheStats

if TYPE_CHECKING:
    from .redis import RedisEntitlementCache

__all__ = [
    "CacheStats",
    "EntitlementCache",
    "Fallback",
    "RateLimiter",
    "RedisEntitlementCache",
    "TokenBucket",
]


def __getattr__(name: str) -> Any:
    # redis-py is an optional extra: import it only when the Redis tier is asked for.
    if name == "RedisEntitlementCache":
        from .redis import RedisEntitlementCache

        return RedisEntitlementCache
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
