"""`SyncOpenMeterBilling`: the blocking facade for scripts, derived from the async client.

One event loop in a daemon thread (`LoopThread`) lives as long as the facade and its copies.
Each sync method is one line, ``create = sync_method(AsyncCustomers.create)``: a typed descriptor
that runs the async method on that loop. No business logic exists twice, and mypy sees the same
signatures without ``await``.
"""

from __future__ import annotations

import functools
import inspect
import warnings
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import datetime
from functools import cached_property
from types import TracebackType
from typing import Any, Concatenate, Generic, TypeVar, overload

import httpx
from typing_extensions import ParamSpec, Self, Unpack

from ._client import OpenMeterBilling
from ._http import Query
from ._loop_thread import LoopThread
from ._options import ClientOptions
from ._pagination import AsyncPage, AsyncPaginator
from ._types import NOT_GIVEN, NotGiven, TimeoutTypes
from .backfill import AsyncBackfill
from .billing.engine import AsyncBilling
from .billing.topups import AsyncTopups
from .billing.usage import AsyncUsage
from .cache import EntitlementCache
from .catalog._client_api import AsyncCatalogAPI
from .catalog.dsl import Catalog
from .customer_sync import AsyncCustomers
from .identity import CustomerRef
from .ingest.options import IngestStats
from .providers.checkout import AsyncCheckout
from .resources import (
    AsyncEntitlements,
    AsyncEvents,
    AsyncFeatures,
    AsyncGrants,
    AsyncMeters,
    AsyncPortal,
)
from .types.entitlements import EntitlementValue
from .webhooks import AsyncWebhooks

__all__ = ["SyncOpenMeterBilling", "SyncPage"]

#: Seconds `close()` (and interpreter exit) waits for background work and the loop thread.
SHUTDOWN_TIMEOUT = 5.0

A = TypeVar("A", covariant=True)  # noqa: PLC0105 - a subclass's twin may use its base's methods
T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")


class SyncResource(Generic[A]):
    """Base of the sync resources: holds the async resource and the runner."""

    def __init__(self, async_resource: A, runner: LoopThread) -> None:
        self._async = async_resource
        self._loop = runner


def _strip_self(func: Callable[..., Any]) -> inspect.Signature:
    signature = inspect.signature(func)
    params = list(signature.parameters.values())[1:]
    return signature.replace(parameters=params)


class sync_method(Generic[A, P, R]):
    """Descriptor turning an async resource method into a blocking one with the same signature."""

    def __init__(self, func: Callable[Concatenate[A, P], Awaitable[R]]) -> None:
        self._func = func
        self._signature = _strip_self(func)
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: SyncResource[A], owner: type[Any]) -> Callable[P, R]: ...
    def __get__(self, obj: SyncResource[A] | None, owner: type[Any]) -> Self | Callable[P, R]:
        if obj is None:
            return self
        func, target, runner = self._func, obj._async, obj._loop

        @functools.wraps(func)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return runner.run(functools.partial(func, target, *args, **kwargs))

        call.__signature__ = self._signature  # type: ignore[attr-defined]
        return call

    @property
    def __signature__(self) -> inspect.Signature:
        return self._signature


class sync_pages(Generic[A, P, T]):
    """Like `sync_method` for list methods: returns a `SyncPage` that iterates every item."""

    def __init__(self, func: Callable[Concatenate[A, P], AsyncPaginator[T]]) -> None:
        self._func = func
        self._signature = _strip_self(func)
        self.__doc__ = func.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: SyncResource[A], owner: type[Any]) -> Callable[P, SyncPage[T]]: ...
    def __get__(
        self, obj: SyncResource[A] | None, owner: type[Any]
    ) -> Self | Callable[P, SyncPage[T]]:
        if obj is None:
            return self
        func, target, runner = self._func, obj._async, obj._loop

        @functools.wraps(func)
        def call(*args: P.args, **kwargs: P.kwargs) -> SyncPage[T]:
            paginator = func(target, *args, **kwargs)
            return SyncPage(runner.run(paginator.first_page), runner)

        call.__signature__ = self._signature  # type: ignore[attr-defined]
        return call

    @property
    def __signature__(self) -> inspect.Signature:
        return self._signature


