"""Faults on demand: make Local OpenMeter misbehave the way a real OpenMeter sometimes does.

No hosted sandbox lets a test say "the next two value reads fail with 503" or "drop one ingest
in ten". Local OpenMeter does, so retries, timeouts, circuit breakers and fallbacks can be tested
as deterministically as the happy path::

    local = LocalOpenMeter(faults=Faults(seed=7))
    local.faults.outage(route=INGEST, for_=2)               # the next 2 ingests answer 503
    local.faults.fail(route="*", share=0.1, status=500)     # 10% of everything, seeded
    local.faults.rate_limit(per_second=10)                  # Cloud-like limit on value reads
    with local.faults.drop(route=VALUE_READS):             # connections drop inside the block
        ...

Every rule matches routes by the path template Local OpenMeter serves (``GET /api/v1/meters``,
``/api/v1/events``, globs such as ``*/value``), decides with its own seeded random stream (so one
rule's decisions do not depend on other rules' traffic), counts what it did (:attr:`FaultRule.hits`)
and can be removed, also as a context manager. Time windows (``for_=timedelta``) and rate limits
read the emulator's clock, so a test ends an outage with ``local.clock.advance(...)``; pass
``wall_clock=True`` (the CLI does) to use real time instead.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Literal

from openmeter_billing._exceptions import InvalidInputError

__all__ = [
    "INGEST",
    "VALUE_READS",
    "Delay",
    "Drop",
    "Fail",
    "FaultAction",
    "FaultRule",
    "Faults",
]

INGEST = "POST /api/v1/events"
"""The event ingest route."""

VALUE_READS: tuple[str, ...] = (
    "GET /api/v2/customers/{customerIdOrKey}/entitlements/{entitlementIdOrFeatureKey}/value",
    "GET /api/v1/customers/{customerIdOrKey}/entitlements/{featureKey}/value",
    "GET /api/v1/customers/{customerIdOrKey}/access",
)
"""The entitlement value reads OpenMeter Cloud rate-limits."""

Route = str | Sequence[str]


@dataclass(frozen=True)
class Fail:
    """Answer with an error status (problem+json) instead of serving the request."""

    status: int = 503
    retry_after: float | None = None


@dataclass(frozen=True)
class Delay:
    """Serve the request, then answer ``seconds`` late.

    In-process, a delay at least as long as the request's read timeout raises
    ``httpx.ReadTimeout`` at once (the request was processed; the test does not wait); shorter
    delays really sleep. Over the loopback server the answer is really sent late.
    """

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Drop the connection: ``before`` the request is served (``httpx.ConnectError``, nothing
    happened) or ``after`` it was served (``httpx.RemoteProtocolError``, the effect happened but
    the answer is lost)."""

    when: Literal["before", "after"] = "before"


FaultAction = Fail | Delay | Drop


def _patterns(route: Route) -> tuple[str, ...]:
    patterns = (route,) if isinstance(route, str) else tuple(route)
    if not patterns or not all(p.strip() for p in patterns):
        raise InvalidInputError(
            f"invalid fault route {route!r}",
            field="route",
            hint='pass "*", a served template such as "GET /api/v1/meters", or a glob',
        )
    return patterns


def _matches(pattern: str, method: str, template: str | None) -> bool:
    if pattern == "*":
        return True
    if template is None:
        return False
    if " " in pattern:
        return fnmatchcase(f"{method} {template}", pattern)
    return fnmatchcase(template, pattern)


class FaultRule:
    """One fault: which routes, what happens, how often and for how long.

    Attributes:
        action: What a hit does (:class:`Fail`, :class:`Delay` or :class:`Drop`).
        seen: Requests that matched the route so far.
        hits: Requests the fault was applied to.
    """

    def __init__(
        self,
        owner: Faults,
        routes: tuple[str, ...],
        action: FaultAction,
        *,
        share: float,
        after: int,
        for_: int | timedelta | None,
        per_second: int | None,
        stream: random.Random,
    ) -> None:
        self._owner = owner
        self.routes = routes
        self.action = action
        self.share = share
        self.after = after
        self.for_ = for_
        self.per_second = per_second
        self._stream = stream
        self._started: float | None = None
        self._bucket = (-1, 0)
        self.seen = 0
        self.hits = 0

    def __repr__(self) -> str:
        return f"FaultRule({self.routes!r}, {self.action!r}, hits={self.hits})"

    def remove(self) -> None:
        """Stop applying this fault (idempotent)."""
        self._owner._remove(self)

    def __enter__(self) -> FaultRule:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def _decide(self, now: float) -> FaultAction | None:
        """Called under the owner's lock for a request on a matching route."""
        if self._started is None:
            self._started = now
        self.seen += 1
        if self.seen <= self.after:
            return None
        if isinstance(self.for_, int) and self.seen > self.after + self.for_:
            return None
        if isinstance(self.for_, timedelta) and now - self._started >= self.for_.total_seconds():
            return None
        if self.per_second is not None:
            return self._rate_limited(now)
        if self.share < 1.0 and self._stream.random() >= self.share:
            return None
        self.hits += 1
        return self.action

    def _rate_limited(self, now: float) -> FaultAction | None:
        second = math.floor(now)
        bucket, count = self._bucket
        count = count + 1 if bucket == second else 1
        self._bucket = (second, count)
        if self.per_second is None or count <= self.per_second:
            return None
        self.hits += 1
        return Fail(429, retry_after=max(1.0, math.ceil(second + 1 - now)))


