"""`EntitlementCache`: entitlement decisions from memory, refreshed in the background."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from .._exceptions import (
    ConfigurationError,
    RateLimitError,
)
from ..types.entitlements import Entitlement, EntitlementValue
from ._bucket import RateLimiter, TokenBucket
from ._entry import Entry, Fallback, Key, fallback_value, state_of, variant
from ._queue import Definitions, RefreshQueue
from ._rules import check_fallback, check_positive, check_whole, is_unavailable, retry_after
from ._stats import CacheStats

if TYPE_CHECKING:
    from .._runtime import Runtime

__all__ = ["EntitlementCache", "Fetch"]

logger = logging.getLogger("openmeter_billing")

#: Reads one value from OpenMeter (the uncached ``entitlements.value``).
Fetch = Callable[[str, str], Awaitable[EntitlementValue]]
#: Reads every feature of a customer in one request (the access endpoint).
FetchAll = Callable[[str], Awaitable[dict[str, EntitlementValue]]]


class EntitlementCache:
    """Answers ``entitlements.value``/``has`` and ``usage.has``/``balance`` from memory.

    Pass one to the client: ``OpenMeterBilling(cache=EntitlementCache())``. A fresh value
    (younger than ``ttl``) costs a dict lookup; a stale one is served while one background refresh
    runs; after a failed refresh the old value is served up to ``stale_if_error``; a cold miss
    waits at most ``miss_timeout`` for OpenMeter (1,000 concurrent callers share one request),
    then the feature's fallback answers. Every answer says where it came from
    (`EntitlementValue.source`). Upstream reads go through a token bucket (``rate`` per second),
    cold misses first. Writes made through the client invalidate what they change.

    Cached checks are soft limits: two servers (or two requests) can both pass on the last unit.
    Use ``value(..., fresh=True)`` for money-critical gates.

    Args:
        ttl: Seconds a value is served as fresh (default 30).
        feature_ttl: Per-feature TTLs, for example ``{"ai_tokens": 5}``.
        stale_while_revalidate: Seconds past ``ttl`` a value is served while it is refreshed.
        stale_if_error: Seconds after it was read that a value may still answer while OpenMeter
            fails (default 3,600).
        max_size: Values kept; the least recently used go first.
        miss_timeout: Seconds a cold miss waits for OpenMeter before the fallback answers.
        fallback: ``"fail_closed"`` (deny, the default) or ``"fail_open"`` (allow).
        feature_fallback: Per-feature fallbacks, for example ``{"export_csv": "fail_open"}``.
        rate: Upstream value reads per second (OpenMeter Cloud allows about 30).
        rate_limiter: Your own `RateLimiter` instead of the in-process token bucket.
        refresh_concurrency: Background refreshes in flight at once.
        clock: Seconds since the epoch; inject one to test expiry.
    """

    def __init__(
        self,
        ttl: float = 30.0,
        *,
        feature_ttl: Mapping[str, float] | None = None,
        stale_while_revalidate: float = 60.0,
        stale_if_error: float = 3600.0,
        max_size: int = 10_000,
        miss_timeout: float = 1.5,
        fallback: Fallback = "fail_closed",
        feature_fallback: Mapping[str, Fallback] | None = None,
        rate: float = 25.0,
        rate_limiter: RateLimiter | None = None,
        refresh_concurrency: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ttl = check_positive("ttl", ttl)
        self.feature_ttl = {
            k: check_positive(f"feature_ttl[{k!r}]", v) for k, v in (feature_ttl or {}).items()
        }
        self.stale_while_revalidate = check_positive(
            "stale_while_revalidate", stale_while_revalidate, zero=True
        )
        self.stale_if_error = check_positive("stale_if_error", stale_if_error, zero=True)
        self.miss_timeout = check_positive("miss_timeout", miss_timeout)
        self.max_size = check_whole("max_size", max_size)
        self.fallback = check_fallback("fallback", fallback)
        self.feature_fallback = {
            k: check_fallback(f"feature_fallback[{k!r}]", v)
            for k, v in (feature_fallback or {}).items()
        }
        self.refresh_concurrency = check_whole("refresh_concurrency", refresh_concurrency)
        self.clock = clock
        self.limiter: RateLimiter = rate_limiter or TokenBucket(
            check_positive("rate", rate), clock=clock
        )
        self.stats = CacheStats()
        self._entries: OrderedDict[Key, Entry] = OrderedDict()
        self._by_customer: dict[str, set[Key]] = {}
        self._aliases: dict[str, str] = {}  # customer id <-> key, learned from responses
        self._misses_failed: dict[Key, float] = {}  # cold misses that failed: retry time
        self._flights: dict[Key, asyncio.Task[EntitlementValue]] = {}
        self._queue = RefreshQueue()
        # Bumped by invalidations (everyone's, or per customer name): a read that started before
        # a write must not store its now-outdated answer.
        self._epoch = 0
        self._customer_epochs: dict[str, int] = {}
        self._fetch: Fetch | None = None
        self._fetch_all: FetchAll | None = None
        self._runtime: Runtime | None = None
        self._definitions = Definitions(max_size)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} ttl={self.ttl:g}s size={len(self._entries)}/{self.max_size}>"
        )

    def __len__(self) -> int:
        return len(self._entries)

    # -- wiring ---------------------------------------------------------------------------------

    def attach(
        self,
        *,
        fetch_value: Callable[..., Awaitable[EntitlementValue]],
        fetch_all: Callable[[str], Awaitable[dict[str, EntitlementValue]]],
        runtime: Runtime,
    ) -> None:
        """Bind to a client (its constructor calls this): reads go through the entitlements
        resource's fetchers, and the refresher runs under the client's runtime."""
        from ._refresher import Refresher

        if self._fetch is not None:
            raise ConfigurationError(
                "this EntitlementCache already serves another client; create one cache per "
                "client (copies made with with_options() share their client's cache)"
            )
        self._fetch = fetch_value
        self._fetch_all = fetch_all
        self._runtime = runtime
        runtime.add_service(Refresher(self))

    # -- reads ----------------------------------------------------------------------------------

    def peek(self, customer: str, feature_key: str) -> EntitlementValue | None:
        """The cached value if it is fresh, else None; never waits, never schedules anything."""
        key = (customer, feature_key)
        entry = self._entries.get(key)
        if entry is None or self.clock() >= entry.fresh_until:
            return None
        self._entries.move_to_end(key)
        self.stats.hits += 1
        return entry.value

    async def get(self, customer: str, feature_key: str) -> EntitlementValue:
        """The value for ``(customer, feature_key)``: cached, stale, fetched or the fallback."""
        key = (customer, feature_key)
        entry = self._entries.get(key)
        now = self.clock()
        if entry is not None:
            self._entries.move_to_end(key)
            state = state_of(entry, now)
            if state == "fresh":
                self.stats.hits += 1
                return entry.value
            if state != "expired":
                self._schedule(key, entry, now)
                self.stats.stale += 1
                return entry.served_as(state)
        elif self._misses_failed.get(key, 0.0) > now:
            return self._fallback_for(key)
        return await self._wait(key, entry)

    async def _wait(self, key: Key, entry: Entry | None) -> EntitlementValue:
        """Join (or start) the one upstream read of ``key``, at most ``miss_timeout``."""
        self.stats.misses += 1
        task = self._flight(key, priority=True)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.miss_timeout)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            entry = self._entries.get(key) or entry  # the read may have found a shared old value
            if entry is not None and self.clock() < entry.error_until:
                self.stats.stale += 1
                return entry.served_as("stale_error")
            return self._fallback_for(key)

    def _fallback_for(self, key: Key) -> EntitlementValue:
        self.stats.fallbacks += 1
        return fallback_value(self.feature_fallback.get(key[1], self.fallback))

    def _flight(
        self, key: Key, *, priority: bool, token_taken: bool = False
    ) -> asyncio.Task[EntitlementValue]:
        """The read of ``key`` under way on this loop, or a new one (single flight)."""
        task = self._flights.get(key)
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            epoch = self._epoch_of(key)
            read = self._read_through(key, priority=priority, epoch=epoch, token=token_taken)
            task = loop.create_task(read)
            task.add_done_callback(_retrieve)
            self._flights[key] = task
            task.add_done_callback(lambda done: self._end_flight(key, done))
        return task

    def _end_flight(self, key: Key, task: asyncio.Task[EntitlementValue]) -> None:
        if self._flights.get(key) is task:
            del self._flights[key]

    def _epoch_of(self, key: Key) -> tuple[int, int]:
        return self._epoch, self._customer_epochs.get(key[0], 0)

    async def _read_through(
        self, key: Key, *, priority: bool, epoch: tuple[int, int], token: bool
    ) -> EntitlementValue:
        """One upstream read under the rate limiter; stores the answer unless a write raced it.

        A shared tier (Redis) is asked first: another server may have read the value already,
        or be reading it now (then this one waits for its answer instead of asking too).
        """
        shared = await self._from_shared(key)
        if shared is not None and not shared[2]:
            return self._adopt(key, shared[0], shared[1])
        if not token:
            await self._take_token(priority)
        try:
            value = await self._read_upstream(key)
        except Exception as exc:
            if shared is not None and is_unavailable(exc) and key not in self._entries:
                self._adopt(key, shared[0], shared[1])  # old, but better than a cold deny
                self._entries[key].failed(self.clock())
            raise
        if epoch != self._epoch_of(key):
            return variant(value, "live", self.clock(), self.clock)  # a write happened meanwhile
        now = self.clock()
        await self._shared_write(key, value, now)
        return self.store(key[0], key[1], value, fetched_at=now)

    async def _from_shared(self, key: Key) -> tuple[EntitlementValue, float, bool] | None:
        """``(value, fetched_at, stale)`` from the shared tier, waiting for a peer's refresh."""
        found = await self._shared_read(key)
        if found is not None and self.clock() < found[1] + self._ttl(key[1]):
            return found[0], found[1], False
        if await self._shared_claim(key):
            # A peer may have written the value and released the lock between our read and
            # our claim: look once more before asking OpenMeter.
            again = await self._shared_read(key)
            if again is not None and self.clock() < again[1] + self._ttl(key[1]):
                return again[0], again[1], False
            return None if found is None else (found[0], found[1], True)
        waited = await self._shared_wait(key, after=found[1] if found else None)
        if waited is not None:
            return waited[0], waited[1], False
        return None if found is None else (found[0], found[1], True)

    def _adopt(self, key: Key, value: EntitlementValue, fetched_at: float) -> EntitlementValue:
        self.stats.shared_hits += 1
        self._put(key, value, fetched_at)
        return self._entries[key].value

    def _ttl(self, feature_key: str) -> float:
        return self.feature_ttl.get(feature_key, self.ttl)

    # Shared-tier hooks: no-ops in one process; `RedisEntitlementCache` implements them.

    async def _shared_read(self, key: Key) -> tuple[EntitlementValue, float] | None:
        del key
        return None

    async def _shared_write(self, key: Key, value: EntitlementValue, fetched_at: float) -> None:
        del key, value, fetched_at

    async def _shared_claim(self, key: Key) -> bool:
        del key
        return True

    async def _shared_wait(
        self, key: Key, *, after: float | None
    ) -> tuple[EntitlementValue, float] | None:
        del key, after
        return None

    async def _shared_invalidate(self, customers: list[str], feature_key: str | None) -> None:
        del customers, feature_key

    async def _take_token(self, priority: bool) -> None:
        wait = await self.limiter.acquire(priority=priority)
        while wait > 0:  # a token bucket refills with time, not with an event to wait on
            await asyncio.sleep(min(wait, 0.25))
            wait = await self.limiter.acquire(priority=priority)

    async def _read_upstream(self, key: Key) -> EntitlementValue:
        if self._fetch is None:
            raise ConfigurationError(
                "this EntitlementCache is not attached to a client; pass it as "
                "OpenMeterBilling(cache=...)"
            )
        self.stats.upstream += 1
        try:
            return await self._fetch(*key)
        except RateLimitError as exc:
            self.limiter.pause(retry_after(exc))
            self._read_failed(key)
            raise
        except Exception as exc:
            if is_unavailable(exc):
                self._read_failed(key)
            raise

    def _read_failed(self, key: Key) -> None:
        self.stats.errors += 1
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None:
            entry.failed(now)
            self._schedule(key, entry, now)
        else:
            self._misses_failed[key] = now + 1.0
            if len(self._misses_failed) > self.max_size:
                self._misses_failed.clear()

    # -- writes ---------------------------------------------------------------------------------

    def store(
        self,
        customer: str,
        feature_key: str,
        value: EntitlementValue,
        *,
        fetched_at: float | None = None,
    ) -> EntitlementValue:
        """Cache ``value`` as read now (this process only); returns it labelled ``live``."""
        now = self.clock() if fetched_at is None else fetched_at
        self._put((customer, feature_key), value, now)
        return variant(value, "live", now, self.clock)

    async def remember(
        self, customer: str, feature_key: str, value: EntitlementValue
    ) -> EntitlementValue:
        """`store`, and share it with other servers (a shared tier); returns it as ``live``."""
        now = self.clock()
        await self._shared_write((customer, feature_key), value, now)
        return self.store(customer, feature_key, value, fetched_at=now)

    def _put(
        self, key: Key, value: EntitlementValue, fetched_at: float, *, optimistic: bool = False
    ) -> None:
        ttl = self._ttl(key[1])
        entry = Entry(
            fetched_at=fetched_at,
            fresh_until=fetched_at + ttl,
            stale_until=fetched_at + ttl + self.stale_while_revalidate,
            error_until=fetched_at + max(self.stale_if_error, ttl),
            value=variant(value, "cache", fetched_at, self.clock, optimistic=optimistic),
        )
        self._entries[key] = entry
        self._entries.move_to_end(key)
        self._by_customer.setdefault(key[0], set()).add(key)
        self._misses_failed.pop(key, None)
        while len(self._entries) > self.max_size:
            old, _ = self._entries.popitem(last=False)
            self._forget(old)
            self.stats.evictions += 1

    def _forget(self, key: Key) -> None:
        keys = self._by_customer.get(key[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_customer[key[0]]

    def learn_alias(self, customer_id: str, customer_key: str | None) -> None:
        """Remember that an id and a key name one customer, so invalidating one drops both."""
        if customer_key and customer_key != customer_id:
            if len(self._aliases) > 2 * self.max_size:
                self._aliases.clear()
            self._aliases[customer_id] = customer_key
            self._aliases[customer_key] = customer_id

    async def invalidate(self, customer: str | None = None, feature_key: str | None = None) -> int:
        """Drop cached values: one customer's (one feature, or all), or everything.

        Call it from your own code when something outside this client changed an entitlement
        (an OpenMeter notification, an admin tool); the client's own writes call it for you. The
        next read asks OpenMeter. Returns how many values this process dropped.
        """
        dropped = self.invalidate_local(customer, feature_key)
        names = (
            [] if customer is None else sorted({customer, self._aliases.get(customer, customer)})
        )
        await self._shared_invalidate(names, feature_key)
        return dropped

    def invalidate_local(self, customer: str | None = None, feature_key: str | None = None) -> int:
        """`invalidate` for this process's memory only (a shared tier is left as it is)."""
        names = None if customer is None else {customer, self._aliases.get(customer, customer)}
        self._definitions.drop(names, feature_key)
        if names is None:
            self._epoch += 1
            keys = [k for k in self._entries if feature_key is None or k[1] == feature_key]
        else:
            if len(self._customer_epochs) > self.max_size:
                self._customer_epochs.clear()
                self._epoch += 1  # reads in flight compare against the cleared counters
            for name in names:
                self._customer_epochs[name] = self._customer_epochs.get(name, 0) + 1
            keys = [
                k
                for name in names
                for k in list(self._by_customer.get(name, ()))
                if feature_key is None or k[1] == feature_key
            ]
        for key in keys:
            self._entries.pop(key, None)
            self._forget(key)
            self._flights.pop(key, None)
        self.stats.invalidations += len(keys)
        return len(keys)

    def definition(self, customer: str, feature_key: str) -> Entitlement | None:
        """The cached entitlement (terms, usage period) behind a value, if still fresh."""
        return self._definitions.get((customer, feature_key), self.clock())

    def store_definition(self, customer: str, feature_key: str, entitlement: Entitlement) -> None:
        """Cache an entitlement read by ``usage.balance`` for the feature's TTL."""
        expires = self.clock() + self._ttl(feature_key)
        self._definitions.put((customer, feature_key), entitlement, expires)
        self.learn_alias(entitlement.customer_id, entitlement.customer_key)

    def record_usage(self, customer: str, feature_key: str, amount: float) -> bool:
        """Lower a cached balance by usage this process just reported (optimistic).

        The value is marked ``optimistic`` until the next refresh replaces it with OpenMeter's
        (whose balances lag ingestion by seconds). Returns whether a cached value changed.
        """
        key = (customer, feature_key)
        entry = self._entries.get(key)
        if entry is None:
            return False
        old = entry.value
        balance = None if old.balance is None else max(old.balance - amount, 0.0)
        changed = old.model_copy(
            update={
                "balance": balance,
                "usage": None if old.usage is None else old.usage + amount,
                "has_access": old.has_access and (balance is None or balance > 0),
            }
        )
        self._put(key, changed, entry.fetched_at, optimistic=True)
        new = self._entries[key]
        new.fresh_until, new.stale_until = entry.fresh_until, entry.stale_until
        return True

    # -- background refresh --------------------------------------------------------------------

    def _schedule(self, key: Key, entry: Entry, now: float) -> None:
        """Queue one refresh of ``key`` (not before its retry time after a failure)."""
        if now < entry.retry_at or key in self._flights or key in self._queue:
            return  # already due: stale reads of a hot key cost a dict lookup, not a lock
        self._queue.push(key)
        runtime = self._runtime
        if runtime is not None and not runtime.closed:
            # A cached answer sends nothing, so on a new event loop (or in a forked child) the
            # runtime may not have started the refresher yet: this starts it.
            runtime.ensure_started()


def _retrieve(task: asyncio.Task[EntitlementValue]) -> None:
    """Mark a flight's exception as seen: its waiters may all have timed out already."""
    if not task.cancelled():
        task.exception()
