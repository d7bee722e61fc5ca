"""The shared half of the six adapters: secrets, body limits, JSON, customers and events."""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, ClassVar, NoReturn

from .._exceptions import ConfigurationError, WebhookVerificationError
from .._secret import Secret as _Secret
from ..billing.events import BillingEvent
from ..catalog.dsl import Catalog
from ._api import ProviderAPI
from ._catalog_index import CatalogIndex, index_for
from .base import (
    CustomerHint,
    CustomerResolver,
    Headers,
    MappedEvent,
    ProviderEvent,
    TopupPurchase,
)
from .signatures import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_TOLERANCE,
    HeaderMap,
    header,
    hmac_keys,
    normalise_headers,
    raw_body,
)

__all__ = ["ProviderAdapter"]

#: Metadata keys that carry your customer id, in the order they are tried.
REFERENCE_KEYS = (
    "referenceId",
    "reference_id",
    "customerKey",
    "customer_key",
    "organizationId",
    "userId",
    "user_id",
)
SCOPES = ("user", "organization", "team")
_DECODER = json.JSONDecoder()


class ProviderAdapter:
    """Base of the shipped adapters. Subclasses set ``name``/``env_var`` and the two hooks."""

    name: ClassVar[str]
    env_var: ClassVar[str]
    #: Where the API key for checkout and portal links comes from when ``api_key=`` is not given.
    api_key_env: ClassVar[str]
    #: The provider's production API root; ``base_url=`` points at a sandbox or a test server.
    default_base_url: ClassVar[str]
    #: The header the provider honours for idempotent retries (Stripe), if any.
    idempotency_header: ClassVar[str | None] = None
    #: HMAC-SHA256 states keyed once per secret by `_prepare` (never logged or pickled).
    _keys: tuple[hmac.HMAC, ...]

    def __init__(
        self,
        webhook_secret: str | Sequence[str] | None = None,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        resolve_customer: CustomerResolver | None = None,
        clock: Callable[[], float] = time.time,
        api_key: str | None = None,
        base_url: str | None = None,
        api_max_retries: int = 2,
    ) -> None:
        self._secrets = tuple(_Secret(s) for s in self._load_secrets(webhook_secret))
        key = api_key if api_key is not None else os.environ.get(self.api_key_env)
        self._api_key = _Secret(key.strip()) if key and key.strip() else None
        self.base_url = check_base_url(self.name, base_url or self.default_base_url)
        if isinstance(api_max_retries, bool) or not isinstance(api_max_retries, int):
            raise ConfigurationError(f"{self.name}: api_max_retries must be an int")
        self.api_max_retries = max(0, api_max_retries)
        given: object = tolerance  # checked at run time: callers may pass anything
        if isinstance(given, bool) or not isinstance(given, (int, float)) or given <= 0:
            raise ConfigurationError(
                f"{self.name}: tolerance must be a positive number of seconds, got {tolerance!r}"
            )
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise ConfigurationError(f"{self.name}: max_body_bytes must be an int")
        if max_body_bytes <= 0:
            raise ConfigurationError(f"{self.name}: max_body_bytes must be positive")
        if resolve_customer is not None and not callable(resolve_customer):
            raise ConfigurationError(f"{self.name}: resolve_customer must be callable")
        self.tolerance = float(tolerance)
        self.max_body_bytes = max_body_bytes
        self.resolve_customer = resolve_customer
        self._clock = clock
        self._prepare()

    def _prepare(self) -> None:
        """Key the HMACs once (here: with each secret's UTF-8 bytes, as Stripe, Razorpay and
        Creem do); subclasses derive other keys and raise `ConfigurationError` for a bad one."""
        self._keys = hmac_keys(s.encode("utf-8") for s in self._secret_values())

    def _load_secrets(self, given: str | Sequence[str] | None) -> list[str]:
        """Arguments first, then the environment (comma- or space-separated for rotation)."""
        source = f"webhook_secret= or {self.env_var}"
        values: list[object]
        if given is None:
            env = os.environ.get(self.env_var, "")
            values = [v for v in env.replace(",", " ").split() if v]
        elif isinstance(given, str):
            values = [given.strip()]
        else:
            values = [v.strip() if isinstance(v, str) else v for v in list[object](given)]
        if not values or not all(isinstance(v, str) and v for v in values):
            raise ConfigurationError(
                f"{self.name}: a webhook signing secret is required: pass {source} "
                f"(several secrets as a list while rotating)"
            )
        return [str(v) for v in values]

    @property
    def secret_count(self) -> int:
        """How many secrets are accepted (more than one while rotating)."""
        return len(self._secrets)

    def _secret_values(self) -> list[str]:
        return [s.reveal() for s in self._secrets]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(secrets={len(self._secrets)}, "
            f"tolerance={self.tolerance:g}, max_body_bytes={self.max_body_bytes})"
        )

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} holds webhook secrets and cannot be pickled; "
            "build the adapter in each process from its environment variable"
        )

    # -- provider API (checkout and portal links) ----------------------------------------------

    def api(self) -> ProviderAPI:
        """A client for this provider's API; `ConfigurationError` without an API key."""
        if self._api_key is None:
            raise ConfigurationError(
                f"{self.name}: checkout and portal links need the provider's API key: pass "
                f"api_key= to {type(self).__name__}(...) or set {self.api_key_env}"
            )
        return ProviderAPI(
            self.name,
            self.base_url,
            self._auth_headers,
            secrets=self._api_secrets,
            idempotency_header=self.idempotency_header,
            max_retries=self.api_max_retries,
        )

    def _api_secrets(self) -> list[str]:
        return [self._api_key.reveal()] if self._api_key is not None else []

    def _auth_headers(self) -> dict[str, str]:
        """Bearer auth (Stripe, Polar, Dodo, Autumn); Creem and Razorpay override it."""
        return {"Authorization": f"Bearer {self._api_secrets()[0]}"}

    # -- verification -------------------------------------------------------------------------

    def verify(self, headers: Headers, body: bytes | str) -> ProviderEvent:
        """Verify the delivery over the exact raw ``body`` and parse it.

        Raises:
            WebhookVerificationError: with ``reason`` ``missing_header``, ``malformed``,
                ``bad_signature``, ``timestamp_outside_tolerance``, ``body_too_large`` or
                ``invalid_payload`` (signed correctly, but not a JSON object).
        """
        data = raw_body(body, self.name, self.max_body_bytes)
        header_map = normalise_headers(headers)
        signed_at = self._check_signature(header_map, data, self._clock())
        payload = self._parse(data)
        delivery_id, event_type, occurred_at = self._describe(header_map, payload, signed_at)
        if not delivery_id:
            raise WebhookVerificationError(
                f"{self.name}: the delivery carries no event id to deduplicate on",
                reason="invalid_payload",
                provider=self.name,
            )
        return ProviderEvent(self.name, delivery_id, event_type, occurred_at, payload)

    def _check_signature(self, headers: HeaderMap, body: bytes, now: float) -> int | None:
        """Raise unless signed; return the signed timestamp when the scheme has one."""
        raise NotImplementedError

    def _describe(
        self, headers: HeaderMap, payload: dict[str, Any], signed_at: int | None
    ) -> tuple[str | None, str, datetime]:
        """(delivery id, event type, occurred at) of a verified delivery."""
        raise NotImplementedError

    def _parse(self, body: bytes) -> dict[str, Any]:
        try:
            # UTF-8 (what providers send) straight to the decoder; anything else (a BOM,
            # UTF-16/32, invalid JSON) takes json.loads' own path, which accepts or refuses it.
            payload = _DECODER.decode(body.decode("utf-8"))
        except ValueError:  # includes UnicodeDecodeError and JSONDecodeError
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
        if not isinstance(payload, dict):
            raise WebhookVerificationError(
                f"{self.name}: the signature is valid but the body is not a JSON object",
                reason="invalid_payload",
                provider=self.name,
            )
        return payload

    # -- mapping --------------------------------------------------------------------------------

    def map(self, event: ProviderEvent, *, catalog: Catalog | None = None) -> MappedEvent:
        """What ``event`` means for billing (pure; plans and prices come from ``catalog``)."""
        return self._map(MappingContext(self, event, index_for(catalog, self.name)))

    def billing_events(
        self, event: ProviderEvent, *, catalog: Catalog | None = None
    ) -> list[BillingEvent]:
        """Just the billing events of `map` (top-ups and refunds are in `map`'s result)."""
        return list(self.map(event, catalog=catalog).billing_events)

    def _map(self, ctx: MappingContext) -> MappedEvent:
        raise NotImplementedError


