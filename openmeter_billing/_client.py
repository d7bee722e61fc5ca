"""`OpenMeterBilling`: configuration and wiring only; the work happens in resources and `_http`."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pydantic
from typing_extensions import Self

from ._config import resolve_connection
from ._constants import (
    DEFAULT_EVENT_SOURCE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)
from ._exceptions import ConfigurationError, InvalidInputError
from ._http import HTTPCore, HTTPOptions, Query, _to_timeout
from ._runtime import Runtime
from ._secret import Secret
from ._types import NOT_GIVEN, NotGiven, TimeoutTypes

# Resources, workflows and their pydantic models load on first use (each `cached_property`
# below imports its module), so `import openmeter_billing` stays cheap for CLIs and workers.
if TYPE_CHECKING:
    from .backfill import AsyncBackfill
    from .billing.engine import AsyncBilling, BillingOptions
    from .billing.ledger import Ledger
    from .billing.topups import AsyncTopups
    from .billing.usage import AsyncUsage
    from .cache import EntitlementCache
    from .catalog._client_api import AsyncCatalogAPI
    from .catalog.dsl import Catalog
    from .customer_sync import AsyncCustomers
    from .identity import CustomerIdStore, CustomerRef, Identity
    from .ingest._engine import IngestEngine
    from .ingest.options import IngestOptions
    from .ingest.outbox import Outbox
    from .providers.base import PaymentProvider
    from .providers.checkout import AsyncCheckout
    from .resources import (
        AsyncEntitlements,
        AsyncEvents,
        AsyncFeatures,
        AsyncMeters,
        AsyncPortal,
    )
    from .resources._base import ResourceDeps
    from .webhooks import AsyncWebhooks, WebhookInbox

__all__ = ["OpenMeterBilling"]

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


class OpenMeterBilling:
    """The async client. One instance per application; share it across requests.

    Args:
        api_key: OpenMeter API token. Falls back to ``OPENMETER_TOKEN``. Self-hosted OpenMeter
            without auth needs none; OpenMeter Cloud does.
        base_url: Falls back to ``OPENMETER_ENDPOINT``, then ``https://openmeter.cloud``.
        timeout: Seconds (or an `httpx.Timeout`) per request; None waits forever. Default 30 s
            (5 s to connect).
        max_retries: Extra attempts for failures that are safe to repeat. Default 2.
        default_headers: Headers sent with every request.
        http_client: Your own `httpx.AsyncClient` (you close it). Excludes ``transport``.
        transport: An httpx transport, for example `openmeter_billing.local.LocalOpenMeter`.
        identity: Resolvers that map your users, organizations and teams to customers.
        customer_id_store: Where `customers.sync` records OpenMeter's customer ids.
        event_source: The CloudEvents ``source`` of ingested events.
        catalog: The billing catalog (used by catalog and billing workflows).
        providers: Payment-provider adapters (`openmeter_billing.providers`), one per name.
        webhook_inbox: Records every webhook delivery so a failed one can be replayed.
        ledger: Exactly-once ledger for billing workflows (`openmeter_billing.billing.ledger`).
        billing_options: How billing events map to entitlements, and hooks.
        allow_insecure_http: Permit sending the API key over plain HTTP to a non-loopback host.
        outbox: Durable storage for `events.submit` (`SQLiteOutbox`, `PostgresOutbox`): events
            are committed before submit returns and survive crashes. None: a memory queue.
        ingest: Batching, queue bounds, overflow, retries and callbacks of `events.submit`.
        cache: An `EntitlementCache` (or `RedisEntitlementCache`): entitlement checks answer
            from memory, refreshed in the background. Off by default.

    Precedence for every setting: argument, then environment, then default.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        identity: Identity | None = None,
        customer_id_store: CustomerIdStore | None = None,
        event_source: str = DEFAULT_EVENT_SOURCE,
        catalog: Catalog | None = None,
        providers: Sequence[PaymentProvider] = (),
        ledger: Ledger | None = None,
        billing_options: BillingOptions | None = None,
        allow_insecure_http: bool = False,
        webhook_inbox: WebhookInbox | None = None,
        outbox: Outbox | None = None,
        ingest: IngestOptions | None = None,
        cache: EntitlementCache | None = None,
    ) -> None:
        _check_ingest_options(outbox, ingest)
        _check_cache(cache)
        if http_client is not None and transport is not None:
            raise ConfigurationError(
                "pass either http_client= or transport=, not both; set the transport on your "
                "httpx.AsyncClient instead"
            )
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise ConfigurationError(
                f"http_client must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        if not event_source:
            raise ConfigurationError("event_source must be a non-empty string")
        key, url = resolve_connection(api_key, base_url)
        if isinstance(timeout, NotGiven):
            resolved_timeout = http_client.timeout if http_client is not None else DEFAULT_TIMEOUT
        else:
            resolved_timeout = _to_timeout(timeout)
        options = HTTPOptions(
            base_url=url,
            api_key=Secret(key) if key else None,
            timeout=resolved_timeout,
            max_retries=max_retries,
            default_headers=dict(default_headers or {}),
            allow_insecure_http=allow_insecure_http,
        )
        self._owns_runtime = True
        self._runtime = Runtime(
            make_http_client=functools.partial(_new_pool, timeout=resolved_timeout),
            user_client=http_client,
            transport=transport,
        )
        self._http = HTTPCore(options, self._runtime)
        self._identity = identity
        self.customer_id_store = customer_id_store
        self.event_source = event_source
        self.catalog_definition = catalog
        self.providers: dict[str, PaymentProvider] = _check_providers(providers)
        self.webhook_inbox = webhook_inbox
        self.ledger = ledger
        self._billing_options = billing_options
        self.outbox = outbox
        self._make_ingest = functools.partial(
            _ingest_engine, self._http, self._runtime, ingest, outbox
        )
        if outbox is not None:
            self._ingest()  # now: an outbox left behind by an earlier process is delivered on start
        self._cache = cache
        if cache is not None:
            cache.attach(
                fetch_value=self.entitlements._fetch_value,
                fetch_all=self.entitlements.access,
                runtime=self._runtime,
            )

    def __repr__(self) -> str:
        auth = "api_key" if self._http.options.api_key else "none"
        return f"<OpenMeterBilling base_url={str(self.base_url)!r} auth={auth}>"

    @property
    def identity(self) -> Identity:
        """The resolvers that map your users, organizations and teams to customers."""
        if self._identity is None:
            from .identity import Identity

            self._identity = Identity()
        return self._identity

    @property
    def billing_options(self) -> BillingOptions:
        """How billing events map to entitlements, and the hooks around them."""
        if self._billing_options is None:
            from .billing.engine import BillingOptions

            self._billing_options = BillingOptions()
        return self._billing_options

    @property
    def cache(self) -> EntitlementCache | None:
        """The entitlement cache passed at construction (None: every check asks OpenMeter)."""
        return self._cache

    @property
    def base_url(self) -> httpx.URL:
        """The OpenMeter endpoint this client talks to."""
        return self._http.options.base_url

    @property
    def timeout(self) -> httpx.Timeout:
        """The default per-request timeout."""
        return self._http.options.timeout

    @property
    def max_retries(self) -> int:
        """How many times a safe request is retried."""
        return self._http.options.max_retries

    @cached_property
    def customers(self) -> AsyncCustomers:
        """Customers: create, get, list, update, delete, access, upsert, sync."""
        from .customer_sync import AsyncCustomers

        return AsyncCustomers(self._resource_deps)

    @cached_property
    def events(self) -> AsyncEvents:
        """Usage events: submit (background), ingest, ingest_batch, flush, reconcile, list."""
        from .resources.events import AsyncEvents

        return AsyncEvents(self._resource_deps)

    @cached_property
    def entitlements(self) -> AsyncEntitlements:
        """Entitlements (value, has, access, lifecycle) and ``entitlements.grants``."""
        from .resources.entitlements import AsyncEntitlements

        return AsyncEntitlements(self._resource_deps)

    @cached_property
    def features(self) -> AsyncFeatures:
        """Features: create, get, list, delete."""
        from .resources.features import AsyncFeatures

        return AsyncFeatures(self._resource_deps)

    @cached_property
    def meters(self) -> AsyncMeters:
        """Meters: create, get, list, update, delete, query."""
        from .resources.meters import AsyncMeters

        return AsyncMeters(self._resource_deps)

    @cached_property
    def portal(self) -> AsyncPortal:
        """Consumer portal tokens."""
        from .resources.portal import AsyncPortal

        return AsyncPortal(self._resource_deps)

    @cached_property
    def catalog(self) -> AsyncCatalogAPI:
        """The billing catalog: ``definition`` and ``push(dry_run=...)``."""
        from .catalog._client_api import AsyncCatalogAPI
        from .catalog.push import PushTarget

        return AsyncCatalogAPI(
            self.catalog_definition, PushTarget(meters=self.meters, features=self.features)
        )

    @cached_property
    def billing(self) -> AsyncBilling:
        """Billing events to entitlements: ``apply_event``."""
        from .billing.engine import AsyncBilling

        return AsyncBilling(
            entitlements=self.entitlements,
            events=self.events,
            ledger=self.ledger,
            catalog=self.catalog_definition,
            options=self.billing_options,
        )

    @cached_property
    def topups(self) -> AsyncTopups:
        """Catalog top-ups as exactly-once grants: ``grant``."""
        from .billing.topups import AsyncTopups

        return AsyncTopups(
            entitlements=self.entitlements,
            events=self.events,
            ledger=self.ledger,
            catalog=self.catalog_definition,
            server_clock=self._http.server_clock,
        )

    @cached_property
    def usage(self) -> AsyncUsage:
        """Usage helpers: has, balance, consume, refund."""
        from .billing.usage import AsyncUsage

        return AsyncUsage(
            entitlements=self.entitlements,
            features=self.features,
            meters=self.meters,
            events=self.events,
            identity=self.identity,
            server_clock=self._http.server_clock,
            cache=self._cache,
        )

    @cached_property
    def checkout(self) -> AsyncCheckout:
        """Checkout links from the catalog, for every configured payment provider: ``create``."""
        from .providers.checkout import AsyncCheckout

        return AsyncCheckout(
            providers=self.providers, identity=self.identity, catalog=self.catalog_definition
        )

    @cached_property
    def backfill(self) -> AsyncBackfill:
        """Bulk, resumable imports: ``customers(principals)``, ``subscriptions(events)``."""
        from .backfill import AsyncBackfill

        return AsyncBackfill(
            customers=self.customers,
            identity=self.identity,
            customer_id_store=self.customer_id_store,
            billing=self.billing,
        )

    @cached_property
    def webhooks(self) -> AsyncWebhooks:
        """Payment-provider webhooks: ``handle``, ``replay``, ``asgi_app``, ``wsgi_app``."""
        from .webhooks import AsyncWebhooks

        return AsyncWebhooks(
            providers=self.providers,
            billing=self.billing,
            topups=self.topups,
            catalog=self.catalog_definition,
            ledger=self.ledger,
            inbox=self.webhook_inbox,
        )

    def with_options(
        self,
        *,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> Self:
        """A copy with per-call overrides that shares this client's connection pool.

        Example: ``await client.with_options(timeout=2, max_retries=0).entitlements.value(...)``.
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(
            {
                k: v
                for k, v in self.__dict__.items()
                if not isinstance(getattr(type(self), k, None), cached_property)
            }
        )
        clone._http = self._http.with_options(
            timeout=timeout, max_retries=max_retries, default_headers=default_headers
        )
        clone._owns_runtime = False
        return clone

    async def request(
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
        """Call any OpenMeter endpoint with the same auth, retries and errors.

        Returns the decoded JSON body (None for an empty body).

        Args:
            path: The path below the base URL, for example ``/api/v1/subjects``.
            idempotent: Whether a POST may be repeated safely (GET/PUT/DELETE always may).
        """
        if not path.startswith("/"):
            raise InvalidInputError(
                f"path must start with '/', got {path!r}",
                field="path",
                hint="pass the path below the base URL, for example '/api/v1/meters'",
            )
        response = await self._http.request(
            method,
            path,
            params=params,
            json_body=json,
            headers=headers,
            timeout=timeout,
            idempotent=idempotent,
        )
        return response.json() if response.content else None

    async def request_model(
        self,
        model: type[ModelT],
        method: str,
        path: str,
        *,
        params: Query | None = None,
        json: Any = None,
    ) -> ModelT:
        """Like `request`, parsing the body into a pydantic ``model``."""
        response = await self._http.request(method, path, params=params, json_body=json)
        from .resources._base import parse_model

        return parse_model(model, response)

    async def _customer_key(self, customer: CustomerRef) -> str:
        """``customerIdOrKey`` for an id, a key or a principal."""
        return await self.identity.customer_key(customer)

    @cached_property
    def _resource_deps(self) -> ResourceDeps:
        """What the resources get: the HTTP core, identity and settings (not this client)."""
        from .resources._base import ResourceDeps

        return ResourceDeps(
            http=self._http,
            identity=self.identity,
            customer_id_store=self.customer_id_store,
            event_source=self.event_source,
            providers=self.providers,
            ingest=self._ingest,
            cache=self._cache,
        )

    def _ingest(self) -> IngestEngine:
        """The queue (or outbox) and flusher behind ``events.submit``, made on first use."""
        return self._runtime.shared("ingest", self._make_ingest)

    async def aclose(self) -> None:
        """Drain background services (bounded) and close the connection pools.

        Your own ``http_client`` is left open (you close it); a ``transport`` you passed is
        closed. Copies made with `with_options` share this client's pools: closing a copy does
        nothing. Closing twice is harmless.
        """
        if self._owns_runtime:
            await self._runtime.aclose()

    async def __aenter__(self) -> Self:
        self._runtime.ensure_started()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _new_pool(
    transport: httpx.AsyncBaseTransport | None, *, timeout: httpx.Timeout
) -> httpx.AsyncClient:
    """A connection pool for one event loop in one process (the runtime asks for each)."""
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=False)


def _check_providers(providers: Sequence[PaymentProvider]) -> dict[str, PaymentProvider]:
    """Providers by name; anything that is not one, or a second of one name, is refused."""
    given: object = providers  # checked at run time: callers may pass anything
    if not given:
        return {}
    from .providers.base import PaymentProvider

    if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
        raise ConfigurationError("providers must be a list of adapters, e.g. [Stripe(...)]")
    by_name: dict[str, PaymentProvider] = {}
    for index, provider in enumerate(list[object](given)):
        if not isinstance(provider, PaymentProvider) or not isinstance(provider.name, str):
            raise ConfigurationError(
                f"providers[{index}] is a {type(provider).__name__}, not a payment provider: pass "
                "an adapter such as Stripe(webhook_secret=...) or implement PaymentProvider"
            )
        if provider.name in by_name:
            raise ConfigurationError(
                f"providers[{index}]: two providers are named {provider.name!r}; pass one adapter "
                "per provider (it takes several secrets while rotating)"
            )
        by_name[provider.name] = provider
    return by_name


def _ingest_engine(
    http: HTTPCore, runtime: Runtime, options: IngestOptions | None, outbox: Outbox | None
) -> IngestEngine:
    """A new ingest engine; it registers its flusher with the runtime."""
    from .ingest._engine import IngestEngine
    from .ingest.options import IngestOptions

    return IngestEngine(http, runtime, options or IngestOptions(), outbox)


def _check_ingest_options(outbox: object, ingest: object) -> None:
    if outbox is None and ingest is None:
        return
    from .ingest.options import IngestOptions
    from .ingest.outbox import Outbox

    if outbox is not None and not isinstance(outbox, Outbox):
        raise ConfigurationError(
            f"outbox must be an outbox such as SQLiteOutbox(path) or PostgresOutbox(dsn), "
            f"got {type(outbox).__name__}"
        )
    if ingest is not None and not isinstance(ingest, IngestOptions):
        raise ConfigurationError(
            f"ingest must be an IngestOptions(...), got {type(ingest).__name__}"
        )


def _check_cache(cache: object) -> None:
    if cache is None:
        return
    from .cache import EntitlementCache

    if not isinstance(cache, EntitlementCache):
        raise ConfigurationError(
            f"cache must be an EntitlementCache, got {type(cache).__name__}: pass "
            "cache=EntitlementCache(ttl=30.0)"
        )
