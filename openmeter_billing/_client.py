"""`OpenMeterBilling`: configuration and wiring only; the work happens in resources and `_http`."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from functools import cached_property
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pydantic
from typing_extensions import Self

from ._constants import (
    CLOUD_HOSTS,
    DEFAULT_BASE_URL,
    DEFAULT_EVENT_SOURCE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    ENV_ENDPOINT,
    ENV_TOKEN,
)
from ._exceptions import ConfigurationError, InvalidInputError
from ._http import HTTPCore, HTTPOptions, Query, _Secret, _to_timeout
from ._runtime import Runtime
from ._types import NOT_GIVEN, NotGiven, TimeoutTypes
from .billing.engine import AsyncBilling, BillingOptions
from .billing.ledger import Ledger
from .billing.topups import AsyncTopups
from .billing.usage import AsyncUsage
from .cache import EntitlementCache
from .catalog._client_api import AsyncCatalogAPI
from .catalog.dsl import Catalog
from .identity import CustomerIdStore, CustomerRef, Identity
from .providers.base import PaymentProvider
from .resources import (
    AsyncCustomers,
    AsyncEntitlements,
    AsyncEvents,
    AsyncFeatures,
    AsyncMeters,
    AsyncPortal,
)
from .resources._base import parse_model
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
        cache: EntitlementCache | None = None,
    ) -> None:
        if cache is not None and not isinstance(cache, EntitlementCache):
            raise ConfigurationError(
                f"cache must be an EntitlementCache, got {type(cache).__name__}: pass "
                "cache=EntitlementCache(ttl=30.0)"
            )
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
        key = api_key if api_key is not None else os.environ.get(ENV_TOKEN) or None
        url = httpx.URL(str(base_url or os.environ.get(ENV_ENDPOINT) or DEFAULT_BASE_URL))
        if key is None and url.host in CLOUD_HOSTS:
            raise ConfigurationError(
                f"OpenMeter Cloud ({url.host}) needs an API token: pass api_key=... or set "
                f"the {ENV_TOKEN} environment variable (self-hosted OpenMeter: pass base_url=)"
            )
        if isinstance(timeout, NotGiven):
            resolved_timeout = http_client.timeout if http_client is not None else DEFAULT_TIMEOUT
        else:
            resolved_timeout = _to_timeout(timeout)
        options = HTTPOptions(
            base_url=url,
            api_key=_Secret(key) if key else None,
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
        self.identity = identity or Identity()
        self.customer_id_store = customer_id_store
        self.event_source = event_source
        self.catalog_definition = catalog
        self.providers: dict[str, PaymentProvider] = _check_providers(providers)
        self.webhook_inbox = webhook_inbox
        self.ledger = ledger
        self.billing_options = billing_options or BillingOptions()
        self._cache = cache
        if cache is not None:
            cache.attach(self)

    def __repr__(self) -> str:
        auth = "api_key" if self._http.options.api_key else "none"
        return f"<OpenMeterBilling base_url={str(self.base_url)!r} auth={auth}>"

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
        return AsyncCustomers(self)

    @cached_property
    def events(self) -> AsyncEvents:
        """Usage events: ingest, ingest_batch, list."""
        return AsyncEvents(self)

    @cached_property
    def entitlements(self) -> AsyncEntitlements:
        """Entitlements (value, has, access, lifecycle) and ``entitlements.grants``."""
        return AsyncEntitlements(self)

    @cached_property
    def features(self) -> AsyncFeatures:
        """Features: create, get, list, delete."""
        return AsyncFeatures(self)

    @cached_property
    def meters(self) -> AsyncMeters:
        """Meters: create, get, list, update, delete, query."""
        return AsyncMeters(self)

    @cached_property
    def portal(self) -> AsyncPortal:
        """Consumer portal tokens."""
        return AsyncPortal(self)

    @cached_property
    def catalog(self) -> AsyncCatalogAPI:
        """The billing catalog: ``definition`` and ``push(dry_run=...)``."""
        return AsyncCatalogAPI(self)

    @cached_property
    def billing(self) -> AsyncBilling:
        """Billing events to entitlements: ``apply_event``."""
        return AsyncBilling(self)

    @cached_property
    def topups(self) -> AsyncTopups:
        """Catalog top-ups as exactly-once grants: ``grant``."""
        return AsyncTopups(self)

    @cached_property
    def usage(self) -> AsyncUsage:
        """Usage helpers: has, balance, consume, refund."""
        return AsyncUsage(self)

    @cached_property
    def webhooks(self) -> AsyncWebhooks:
        """Payment-provider webhooks: ``handle``, ``replay``, ``asgi_app``, ``wsgi_app``."""
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
        return parse_model(model, response)

    async def _customer_key(self, customer: CustomerRef) -> str:
        """``customerIdOrKey`` for an id, a key or a principal."""
        if isinstance(customer, str):
            if not customer:
                raise InvalidInputError(
                    "customer must not be empty",
                    field="customer",
                    hint="pass an OpenMeter id, a customer key or a principal object",
                )
            return customer
        if customer is None:
            raise InvalidInputError(
                "customer is required",
                field="customer",
                hint="pass an OpenMeter id, a customer key or a principal object",
            )
        return await self.identity.resolve_key(customer)

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