class MappingContext:
    """One event being mapped: builds billing events and resolves customers and items."""

    def __init__(self, adapter: ProviderAdapter, event: ProviderEvent, index: CatalogIndex) -> None:
        self.adapter = adapter
        self.event = event
        self.index = index
        self.provider = adapter.name

    def customer(
        self,
        *metadata_sources: object,
        provider_customer_id: object = None,
        email: object = None,
        reference_id: object = None,
    ) -> tuple[object | None, dict[str, Any]]:
        """The customer (resolver, else a reference id in metadata) and the metadata used."""
        metadata: dict[str, Any] = {}
        for source in metadata_sources:
            if isinstance(source, Mapping):
                for key, value in source.items():
                    metadata.setdefault(str(key), value)
        ref = _text(reference_id) or next(
            (v for k in REFERENCE_KEYS if (v := _text(metadata.get(k)))), None
        )
        hint = CustomerHint(
            provider=self.provider,
            reference_id=ref,
            provider_customer_id=_text(provider_customer_id),
            email=_text(email),
            metadata=metadata,
            event=self.event,
        )
        resolver = self.adapter.resolve_customer
        customer = resolver(hint) if resolver is not None else ref
        return (customer if customer not in (None, "") else None), metadata

    def billing_event(
        self,
        type_: str,
        customer: object,
        metadata: Mapping[str, Any],
        *,
        suffix: str = "",
        **fields: Any,
    ) -> BillingEvent:
        """A `BillingEvent` of this delivery (``suffix`` tells several of one delivery apart)."""
        scope = metadata.get("customerType") or metadata.get("customer_type")
        notes = {
            "provider_event_type": self.event.type,
            "delivery_id": self.event.delivery_id,
        }
        notes.update({k: str(v) for k, v in fields.pop("notes", {}).items() if v is not None})
        start, end = fields.get("current_period_start"), fields.get("current_period_end")
        if start is not None and end is not None and end < start:
            # An immediate end (Razorpay ended_at) can precede the period's start: keep the end.
            fields["current_period_start"] = None
        return BillingEvent(
            type=type_,
            provider=self.provider,
            provider_event_id=self.event.delivery_id + suffix,
            occurred_at=self.event.occurred_at,
            customer=customer,
            customer_scope=scope if scope in SCOPES else None,
            metadata=notes,
            **{k: v for k, v in fields.items() if v is not None},
        )

    def unresolved(self) -> MappedEvent:
        """The standard rejection when no customer could be found."""
        return MappedEvent(
            rejected=(
                f"customer_unresolved: {self.provider} {self.event.type} names no customer you "
                "know; put referenceId in the checkout metadata or pass resolve_customer="
            )
        )

    def unknown_plan(self, ids: Sequence[object]) -> MappedEvent:
        shown = ", ".join(str(i) for i in ids if i) or "(none)"
        return MappedEvent(
            rejected=(
                f"unknown_plan: no catalog plan has {self.provider} id {shown}; add it to the "
                "plan's or price's provider_ids"
            )
        )

    def unknown_type(self) -> MappedEvent:
        return MappedEvent(ignored=f"unknown_event_type: {self.event.type}")

    def topup(
        self, customer: object, topup: str, payment_id: str, *, amount: Any, currency: str | None
    ) -> MappedEvent:
        """A paid catalog top-up, granted once per provider payment id."""
        purchase = TopupPurchase(
            customer=customer,
            topup=topup,
            idempotency_key=f"{self.provider}:{payment_id}",
            payment_id=payment_id,
            provider=self.provider,
            occurred_at=self.event.occurred_at,
            amount=amount,
            currency=currency,
        )
        return MappedEvent(topups=(purchase,))


