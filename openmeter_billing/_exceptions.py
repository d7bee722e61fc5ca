"""Every error this library raises, in one tree.

```
OpenMeterBillingError                  root; never raised directly
├── ConfigurationError                 a usage mistake found at construction or before any I/O
│   ├── CatalogError                   the billing catalog is invalid; .issues lists every problem
│   └── ProviderNotConfiguredError     a provider is referenced but was not injected
├── InvalidInputError (ValueError)     a call argument is wrong; .field names it, .hint says the fix
│   ├── SubjectMismatchError           an event subject belongs to another customer than `customer=`
│   └── ProviderUnsupportedError       the provider cannot do this; .hint names the alternative
├── IdentityResolutionError            no resolver accepts a principal, or a resolver failed
├── InsufficientBalanceError           a metered feature has no balance left for the usage
├── OperationInProgressError           another delivery of the same event is being applied
├── APIError                           talking to OpenMeter failed; .request, .body
│   ├── APIConnectionError             transport failure; __cause__ is the httpx error
│   │   └── APITimeoutError
│   ├── APIResponseValidationError     a 2xx body did not match the expected model
│   └── APIStatusError                 4xx/5xx; .status_code, .response, .problem
│       ├── BadRequestError            400
│       ├── AuthenticationError        401
│       ├── PermissionDeniedError      403
│       ├── NotFoundError              404
│       ├── ConflictError              409 (.conflicting_entity_id)
│       ├── PreconditionFailedError    412 (for example the customer is deleted)
│       ├── UnprocessableEntityError   422
│       ├── RateLimitError             429
│       └── InternalServerError        >= 500
├── ProviderAPIError                   a payment provider API failed; .status_code, .code
└── WebhookVerificationError (ValueError)  bad signature or stale timestamp
```

"No access" is a value (`EntitlementValue.has_access`), not an exception: exceptions are failures.
No exception message ever contains the API key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CatalogError",
    "CatalogIssue",
    "ConfigurationError",
    "ConflictError",
    "IdentityResolutionError",
    "InsufficientBalanceError",
    "InternalServerError",
    "InvalidInputError",
    "NotFoundError",
    "OpenMeterBillingError",
    "OperationInProgressError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "Problem",
    "ProviderAPIError",
    "ProviderNotConfiguredError",
    "ProviderUnsupportedError",
    "RateLimitError",
    "SubjectMismatchError",
    "UnprocessableEntityError",
    "ValidationIssue",
    "WebhookVerificationError",
    "WebhookVerificationReason",
]


def safe_repr(value: object, limit: int = 80) -> str:
    """A repr for messages that cannot fail or flood: huge ints refuse str() in Python 3.11+."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<int of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OpenMeterBillingError(Exception):
    """Root of every error raised by openmeter-billing."""


class ConfigurationError(OpenMeterBillingError):
    """The library was set up wrongly; the message names the argument and the fix."""


@dataclass(frozen=True)
class CatalogIssue:
    """One problem found in a billing catalog.

    Attributes:
        path: Where the problem is, for example ``plans.pro.entitlements.ai_tokens``.
        message: What is wrong.
        value: The offending value, when there is one.
        hint: How to fix it.
        code: A stable machine-readable code, for example ``unknown_reference``.
    """

    path: str
    message: str
    value: Any = None
    hint: str | None = None
    code: str = "invalid"

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        if self.value is not None:
            text += f" (got {safe_repr(self.value)})"
        if self.hint:
            text += f"; {self.hint}"
        return text


class CatalogError(ConfigurationError):
    """The billing catalog is invalid. ``issues`` holds every problem found, not just the first."""

    def __init__(self, issues: Sequence[CatalogIssue], message: str | None = None) -> None:
        self.issues: tuple[CatalogIssue, ...] = tuple(issues)
        if message is None:
            count = len(self.issues)
            lines = "\n".join(f"  - {issue}" for issue in self.issues)
            message = (
                f"the billing catalog has {count} problem{'s' if count != 1 else ''}:\n{lines}"
            )
        super().__init__(message)


class ProviderNotConfiguredError(ConfigurationError):
    """A payment provider is referenced but no adapter for it was injected."""


class InvalidInputError(OpenMeterBillingError, ValueError):
    """A call argument is invalid. Raised before any network call.

    Attributes:
        field: The argument or body field at fault, for example ``usage_period.interval``.
        hint: What to pass instead.
    """

    def __init__(self, message: str, *, field: str | None = None, hint: str | None = None) -> None:
        self.field = field
        self.hint = hint
        text = f"{field}: {message}" if field else message
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class SubjectMismatchError(InvalidInputError):
    """An event's explicit ``subject`` is not the subject of the ``customer`` it is ingested for.

    Usage could otherwise be charged to someone else; drop ``subject`` or make it match.
    """