class SyncPage(Generic[T]):
    """One page of results; iterating it walks every item of this and all following pages."""

    def __init__(self, page: AsyncPage[T], runner: LoopThread) -> None:
        self._page = page
        self._loop = runner

    def __repr__(self) -> str:
        return repr(self._page).replace("AsyncPage", "SyncPage")

    @property
    def items(self) -> list[T]:
        """The items on this page."""
        return self._page.items

    @property
    def page(self) -> int:
        """This page's number (1-based)."""
        return self._page.page

    @property
    def total_count(self) -> int:
        """How many items exist across all pages."""
        return self._page.total_count

    def has_next_page(self) -> bool:
        """Whether another page holds more items."""
        return self._page.has_next_page()

    def get_next_page(self) -> SyncPage[T]:
        """Fetch the following page."""
        return SyncPage(self._loop.run(self._page.get_next_page), self._loop)

    def iter_pages(self) -> Iterator[SyncPage[T]]:
        """This page and every following one."""
        page: SyncPage[T] = self
        while True:
            yield page
            if not page.has_next_page():
                return
            page = page.get_next_page()

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.items

    def to_list(self) -> list[T]:
        """Every item of every page."""
        return list(self)


class SyncCustomers(SyncResource[AsyncCustomers]):
    """Blocking twin of `AsyncCustomers`."""

    create = sync_method(AsyncCustomers.create)
    get = sync_method(AsyncCustomers.get)
    list = sync_pages(AsyncCustomers.list)
    update = sync_method(AsyncCustomers.update)
    delete = sync_method(AsyncCustomers.delete)
    access = sync_method(AsyncCustomers.access)
    upsert = sync_method(AsyncCustomers.upsert)
    sync = sync_method(AsyncCustomers.sync)


class SyncEvents(SyncResource[AsyncEvents]):
    """Blocking twin of `AsyncEvents`; `submit` never blocks on the network."""

    ingest = sync_method(AsyncEvents.ingest)
    ingest_batch = sync_method(AsyncEvents.ingest_batch)
    list = sync_method(AsyncEvents.list)
    flush = sync_method(AsyncEvents.flush)
    reconcile = sync_method(AsyncEvents.reconcile)
    submit_in = sync_method(AsyncEvents.submit_in)

    def __init__(self, async_resource: AsyncEvents, runner: LoopThread) -> None:
        super().__init__(async_resource, runner)
        # The flusher lives on this facade's loop thread, not on a thread of its own.
        if isinstance(async_resource, AsyncEvents):  # the signature tests pass a placeholder
            async_resource._engine.home = runner

    @functools.wraps(AsyncEvents.submit)
    def submit(self, **kwargs: Any) -> str:
        """Queue one usage event for background delivery; return its id (`AsyncEvents.submit`)."""
        return self._async.submit(**kwargs)

    def stats(self) -> IngestStats:
        """Counters: submitted, sent, retried, dropped, dead-lettered, and pending now."""
        return self._async.stats()


class SyncGrants(SyncResource[AsyncGrants]):
    """Blocking twin of `AsyncGrants`."""

    list = sync_pages(AsyncGrants.list)
    create = sync_method(AsyncGrants.create)
    void = sync_method(AsyncGrants.void)


class SyncEntitlements(SyncResource[AsyncEntitlements]):
    """Blocking twin of `AsyncEntitlements`."""

    def value(
        self,
        customer: CustomerRef,
        feature_key: str,
        *,
        time: datetime | None = None,
        fresh: bool = False,
    ) -> EntitlementValue:
        """Blocking `AsyncEntitlements.value`; a fresh cached value answers in this thread."""
        if time is None and not fresh:
            hit = self._async.cached_value(customer, feature_key)
            if hit is not None:  # the fast path: no hop to the loop thread
                return hit
        call = functools.partial(self._async.value, customer, feature_key, time=time, fresh=fresh)
        return self._loop.run(call)

    def has(self, customer: CustomerRef, feature_key: str, *, fresh: bool = False) -> bool:
        """Blocking `AsyncEntitlements.has`; a fresh cached value answers in this thread."""
        return self.value(customer, feature_key, fresh=fresh).has_access

    def cached_value(self, customer: CustomerRef, feature_key: str) -> EntitlementValue | None:
        """The fresh cached value, or None (`AsyncEntitlements.cached_value`); never waits."""
        return self._async.cached_value(customer, feature_key)

    prefetch = sync_method(AsyncEntitlements.prefetch)
    invalidate = sync_method(AsyncEntitlements.invalidate)
    access = sync_method(AsyncEntitlements.access)
    list = sync_pages(AsyncEntitlements.list)
    get = sync_method(AsyncEntitlements.get)
    create = sync_method(AsyncEntitlements.create)
    override = sync_method(AsyncEntitlements.override)
    delete = sync_method(AsyncEntitlements.delete)
    history = sync_method(AsyncEntitlements.history)
    reset = sync_method(AsyncEntitlements.reset)

    @cached_property
    def grants(self) -> SyncGrants:
        """Grants on metered entitlements."""
        return SyncGrants(self._async.grants, self._loop)


