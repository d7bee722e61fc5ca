"""What every resource shares: what it depends on (never the whole client) and request/response
plumbing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pydantic

from .._constants import DEFAULT_EVENT_SOURCE
from .._exceptions import APIResponseValidationError, InvalidInputError
from .._http import HTTPCore
from .._pagination import AsyncPage, PageFetcher

if TYPE_CHECKING:
    from ..cache import EntitlementCache
    from ..identity import CustomerIdStore, Identity
    from ..ingest._engine import IngestEngine
    from ..providers.base import PaymentProvider

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class ResourceDeps:
    """What resources use: the HTTP core, the identity resolvers and a few settings.

    The client builds one (and a new one for each `with_options` copy); resources never see the
    client itself, so a resource cannot reach into another's internals.
    """

    http: HTTPCore
    identity: Identity
    customer_id_store: CustomerIdStore | None = None
    event_source: str = DEFAULT_EVENT_SOURCE
    providers: Mapping[str, PaymentProvider] = field(default_factory=dict)
    ingest: Callable[[], IngestEngine] | None = None
    cache: EntitlementCache | None = None


class AsyncResource:
    """Base class of the async resources (``client.customers``, ``client.entitlements``, ...)."""

    def __init__(self, deps: ResourceDeps) -> None:
        self._deps = deps
        self._http = deps.http

    @property
    def _cache(self) -> EntitlementCache | None:
        """The client's entitlement cache (None without one): the one place resources get it."""
        return self._deps.cache

    async def _customer_path_key(self, customer: object) -> str:
        """The ``customerIdOrKey`` for a customer given as an id, a key or a principal."""
        return await self._deps.identity.customer_key(customer)


def build_input(
    model: type[ModelT], data: ModelT | Mapping[str, Any] | None = None, **fields: Any
) -> ModelT:
    """Validate a request body before any network call, naming the offending field on failure.

    ``data`` may already be the model, or a mapping in either snake_case or the API's camelCase.
    """
    if isinstance(data, model):
        return data
    payload: dict[str, Any] = dict(data or {})
    payload.update({k: v for k, v in fields.items() if v is not None})
    try:
        return model.model_validate(payload)
    except pydantic.ValidationError as exc:
        raise _input_error(model, exc) from exc


def validate_with(adapter: pydantic.TypeAdapter[T], data: Any, what: str) -> T:
    """Like `build_input` for union types (entitlement create bodies)."""
    try:
        return adapter.validate_python(data)
    except pydantic.ValidationError as exc:
        raise _input_error(what, exc) from exc


def _input_error(model: type[Any] | str, exc: pydantic.ValidationError) -> InvalidInputError:
    errors = exc.errors(include_url=False)
    first = errors[0]
    location = ".".join(str(part) for part in first["loc"])
    name = model if isinstance(model, str) else model.__name__
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']} (got {e.get('input')!r})"
        for e in errors
    )
    return InvalidInputError(
        f"invalid {name}: {problems}",
        field=location or None,
        hint="see the field's documentation in openmeter_billing.types",
    )


def parse_model(model: type[ModelT], response: httpx.Response) -> ModelT:
    """Parse a successful response into ``model``; a mismatch is an `APIResponseValidationError`."""
    body = response.json()
    try:
        return model.model_validate(body)
    except pydantic.ValidationError as exc:
        raise APIResponseValidationError(
            response, body, f"unexpected {model.__name__} from {response.request.url.path}: {exc}"
        ) from exc


def parse_with(adapter: pydantic.TypeAdapter[T], response: httpx.Response, what: str) -> T:
    """Parse a successful response with a `TypeAdapter` (lists, unions)."""
    body = response.json()
    try:
        return adapter.validate_python(body)
    except pydantic.ValidationError as exc:
        raise APIResponseValidationError(
            response, body, f"unexpected {what} from {response.request.url.path}: {exc}"
        ) from exc


def parse_page(
    response: httpx.Response, fetch: PageFetcher[T], parse_item: Callable[[Any], T]
) -> AsyncPage[T]:
    """Parse a ``{totalCount, page, pageSize, items}`` response into an `AsyncPage`."""
    body = response.json()
    try:
        items = [parse_item(item) for item in body["items"]]
        return AsyncPage(
            items=items,
            page=int(body["page"]),
            page_size=int(body["pageSize"]),
            total_count=int(body["totalCount"]),
            fetch=fetch,
        )
    except (KeyError, TypeError, ValueError, pydantic.ValidationError) as exc:
        raise APIResponseValidationError(
            response, body, f"unexpected page from {response.request.url.path}: {exc!r}"
        ) from exc


def iso(value: Any) -> str | None:
    """An aware datetime as RFC 3339 for a query parameter; None passes through."""
    if value is None:
        return None
    if getattr(value, "tzinfo", None) is None:
        raise InvalidInputError(
            f"expected a timezone-aware datetime, got {value!r}",
            field="time",
            hint="use datetime.now(timezone.utc) or attach a tzinfo",
        )
    text: str = value.isoformat()
    return text.replace("+00:00", "Z")