class ProviderUnsupportedError(InvalidInputError):
    """The payment provider cannot do what was asked; ``hint`` names the alternative."""


class ProviderAPIError(OpenMeterBillingError):
    """A payment provider's API (checkout, portal) failed after the retries it deserved.

    Holds no request, headers or response object, so neither the API key nor a customer's
    session token can leak through a repr, a log line or a pickle.

    Attributes:
        provider: The provider name (``stripe``, ``polar``, ...).
        status_code: The HTTP status, or None when no response arrived (connection error).
        provider_message: The provider's own error message (secrets scrubbed).
        code: The provider's error code, when it sent one.
        method: The HTTP method.
        url: The URL called (no credentials are ever in it).
    """

    def __init__(
        self,
        provider: str,
        status_code: int | None,
        provider_message: str,
        *,
        code: str | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        status = f"HTTP {status_code}" if status_code is not None else "no response"
        super().__init__(f"{provider} API {method} {url} failed ({status}): {provider_message}")
        self.provider = provider
        self.status_code = status_code
        self.provider_message = provider_message
        self.code = code
        self.method = method
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_provider_error,
            (
                self.provider,
                self.status_code,
                self.provider_message,
                self.code,
                self.method,
                self.url,
            ),
        )

    @property
    def retryable(self) -> bool:
        """Whether trying again later may succeed (no response, 409, 429 or 5xx)."""
        return self.status_code is None or self.status_code in (409, 429) or self.status_code >= 500


def _rebuild_provider_error(
    provider: str, status: int | None, message: str, code: str | None, method: str, url: str
) -> ProviderAPIError:
    return ProviderAPIError(provider, status, message, code=code, method=method, url=url)


class IdentityResolutionError(OpenMeterBillingError):
    """A principal could not be mapped to an OpenMeter customer."""


class InsufficientBalanceError(OpenMeterBillingError):
    """A metered feature does not have enough balance for the requested usage."""

    def __init__(
        self,
        message: str,
        *,
        feature_key: str | None = None,
        balance: float | None = None,
        requested: float | None = None,
    ) -> None:
        self.feature_key = feature_key
        self.balance = balance
        self.requested = requested
        super().__init__(message)


class OperationInProgressError(OpenMeterBillingError):
    """Another delivery of the same billing event or top-up holds the ledger claim right now.

    Answer the webhook with a retryable status (409 or 503); the retry sees the finished result.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"{key!r} is being applied by another worker; retry shortly")


WebhookVerificationReason = Literal[
    "missing_header",
    "malformed",
    "bad_signature",
    "timestamp_outside_tolerance",
    "body_too_large",
    "invalid_payload",
]


class WebhookVerificationError(OpenMeterBillingError, ValueError):
    """A webhook's signature is missing, malformed, wrong, or its timestamp is outside tolerance.

    Attributes:
        reason: Machine-readable cause: ``missing_header``, ``malformed``, ``bad_signature``,
            ``timestamp_outside_tolerance``, ``body_too_large`` or ``invalid_payload`` (valid
            signature, but the body is not a JSON object).
        provider: The provider whose delivery failed (``stripe``, ``polar``, ...).

    The message never contains a secret or a computed signature.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: WebhookVerificationReason = "bad_signature",
        provider: str | None = None,
    ) -> None:
        self.reason: WebhookVerificationReason = reason
        self.provider = provider
        super().__init__(message)


@dataclass(frozen=True)
class ValidationIssue:
    """One entry of a problem's ``extensions.validationErrors``, parsed leniently."""

    message: str
    field: str | None = None
    code: str | None = None
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Problem:
    """An RFC 7807 problem document as OpenMeter sends it (every field optional in practice)."""

    type: str | None = None
    title: str | None = None
    status: int | None = None
    detail: str | None = None
    instance: str | None = None
    extensions: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    validation_errors: tuple[ValidationIssue, ...] = ()

    @property
    def conflicting_entity_id(self) -> str | None:
        """The id of the entity a 409 conflicts with, when OpenMeter names it."""
        value = self.extensions.get("conflictingEntityId")
        return value if isinstance(value, str) else None

    @property
    def request_id(self) -> str | None:
        """The server's request id, taken from ``instance`` (``urn:request:<id>``)."""
        if self.instance and self.instance.startswith("urn:request:"):
            return self.instance[len("urn:request:") :]
        return None


