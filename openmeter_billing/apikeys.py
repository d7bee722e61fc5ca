"""API-key metering: every verified API-key use becomes one usage event, framework-neutral.

Your service verifies its API keys (any library); this module only records the verified use
as an ``api-key.verified`` event attributed to the key's owner (a user, organization or team
resolved through the client's `Identity`), so meters can count calls per customer and
entitlements can limit them. No key material is ever sent: only the key's id and what you
choose to describe it with.

Two forms:

- `ApiKeyMeter.record(use)`: call it where you verify a key (a dependency, a decorator, a
  view).
- `ApiKeyMeteringMiddleware`: a raw ASGI middleware that asks your ``identify(scope)`` for the
  verified use and records it once the response has finished.

Events go through `ApiKeyMeter._send`, the one place that will switch from
``client.events.ingest`` to the durable ``client.events.submit`` queue once it exists.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._exceptions import InvalidInputError
from ._types import MaybeAwaitable, maybe_await
from .types.events import CloudEvent

if TYPE_CHECKING:
    from ._client import OpenMeterBilling

__all__ = ["DEFAULT_EVENT_TYPE", "ApiKeyMeter", "ApiKeyMeteringMiddleware", "ApiKeyUse"]

logger = logging.getLogger("openmeter_billing")

DEFAULT_EVENT_TYPE = "api-key.verified"
#: Metadata names that suggest a secret; refused so a key never leaves in an event by accident.
_SECRET_NAMES = ("secret", "token", "password", "api_key", "apikey", "key_value")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class ApiKeyUse:
    """One verified use of an API key: what gets metered (never the key itself).

    Attributes:
        key_id: Your id of the key (not the key): the same for every use of one key.
        owner: Whose key it is: a principal (user, organization, team) or a customer key/id.
        route: What was called, for example ``GET /v1/completions``.
        name: The key's display name.
        remaining: Uses left on the key, when your key system counts them.
        request_count: Uses so far, when known.
        rate_limit_max: Requests allowed per window, when the key is rate-limited.
        rate_limit_window: The window in seconds.
        permissions: The key's permissions, for example ``{"files": ["read"]}``.
        metadata: Extra string fields for meters' ``groupBy`` (no secrets: refused by name).
        request_id: Makes the event id stable, so a retried record is counted once.
        time: When it happened (aware); default: OpenMeter's receive time.
    """

    key_id: str
    owner: object
    route: str | None = None
    name: str | None = None
    remaining: int | None = None
    request_count: int | None = None
    rate_limit_max: int | None = None
    rate_limit_window: float | None = None
    permissions: Mapping[str, Sequence[str]] | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    request_id: str | None = None
    time: datetime | None = None


#: ``(error, use) -> None``: told when recording failed (the request itself goes on).
ErrorHook = Callable[[Exception, ApiKeyUse], MaybeAwaitable[None]]


class ApiKeyMeter:
    """Records verified API-key uses as usage events on ``client``.

    Args:
        client: The `OpenMeterBilling` client (its `Identity` maps owners to subjects).
        event_type: The CloudEvents type your meter matches. Default ``api-key.verified``.
        owner: ``use -> principal`` when ``use.owner`` is not yet what the identity resolvers
            take (for example a team id you load first). Sync or async.
        raise_errors: Re-raise a failed record. Default False: metering never fails a
            request; the error is logged and passed to ``on_error``.
        on_error: Told about failed records (for example to count them).
    """

    def __init__(
        self,
        client: OpenMeterBilling,
        *,
        event_type: str = DEFAULT_EVENT_TYPE,
        owner: Callable[[ApiKeyUse], MaybeAwaitable[object]] | None = None,
        raise_errors: bool = False,
        on_error: ErrorHook | None = None,
    ) -> None:
        if not event_type:
            raise InvalidInputError(
                "event_type must be a non-empty string", field="event_type", hint=DEFAULT_EVENT_TYPE
            )
        self._client = client
        self.event_type = event_type
        self._owner = owner
        self.raise_errors = raise_errors
        self._on_error = on_error

    def __repr__(self) -> str:
        return f"<ApiKeyMeter event_type={self.event_type!r}>"

    async def record(self, use: ApiKeyUse) -> CloudEvent | None:
        """Send one ``api-key.verified`` event for ``use``; returns it, or None if it failed.

        Bad input (an empty key id, a secret-looking metadata name) is an `InvalidInputError`
        raised before any request, whatever ``raise_errors`` says: it is a bug to fix.
        """
        data = _event_data(use)
        try:
            owner = use.owner if self._owner is None else await maybe_await(self._owner(use))
            data["owner"] = await self._client.identity.customer_key(owner)
            return await self._send(use, owner, data)
        except Exception as exc:
            logger.warning("API-key metering failed for key %s: %s", use.key_id, exc)
            if self._on_error is not None:
                await maybe_await(self._on_error(exc, use))
            if self.raise_errors:
                raise
            return None

    async def _send(self, use: ApiKeyUse, owner: object, data: dict[str, Any]) -> CloudEvent:
        """The ingest path. Switches to ``client.events.submit`` (durable queue) when it lands."""
        event_id = None
        if use.request_id:
            name = f"openmeter-billing:api-key:{use.key_id}:{use.request_id}"
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, name))
        return await self._client.events.ingest(
            type=self.event_type, customer=owner, data=data, id=event_id, time=use.time
        )

    def asgi(
        self, app: ASGIApp, identify: Callable[[Scope], MaybeAwaitable[ApiKeyUse | None]]
    ) -> ApiKeyMeteringMiddleware:
        """Wrap an ASGI ``app``: see `ApiKeyMeteringMiddleware`."""
        return ApiKeyMeteringMiddleware(app, self, identify)


def _event_data(use: ApiKeyUse) -> dict[str, Any]:
    if not isinstance(use, ApiKeyUse):
        raise InvalidInputError(
            f"expected an ApiKeyUse, got {type(use).__name__}",
            field="use",
            hint="ApiKeyUse(key_id=..., owner=...)",
        )
    key_id: object = use.key_id  # checked at run time: callers may pass anything
    if not isinstance(key_id, str) or not key_id:
        raise InvalidInputError(
            "key_id must be a non-empty string (the key's id, never the key)", field="key_id"
        )
    for name in use.metadata:
        if any(part in name.lower().replace("-", "_") for part in _SECRET_NAMES):
            raise InvalidInputError(
                f"metadata field {name!r} looks like a secret; events must not carry key material",
                field=f"metadata.{name}",
                hint="send the key's id (key_id) and describe it with non-secret fields",
            )
    data: dict[str, Any] = {
        "key_id": use.key_id,
        "key_name": use.name,
        "route": use.route,
        "remaining": use.remaining,
        "request_count": use.request_count,
        "rate_limit_enabled": use.rate_limit_max is not None or None,
        "rate_limit_max": use.rate_limit_max,
        "rate_limit_window": use.rate_limit_window,
        "permissions": {k: list(v) for k, v in use.permissions.items()}
        if use.permissions
        else None,
        "metadata": dict(use.metadata) or None,
    }
    return {k: v for k, v in data.items() if v is not None}


class ApiKeyMeteringMiddleware:
    """Raw ASGI middleware: meters each request your ``identify`` says used a verified key.

    ``identify(scope)`` (sync or async) does your verification, or reads what an earlier
    middleware stored in ``scope`` (for example ``scope["state"]``), and returns an
    `ApiKeyUse` or None (no key, or not valid: nothing is recorded). The event is sent after
    the response has finished, with the route (``METHOD path``) and the response status added,
    so metering never delays the response body. Works under any ASGI framework (Starlette,
    FastAPI, Django's ASGI handler, Quart).
    """

    def __init__(
        self,
        app: ASGIApp,
        meter: ApiKeyMeter,
        identify: Callable[[Scope], MaybeAwaitable[ApiKeyUse | None]],
    ) -> None:
        self.app = app
        self.meter = meter
        self.identify = identify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        use = await maybe_await(self.identify(scope))
        if use is None:
            await self.app(scope, receive, send)
            return
        status: list[int] = []

        async def send_and_watch(message: Message) -> None:
            if message.get("type") == "http.response.start":
                status.append(int(message.get("status", 0)))
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            await self.meter.record(_with_route(use, scope, status[0] if status else None))


def _with_route(use: ApiKeyUse, scope: Scope, status: int | None) -> ApiKeyUse:
    route = use.route or f"{scope.get('method', '')} {scope.get('path', '')}".strip()
    metadata = dict(use.metadata)
    if status is not None:
        metadata.setdefault("status", str(status))
    return replace(use, route=route, metadata=metadata)