def describe_standard_webhook(
    headers: HeaderMap, payload: dict[str, Any], signed_at: int | None
) -> tuple[str | None, str, datetime]:
    """Delivery id, type and time of a Standard Webhooks delivery whose body has an ISO
    ``timestamp`` (Polar, Dodo); the signed timestamp when the body has none."""
    occurred = from_iso(payload.get("timestamp")) or from_unix(signed_at)
    assert occurred is not None
    return header(headers, "webhook-id"), str(payload.get("type") or ""), occurred


def check_base_url(provider: str, url: str) -> str:
    """An https URL (or http on loopback, for tests), without its trailing slash."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    loopback = parsed is not None and parsed.host in ("localhost", "127.0.0.1", "::1")
    if parsed is None or not (parsed.scheme == "https" or (parsed.scheme == "http" and loopback)):
        raise ConfigurationError(
            f"{provider}: base_url must be an https:// URL (http:// only on loopback), got {url!r}"
        )
    return url.rstrip("/")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def text(value: object) -> str | None:
    """``value`` if it is a non-empty string, else None."""
    return _text(value)


def from_unix(value: object) -> datetime | None:
    """Seconds since the epoch (Stripe, Razorpay) to an aware datetime."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):  # not seconds after all
            return None
    return None


def from_millis(value: object) -> datetime | None:
    """Milliseconds since the epoch (Creem, Autumn) to an aware datetime."""
    return from_unix(value / 1000) if isinstance(value, (int, float)) else None


def from_iso(value: object) -> datetime | None:
    """An ISO 8601 string (Polar, Dodo, Creem) to an aware datetime; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def dig(data: object, *path: str | int) -> Any:
    """``data[p0][p1]...`` or None as soon as a step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or len(data) <= step:
                return None
            data = data[step]
        elif isinstance(data, Mapping):
            data = data.get(step)
        else:
            return None
    return data


def obj(value: object) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an empty one (lenient parsing of payloads)."""
    return value if isinstance(value, dict) else {}


def items(value: object) -> list[Any]:
    """``value`` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def received_now() -> datetime:
    """The time of receipt, for payloads that carry none."""
    return datetime.now(timezone.utc)
