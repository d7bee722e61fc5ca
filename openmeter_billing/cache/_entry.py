"""One cached entitlement value and the answers it gives as it ages (pure: no I/O, no clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ..types.entitlements import EntitlementValue, ValueSource

__all__ = ["Entry", "Fallback", "Key", "State", "fallback_value", "state_of", "variant"]

#: ``(customerIdOrKey, feature_key)``.
Key = tuple[str, str]
#: What a feature answers when nothing is known in time.
Fallback = Literal["fail_open", "fail_closed"]
#: How an entry may be served at a moment (see `state_of`).
State = Literal["fresh", "stale", "stale_error", "expired"]


def variant(
    value: EntitlementValue,
    source: ValueSource,
    fetched_at: float | None,
    clock: Callable[[], float] | None,
    *,
    optimistic: bool = False,
) -> EntitlementValue:
    """A copy of ``value`` labelled with where it came from; cached copies are shared, read-only."""
    copy = value.model_copy()
    copy._source = source
    copy._fetched_at = fetched_at
    copy._clock = clock
    copy._optimistic = optimistic
    return copy


def fallback_value(policy: Fallback) -> EntitlementValue:
    """The answer when OpenMeter could not be asked in time and nothing usable is cached."""
    value = EntitlementValue(has_access=policy == "fail_open")
    value._source = "fallback"
    return value


@dataclass(eq=False)
class Entry:
    """A value as OpenMeter computed it at ``fetched_at``, with its deadlines.

    ``fresh_until``: served as ``cache``; ``stale_until``: served as ``stale`` while one refresh
    runs; ``error_until``: served as ``stale_error`` once a refresh failed (stale-if-error).
    """

    fetched_at: float
    fresh_until: float
    stale_until: float
    error_until: float
    value: EntitlementValue  # the ``cache`` variant, returned as it is on a fresh hit
    failures: int = 0
    retry_at: float = 0.0
    variants: dict[str, EntitlementValue] = field(default_factory=dict)

    def served_as(self, source: ValueSource) -> EntitlementValue:
        """The shared ``stale``/``stale_error`` copy (made once per entry and source)."""
        found = self.variants.get(source)
        if found is None:
            found = variant(
                self.value,
                source,
                self.value._fetched_at,
                self.value._clock,
                optimistic=self.value._optimistic,
            )
            self.variants[source] = found
        return found

    def failed(self, now: float) -> None:
        """A refresh failed: serve ``stale_error`` and retry later, backing off to 30 s."""
        self.failures += 1
        self.retry_at = now + min(30.0, 0.5 * 2 ** (self.failures - 1))


def state_of(entry: Entry, now: float) -> State:
    """How ``entry`` may answer at ``now``."""
    if now < entry.fresh_until:
        return "fresh"
    if entry.failures and now < entry.error_until:
        return "stale_error"
    if now < entry.stale_until:
        return "stale"
    return "expired"