@dataclass
class Faults:
    """The fault rules of one emulator; safe to change from any thread while requests run.

    Args:
        seed: Seeds every rule's random stream (rule ``n`` uses ``(seed, n)``), so a test that
            sends the same requests sees the same faults.
        wall_clock: Measure ``for_=timedelta`` windows and rate limits in real time instead of
            on the emulator's (frozen) clock.
    """

    seed: int = 0
    wall_clock: bool = False
    _rules: list[FaultRule] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _created: int = field(default=0, repr=False)
    _clock_now: Callable[[], float] | None = field(default=None, repr=False)

    # -- adding rules -------------------------------------------------------------------------

    def fail(
        self,
        route: Route = "*",
        *,
        status: int = 503,
        share: float = 1.0,
        retry_after: float | None = None,
        after: int = 0,
        for_: int | timedelta | None = None,
    ) -> FaultRule:
        """Answer ``share`` of the matching requests with ``status`` (5xx or 429) instead.

        ``after`` lets that many matching requests through first; ``for_`` limits the fault to
        that many matching requests (an ``int``) or to a time window (a ``timedelta``).
        """
        if not (status == 429 or 500 <= status <= 599):
            raise InvalidInputError(
                f"fault status must be 429 or 5xx, got {status}", field="status", hint="e.g. 503"
            )
        if retry_after is not None and retry_after < 0:
            raise InvalidInputError(
                "retry_after must be >= 0", field="retry_after", hint="seconds, e.g. 1"
            )
        return self._add(route, Fail(status, retry_after), share, after, for_)

    def outage(
        self,
        route: Route = "*",
        *,
        for_: int | timedelta | None = None,
        status: int = 503,
        retry_after: float | None = None,
    ) -> FaultRule:
        """Every matching request fails with ``status``: for ``for_`` requests, for a time
        window, or until removed (``None``)."""
        return self.fail(route, status=status, retry_after=retry_after, for_=for_)

    def delay(
        self,
        route: Route = "*",
        *,
        seconds: float,
        share: float = 1.0,
        after: int = 0,
        for_: int | timedelta | None = None,
    ) -> FaultRule:
        """Answer ``share`` of the matching requests ``seconds`` late (see :class:`Delay`)."""
        if not seconds > 0:
            raise InvalidInputError("delay seconds must be > 0", field="seconds", hint="e.g. 30")
        return self._add(route, Delay(seconds), share, after, for_)

    def drop(
        self,
        route: Route = "*",
        *,
        when: Literal["before", "after"] = "before",
        share: float = 1.0,
        after: int = 0,
        for_: int | timedelta | None = None,
    ) -> FaultRule:
        """Drop the connection of ``share`` of the matching requests (see :class:`Drop`)."""
        if when not in ("before", "after"):
            raise InvalidInputError(
                f"invalid drop point {when!r}", field="when", hint='"before" or "after"'
            )
        return self._add(route, Drop(when), share, after, for_)

    def rate_limit(self, route: Route = VALUE_READS, *, per_second: int = 30) -> FaultRule:
        """Answer 429 (``Retry-After`` until the next second) past ``per_second`` matching
        requests in one second, as OpenMeter Cloud limits entitlement value reads (30 a second)."""
        if per_second < 1:
            raise InvalidInputError("per_second must be >= 1", field="per_second", hint="e.g. 100")
        return self._add(route, Fail(429), 1.0, 0, None, per_second=per_second)

    def clear(self) -> None:
        """Remove every rule."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        """The active rules, oldest first."""
        with self._lock:
            return list(self._rules)

    def __bool__(self) -> bool:
        return bool(self._rules)

    # -- used by the emulator -----------------------------------------------------------------

    def bind(self, now: Callable[[], float]) -> None:
        """Read time (seconds) from ``now`` unless ``wall_clock``; the emulator calls this."""
        self._clock_now = now

    def decide(self, method: str, template: str | None) -> FaultAction | None:
        """The fault for one request, if any: the first matching rule that fires wins."""
        if not self._rules:
            return None
        with self._lock:
            now = self._now()
            for rule in self._rules:
                if any(_matches(p, method, template) for p in rule.routes):
                    action = rule._decide(now)
                    if action is not None:
                        return action
        return None

    # -- internals ----------------------------------------------------------------------------

    def _now(self) -> float:
        if self.wall_clock or self._clock_now is None:
            return time.monotonic()
        return self._clock_now()

    def _add(
        self,
        route: Route,
        action: FaultAction,
        share: float,
        after: int,
        for_: int | timedelta | None,
        *,
        per_second: int | None = None,
    ) -> FaultRule:
        _check_window(share, after, for_)
        with self._lock:
            stream = random.Random(f"{self.seed}:{self._created}")  # noqa: S311 (test faults, not secrets)
            self._created += 1
            rule = FaultRule(
                self,
                _patterns(route),
                action,
                share=share,
                after=after,
                for_=for_,
                per_second=per_second,
                stream=stream,
            )
            self._rules.append(rule)
        return rule

    def _remove(self, rule: FaultRule) -> None:
        with self._lock:
            if rule in self._rules:
                self._rules.remove(rule)


def _check_window(share: float, after: int, for_: int | timedelta | None) -> None:
    if not 0.0 < share <= 1.0:
        raise InvalidInputError(
            f"share must be in (0, 1], got {share}", field="share", hint="e.g. 0.1 for 10%"
        )
    if after < 0:
        raise InvalidInputError("after must be >= 0", field="after", hint="a request count")
    if isinstance(for_, bool) or (isinstance(for_, int) and for_ < 1):
        raise InvalidInputError(
            f"for_ must be a positive request count or a timedelta, got {for_!r}",
            field="for_",
            hint="e.g. for_=3 or for_=timedelta(seconds=30)",
        )
    if isinstance(for_, timedelta) and for_ <= timedelta(0):
        raise InvalidInputError(
            "for_ must be a positive duration", field="for_", hint="e.g. timedelta(seconds=30)"
        )