class APIError(OpenMeterBillingError):
    """A request to OpenMeter failed.

    Attributes:
        message: Human-readable description.
        request: The `httpx.Request` that failed (its Authorization header is never printed).
        body: The parsed response body, when there was one.
    """

    def __init__(self, message: str, request: httpx.Request, *, body: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (Celery results, multiprocessing): pickle them without
        # the Authorization header, and without calling __init__, whose signature varies.
        state = dict(self.__dict__)
        for name, value in state.items():
            if isinstance(value, httpx.Request):
                state[name] = _without_secrets(value)
            elif isinstance(value, httpx.Response):
                state[name] = _response_without_secrets(value)
        return (_rebuild_error, (type(self), self.args, state))


#: Request headers that carry credentials; dropped when an error is pickled.
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def _without_secrets(request: httpx.Request) -> httpx.Request:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _SECRET_HEADERS]
    try:
        content: bytes | None = request.content
    except httpx.RequestNotRead:  # a streamed body: its bytes are gone anyway
        content = None
    return httpx.Request(request.method, request.url, headers=headers, content=content)


def _response_without_secrets(response: httpx.Response) -> httpx.Response:
    try:
        content = response.content
    except httpx.ResponseNotRead:
        content = b""
    # The content is decoded already: drop the headers that would make httpx decode it again.
    headers = [
        (k, v)
        for k, v in response.headers.items()
        if k.lower() not in {"content-encoding", "transfer-encoding", "set-cookie"}
    ]
    request = _without_secrets(response.request)
    return httpx.Response(response.status_code, headers=headers, content=content, request=request)


def _rebuild_error(cls: type[APIError], args: tuple[Any, ...], state: dict[str, Any]) -> APIError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class APIConnectionError(APIError):
    """The request never got a response (DNS, refused connection, reset, ...)."""

    def __init__(self, request: httpx.Request, message: str = "Connection error.") -> None:
        super().__init__(message, request)


class APITimeoutError(APIConnectionError):
    """The request timed out."""

    def __init__(self, request: httpx.Request) -> None:
        super().__init__(request, "Request timed out.")


class APIResponseValidationError(APIError):
    """A successful response did not match the model this library expected."""

    def __init__(self, response: httpx.Response, body: object, message: str) -> None:
        super().__init__(message, response.request, body=body)
        self.response = response
        self.status_code = response.status_code


class APIStatusError(APIError):
    """OpenMeter answered with a 4xx or 5xx status.

    Attributes:
        status_code: The HTTP status.
        response: The `httpx.Response`.
        problem: The parsed problem+json document (fields missing on the wire are ``None``).
    """

    status_code: int

    def __init__(
        self, message: str, *, response: httpx.Response, body: object | None, problem: Problem
    ) -> None:
        super().__init__(message, response.request, body=body)
        self.response = response
        self.status_code = response.status_code
        self.problem = problem

    @property
    def title(self) -> str | None:
        """The problem's title, for example ``Conflict``."""
        return self.problem.title

    @property
    def detail(self) -> str | None:
        """The problem's detail message."""
        return self.problem.detail

    @property
    def validation_errors(self) -> tuple[ValidationIssue, ...]:
        """Validation errors reported by the server (400)."""
        return self.problem.validation_errors

    @property
    def conflicting_entity_id(self) -> str | None:
        """The entity a 409 conflicts with, when OpenMeter names it."""
        return self.problem.conflicting_entity_id

    @property
    def request_id(self) -> str | None:
        """The server's request id, when it sent one."""
        return self.problem.request_id or self.response.headers.get("x-request-id")


class BadRequestError(APIStatusError):
    """400: the request was invalid; see ``validation_errors``."""

    status_code: Literal[400] = 400


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""

    status_code: Literal[401] = 401


class PermissionDeniedError(APIStatusError):
    """403: the API key may not do this."""

    status_code: Literal[403] = 403


class NotFoundError(APIStatusError):
    """404: the resource does not exist (or the customer key belongs to a deleted customer)."""

    status_code: Literal[404] = 404


class ConflictError(APIStatusError):
    """409: a key, subject or active entitlement already exists. Not retried."""

    status_code: Literal[409] = 409


class PreconditionFailedError(APIStatusError):
    """412: not allowed in the resource's state (for example the customer is deleted)."""

    status_code: Literal[412] = 412


class UnprocessableEntityError(APIStatusError):
    """422: the request was well-formed but could not be processed."""

    status_code: Literal[422] = 422


class RateLimitError(APIStatusError):
    """429: too many requests; retried honouring ``Retry-After``."""

    status_code: Literal[429] = 429


class InternalServerError(APIStatusError):
    """5xx: OpenMeter failed; retried where the request is safe to repeat."""
