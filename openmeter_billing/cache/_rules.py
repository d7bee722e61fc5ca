"""Pure rules of the entitlement cache: which errors mean "unavailable", setting checks."""

from __future__ import annotations

import math

from .._exceptions import APIConnectionError, APIStatusError, ConfigurationError, RateLimitError
from ._entry import Fallback

__all__ = ["check_fallback", "check_positive", "check_whole", "is_unavailable", "retry_after"]


def is_unavailable(exc: BaseException) -> bool:
    """Errors that say OpenMeter cannot answer now (served from stale or fallback, not raised)."""
    if isinstance(exc, (APIConnectionError, RateLimitError, TimeoutError)):
        return True
    return isinstance(exc, APIStatusError) and exc.status_code >= 500


def check_positive(name: str, given: float, *, zero: bool = False) -> float:
    value: object = given  # checked at run time: callers may pass anything
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        value = -1.0
    if not (value >= 0 if zero else value > 0):
        raise ConfigurationError(
            f"{name} must be a {'non-negative' if zero else 'positive'} number of seconds or "
            f"requests, got {value!r}"
        )
    if math.isinf(given):
        raise ConfigurationError(f"{name} must be finite, got {given!r}")
    return float(given)


def check_whole(name: str, given: int) -> int:
    value: object = given  # checked at run time: callers may pass anything
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"{name} must be a positive whole number, got {given!r}")
    return given


def check_fallback(name: str, value: object) -> Fallback:
    if value == "fail_open":
        return "fail_open"
    if value == "fail_closed":
        return "fail_closed"
    raise ConfigurationError(f"{name} must be 'fail_open' or 'fail_closed', got {value!r}")


def retry_after(exc: RateLimitError) -> float:
    header = exc.response.headers.get("retry-after")
    try:
        return min(60.0, max(1.0, float(header))) if header else 1.0
    except ValueError:
        return 1.0