class SyncFeatures(SyncResource[AsyncFeatures]):
    """Blocking twin of `AsyncFeatures`."""

    create = sync_method(AsyncFeatures.create)
    get = sync_method(AsyncFeatures.get)
    list = sync_pages(AsyncFeatures.list)
    delete = sync_method(AsyncFeatures.delete)


class SyncMeters(SyncResource[AsyncMeters]):
    """Blocking twin of `AsyncMeters`."""

    create = sync_method(AsyncMeters.create)
    get = sync_method(AsyncMeters.get)
    list = sync_method(AsyncMeters.list)
    update = sync_method(AsyncMeters.update)
    delete = sync_method(AsyncMeters.delete)
    query = sync_method(AsyncMeters.query)


class SyncPortal(SyncResource[AsyncPortal]):
    """Blocking twin of `AsyncPortal`."""

    billing_link = sync_method(AsyncPortal.billing_link)
    create_token = sync_method(AsyncPortal.create_token)
    list_tokens = sync_method(AsyncPortal.list_tokens)
    invalidate = sync_method(AsyncPortal.invalidate)


class SyncUsage(SyncResource[AsyncUsage]):
    """Blocking twin of `AsyncUsage`."""

    def has(self, customer: CustomerRef, feature_key: str) -> bool:
        """Blocking `AsyncUsage.has`; a fresh cached value answers in this thread."""
        hit = self._async.cached_value(customer, feature_key)
        if hit is not None:
            return hit.has_access
        return self._loop.run(functools.partial(self._async.has, customer, feature_key))

    def cached_value(self, customer: CustomerRef, feature_key: str) -> EntitlementValue | None:
        """A fresh cached value without any I/O (None: no cache, or not fresh)."""
        return self._async.cached_value(customer, feature_key)

    balance = sync_method(AsyncUsage.balance)
    consume = sync_method(AsyncUsage.consume)
    refund = sync_method(AsyncUsage.refund)


class SyncBilling(SyncResource[AsyncBilling]):
    """Blocking twin of `AsyncBilling`."""

    apply_event = sync_method(AsyncBilling.apply_event)


class SyncTopups(SyncResource[AsyncTopups]):
    """Blocking twin of `AsyncTopups`."""

    grant = sync_method(AsyncTopups.grant)


class SyncCheckout(SyncResource["AsyncCheckout"]):
    """Blocking twin of `AsyncCheckout`."""

    create = sync_method(AsyncCheckout.create)


class SyncBackfill(SyncResource[AsyncBackfill]):
    """Blocking twin of `AsyncBackfill` (``on_progress`` runs on the facade's loop thread)."""

    customers = sync_method(AsyncBackfill.customers)
    subscriptions = sync_method(AsyncBackfill.subscriptions)


class SyncWebhooks(SyncResource[AsyncWebhooks]):
    """Blocking twin of `AsyncWebhooks` (``wsgi_app`` runs on the facade's event loop)."""

    handle = sync_method(AsyncWebhooks.handle)
    handle_billing_state = sync_method(AsyncWebhooks.handle_billing_state)
    replay = sync_method(AsyncWebhooks.replay)

    def wsgi_app(self, *, provider: str | None = None) -> Any:
        """A raw WSGI app: POST ``/<provider>`` (or any path with ``provider=``)."""
        from .webhooks._apps import wsgi_app

        return wsgi_app(self._async, provider, run=self._loop.run)


class SyncCatalogAPI(SyncResource[AsyncCatalogAPI]):
    """Blocking twin of `AsyncCatalogAPI`."""

    push = sync_method(AsyncCatalogAPI.push)

    @property
    def definition(self) -> Catalog:
        """The catalog passed at construction."""
        return self._async.definition


class SyncOpenMeterBilling:
    """The blocking client for scripts, migrations and backfills.

    Takes the same arguments as `OpenMeterBilling`; use it as a context manager or call `close`.
    It may be used from a thread that runs an event loop (a notebook), but it blocks that loop
    while a call runs. Do not share one adapter instance between it and an async client.
    """

    def __init__(self, **options: Unpack[ClientOptions]) -> None:
        self._loop = LoopThread()
        factory = functools.partial(OpenMeterBilling, **options)
        try:
            # Built on the loop's thread so anything loop-bound belongs to that loop.
            self._async: OpenMeterBilling = self._loop.run(functools.partial(_build, factory))
        except BaseException:
            self._loop.stop(None, 1.0)
            raise
        self._owner = True
        # Runs on garbage collection and at interpreter exit unless close() ran first. It holds
        # the loop and the async client, never this facade, so copies keep working until the
        # last of them is gone.
        self._lifetime = _Lifetime()
        self._finalizer = weakref.finalize(
            self._lifetime, _close_unclosed, self._loop, self._async, SHUTDOWN_TIMEOUT
        )

    def __repr__(self) -> str:
        return repr(self._async).replace("OpenMeterBilling", "SyncOpenMeterBilling", 1)

    @property
    def async_client(self) -> OpenMeterBilling:
        """The async client this facade drives (bound to the facade's own event loop)."""
        return self._async

    @property
    def base_url(self) -> httpx.URL:
        """The OpenMeter endpoint this client talks to."""
        return self._async.base_url

    @property
    def cache(self) -> EntitlementCache | None:
        """The entitlement cache passed at construction (its ``stats``, ``invalidate``)."""
        return self._async.cache

    @cached_property
    def customers(self) -> SyncCustomers:
        """Customers: create, get, list, update, delete, access, upsert, sync."""
        return SyncCustomers(self._async.customers, self._loop)

    @cached_property
    def events(self) -> SyncEvents:
        """Usage events: submit (background), ingest, ingest_batch, flush, reconcile, list."""
        return SyncEvents(self._async.events, self._loop)

    @cached_property
    def entitlements(self) -> SyncEntitlements:
        """Entitlements and ``entitlements.grants``."""
        return SyncEntitlements(self._async.entitlements, self._loop)

    @cached_property
    def features(self) -> SyncFeatures:
        """Features: create, get, list, delete."""
        return SyncFeatures(self._async.features, self._loop)

    @cached_property
    def meters(self) -> SyncMeters:
        """Meters: create, get, list, update, delete, query."""
        return SyncMeters(self._async.meters, self._loop)

    @cached_property
    def portal(self) -> SyncPortal:
        """Consumer portal tokens."""
        return SyncPortal(self._async.portal, self._loop)

    @cached_property
    def catalog(self) -> SyncCatalogAPI:
        """The billing catalog: ``definition`` and ``push(dry_run=...)``."""
        return SyncCatalogAPI(self._async.catalog, self._loop)

    @cached_property
    def billing(self) -> SyncBilling:
        """Billing events to entitlements: ``apply_event``."""
        return SyncBilling(self._async.billing, self._loop)

    @cached_property
    def topups(self) -> SyncTopups:
        """Catalog top-ups as exactly-once grants: ``grant``."""
        return SyncTopups(self._async.topups, self._loop)

    @cached_property
    def usage(self) -> SyncUsage:
        """Usage helpers: has, balance, consume, refund."""
        return SyncUsage(self._async.usage, self._loop)

    @cached_property
    def checkout(self) -> SyncCheckout:
        """Checkout links from the catalog: ``create``."""
        return SyncCheckout(self._async.checkout, self._loop)

    @cached_property
    def backfill(self) -> SyncBackfill:
        """Bulk, resumable imports: ``customers(principals)``, ``subscriptions(events)``."""
        return SyncBackfill(self._async.backfill, self._loop)

    @cached_property
    def webhooks(self) -> SyncWebhooks:
        """Payment-provider webhooks: ``handle``, ``replay``, ``wsgi_app``."""
        return SyncWebhooks(self._async.webhooks, self._loop)

    def with_options(
        self,
        *,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> SyncOpenMeterBilling:
        """A copy with per-call overrides sharing this facade's loop and connection pool."""
        clone = object.__new__(SyncOpenMeterBilling)
        clone._loop = self._loop
        clone._owner = False
        clone._lifetime = self._lifetime  # keeps the loop alive while the copy lives
        clone._async = self._async.with_options(
            timeout=timeout, max_retries=max_retries, default_headers=default_headers
        )
        return clone

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Query | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        idempotent: bool | None = None,
    ) -> Any:
        """Blocking twin of `OpenMeterBilling.request`."""
        return self._loop.run(
            functools.partial(
                self._async.request,
                method,
                path,
                params=params,
                json=json,
                headers=headers,
                timeout=timeout,
                idempotent=idempotent,
            )
        )

    def close(self) -> None:
        """Drain background work (bounded), close the connection pools, stop the loop thread.

        Closing a copy made with `with_options` does nothing; closing twice is harmless.
        """
        if self._owner and self._finalizer.detach() is not None:
            self._loop.stop(self._async.aclose, SHUTDOWN_TIMEOUT)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Lifetime:
    """Shared by a facade and its copies; when the last is gone the loop is shut down."""


def _close_unclosed(loop: LoopThread, client: OpenMeterBilling, timeout: float) -> None:
    warnings.warn(
        "SyncOpenMeterBilling was not closed; use `with SyncOpenMeterBilling(...)` or call "
        "close() (closed now, at garbage collection or interpreter exit)",
        ResourceWarning,
        stacklevel=1,
    )
    loop.stop(client.aclose, timeout)


async def _build(factory: Callable[[], OpenMeterBilling]) -> OpenMeterBilling:
    return factory()
