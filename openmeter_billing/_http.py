"""The one place that talks HTTP: auth, headers, retries with backoff, timeouts, errors.

Resources build a path and a body and call `HTTPCore.request`; nothing else touches httpx.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypeAlias
from urllib.parse import quote

import anyio
import httpx

from ._constants import (
    INITIAL_RETRY_DELAY,
    LOOPBACK_HOSTS,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
)
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    Problem,
    RateLimitError,
    UnprocessableEntityError,
    ValidationIssue,
)
from ._runtime import Runtime
from ._types import NOT_GIVEN, NotGiven, TimeoutTypes
from ._version import __version__

__all__ = ["HTTPCore", "HTTPOptions", "encode_path"]

logger = logging.getLogger("openmeter_billing")

QueryValue: TypeAlias = str | int | float | bool | Sequence[str | int | float] | None
Query: TypeAlias = Mapping[str, QueryValue]

USER_AGENT = f"openmeter-billing/{__version__}"
JSON = "application/json"

#: Methods whose repetition is harmless. POST is retried only when the caller says it is guarded.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Statuses worth another attempt. Not 409: in OpenMeter it is a conflicting key that no
#: retry can fix.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


class _Secret:
    """Holds the API key so that no repr, log line or traceback local shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"


@dataclass(frozen=True)
class HTTPOptions:
    """Per-client settings; `HTTPCore.with_options` derives a copy for per-call overrides."""

    base_url: httpx.URL
    api_key: _Secret | None
    timeout: httpx.Timeout
    max_retries: int
    default_headers: Mapping[str, str] = field(default_factory=dict)
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {self.max_retries}")
        for name in self.default_headers:
            if name.lower() == "authorization":
                raise ConfigurationError(
                    "default_headers may not set Authorization; pass api_key= instead"
                )
        scheme, host = self.base_url.scheme, self.base_url.host
        if scheme not in {"http", "https"}:
            raise ConfigurationError(
                f"base_url must be an http(s) URL, got scheme {scheme!r}; "
                "for example https://openmeter.cloud or http://127.0.0.1:8888"
            )
        if (
            self.api_key is not None
            and scheme == "http"
            and host not in LOOPBACK_HOSTS
            and not host.startswith("127.")
            and not self.allow_insecure_http
        ):
            raise ConfigurationError(
                f"refusing to send the API key over plain HTTP to {host!r}; use https, a loopback "
                "address, or pass allow_insecure_http=True if the network is trusted"
            )


def encode_path(template: str, *params: str) -> str:
    """Fill ``{}`` placeholders with percent-encoded values (customer keys are arbitrary strings).

    An empty value is refused: it would silently address a different endpoint.
    """
    encoded: list[str] = []
    for value in params:
        candidate: object = value  # typed str, but callers pass whatever their data holds
        if not isinstance(candidate, str) or not candidate:
            raise InvalidInputError(
                f"expected a non-empty string path parameter, got {value!r}",
                field="path",
                hint=f"check the id or key you pass for {template!r}",
            )
        encoded.append(quote(value, safe=""))
    return template.format(*encoded)


def _to_timeout(value: TimeoutTypes) -> httpx.Timeout:
    return value if isinstance(value, httpx.Timeout) else httpx.Timeout(value)


_QueryPairs: TypeAlias = list[tuple[str, str | int | float | bool | None]]


def _clean_query(params: Query | None) -> _QueryPairs:
    """Drop None values, repeat keys for lists (the spec's form/explode style), JSON-ify bools."""
    pairs: _QueryPairs = []
    for key, value in (params or {}).items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, bool):
                pairs.append((key, "true" if item else "false"))
            else:
                pairs.append((key, str(item)))
    return pairs


class ServerClock:
    """OpenMeter's time, from the ``Date`` header of its last response plus the time since.

    Grants need an ``effectiveAt`` that is "now" by the server's clock: this machine's may be off,
    and Local OpenMeter's is set by tests. Until a response arrives, this machine's clock is used.
    """

    def __init__(self) -> None:
        self._header: str | None = None
        self._seen: tuple[datetime, float] | None = None

    def observe(self, header: str | None) -> None:
        """Remember the time in a ``Date`` header (parsed only when it changed: once a second)."""
        if header is None or header == self._header:
            return
        try:
            parsed = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return
        if parsed.tzinfo is None:
            return
        self._header = header
        self._seen = (parsed.astimezone(timezone.utc), time.monotonic())

    def now(self) -> datetime:
        """The server's current time, to about a second."""
        if self._seen is None:
            return datetime.now(timezone.utc)
        seen, at = self._seen
        return seen + timedelta(seconds=time.monotonic() - at)


class HTTPCore:
    """Sends requests to OpenMeter with auth, retries and error mapping.

    Args:
        options: Connection settings.
        runtime: Hands out the connection pool of the running event loop and process (shared
            by copies made with `with_options`).
    """

    def __init__(
        self,
        options: HTTPOptions,
        runtime: Runtime,
        server_clock: ServerClock | None = None,
    ) -> None:
        self.options = options
        self.runtime = runtime
        self.server_clock = server_clock or ServerClock()
        self._headers = self._build_headers(options)
        base = options.base_url.copy_with(query=None, fragment=None)
        self._url_prefix = str(base).rstrip("/")  # paths arrive encoded and start with "/"

    def __repr__(self) -> str:
        return f"<HTTPCore base_url={str(self.options.base_url)!r}>"

    @staticmethod
    def _build_headers(options: HTTPOptions) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT, "Accept": f"{JSON}, application/problem+json"}
        headers.update(options.default_headers)
        if options.api_key is not None:
            headers["Authorization"] = f"Bearer {options.api_key.reveal()}"
        return headers

    def with_options(
        self,
        *,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> HTTPCore:
        """A copy with overrides that shares the connection pool."""
        changes: dict[str, Any] = {}
        if not isinstance(timeout, NotGiven):
            changes["timeout"] = _to_timeout(timeout)
        if max_retries is not None:
            changes["max_retries"] = max_retries
        if default_headers is not None:
            changes["default_headers"] = {**self.options.default_headers, **default_headers}
        return HTTPCore(replace(self.options, **changes), self.runtime, self.server_clock)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Query | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        idempotent: bool | None = None,
        max_retries: int | None = None,
    ) -> httpx.Response:
        """Send one logical request, retrying where that is safe; raise `APIError` on failure.

        Args:
            idempotent: Whether repeating the request is harmless. Defaults to True for GET, PUT
                and DELETE; a POST is retried on server errors only when the caller passes True
                (event ingest, whose events carry ids OpenMeter deduplicates on).
        """
        method = method.upper()
        client = self.runtime.http_client()
        request = self._build_request(
            client, method, path, params, json_body, content, content_type, headers, timeout
        )
        safe = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        retries = self.options.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            response = await self._send_once(client, request, attempt, retries, safe)
            if response is None:  # a retryable transport failure; _send_once slept already
                attempt += 1
                continue
            if response.is_success:
                return response
            if attempt < retries and self._should_retry_status(response.status_code, safe):
                delay = self._retry_delay(attempt, response)
                self._log_retry(request, attempt, retries, delay, f"HTTP {response.status_code}")
                await response.aclose()
                await self._sleep(delay)
                attempt += 1
                continue
            await response.aread()
            raise make_status_error(response)

    def _build_request(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        params: Query | None,
        json_body: Any,
        content: bytes | None,
        content_type: str | None,
        headers: Mapping[str, str] | None,
        timeout: TimeoutTypes | NotGiven,
    ) -> httpx.Request:
        merged = dict(self._headers)
        if headers:
            merged.update(headers)
        if json_body is not None:
            content = json.dumps(json_body, separators=(",", ":"), ensure_ascii=False).encode()
            content_type = content_type or JSON
        if content_type:
            merged["Content-Type"] = content_type
        effective = self.options.timeout if isinstance(timeout, NotGiven) else _to_timeout(timeout)
        # One URL parse per request: an absolute URL with its query passes through httpx's
        # build_request and Request untouched (a relative path and params= would parse 3 times).
        query = _clean_query(params)
        url = (
            httpx.URL(self._url_prefix + path, params=query)
            if query
            else httpx.URL(self._url_prefix + path)
        )
        return client.build_request(method, url, content=content, headers=merged, timeout=effective)

    async def _send_once(
        self,
        client: httpx.AsyncClient,
        request: httpx.Request,
        attempt: int,
        retries: int,
        safe: bool,
    ) -> httpx.Response | None:
        """One attempt. Returns None after sleeping when a transport failure may be retried."""
        started = time.perf_counter()
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:
            # A connect failure means the request never left: safe to repeat for any method.
            never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            if attempt < retries and (safe or never_sent):
                delay = self._retry_delay(attempt, None)
                self._log_retry(request, attempt, retries, delay, type(exc).__name__)
                await self._sleep(delay)
                return None
            if isinstance(exc, httpx.TimeoutException):
                raise APITimeoutError(request) from exc
            raise APIConnectionError(request, f"Connection error: {type(exc).__name__}") from exc
        logger.debug(
            "%s %s -> %d (%.1f ms)",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        self.server_clock.observe(response.headers.get("date"))
        if response.is_success:
            await response.aread()
        return response

    @staticmethod
    def _should_retry_status(status: int, safe: bool) -> bool:
        if status == 429:  # rejected before any work was done: safe for every method
            return True
        return safe and status in RETRYABLE_STATUSES

    def _retry_delay(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds to wait before retry number ``attempt + 1``.

        A server's ``Retry-After`` (seconds or an HTTP date, up to 60 s) wins; otherwise
        exponential backoff 0.5 s, 1 s, 2 s ... capped at 8 s, with up to 25 % jitter.
        """
        if response is not None:
            hinted = parse_retry_after(response.headers)
            if hinted is not None:
                return hinted
        base = min(INITIAL_RETRY_DELAY * 2.0**attempt, MAX_RETRY_DELAY)
        return base * (1.0 - 0.25 * random.random())  # noqa: S311 - jitter, not crypto

    # Patched by tests to observe delays without waiting.
    _sleep = staticmethod(anyio.sleep)

    @staticmethod
    def _log_retry(
        request: httpx.Request, attempt: int, retries: int, delay: float, reason: str
    ) -> None:
        logger.info(
            "retrying %s %s in %.2f s (retry %d of %d) after %s",
            request.method,
            request.url.path,
            delay,
            attempt + 1,
            retries,
            reason,
        )


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), if usable."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            seconds = float(raw_ms) / 1000.0
        except ValueError:
            seconds = -1.0
        if 0 <= seconds <= MAX_RETRY_AFTER:
            return seconds
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = parsed.timestamp() - time.time()
    return seconds if 0 <= seconds <= MAX_RETRY_AFTER else None


def _parse_body(response: httpx.Response) -> object | None:
    if not response.content:
        return None
    try:
        body: object = response.json()
    except ValueError:
        return response.text
    return body


def parse_problem(body: object) -> Problem:
    """Read an RFC 7807 document leniently: any field may be missing or of an odd type."""
    if not isinstance(body, Mapping):
        return Problem(detail=body if isinstance(body, str) and body else None)

    def text(name: str) -> str | None:
        value = body.get(name)
        return value if isinstance(value, str) and value else None

    extensions = body.get("extensions")
    extensions = extensions if isinstance(extensions, Mapping) else {}
    raw_status = body.get("status")
    return Problem(
        type=text("type"),
        title=text("title"),
        status=raw_status if isinstance(raw_status, int) else None,
        detail=text("detail"),
        instance=text("instance"),
        extensions=dict(extensions),
        validation_errors=_parse_validation_errors(extensions.get("validationErrors")),
    )


def _parse_validation_errors(raw: object) -> tuple[ValidationIssue, ...]:
    if not isinstance(raw, list):
        return ()
    issues: list[ValidationIssue] = []
    for item in raw:
        if isinstance(item, Mapping):
            message = item.get("message")
            field_name = item.get("field")
            code = item.get("code")
            issues.append(
                ValidationIssue(
                    message=str(message) if message is not None else json.dumps(item),
                    field=str(field_name) if field_name is not None else None,
                    code=str(code) if code is not None else None,
                    raw=dict(item),
                )
            )
        else:
            issues.append(ValidationIssue(message=str(item)))
    return tuple(issues)


def make_status_error(response: httpx.Response) -> APIStatusError:
    """Map a 4xx/5xx response to its exception class (one table: `STATUS_ERRORS`)."""
    body = _parse_body(response)
    problem = parse_problem(body)
    status = response.status_code
    cls = STATUS_ERRORS.get(status) or (InternalServerError if status >= 500 else APIStatusError)
    title = problem.title or response.reason_phrase or "Error"
    message = f"{status} {title}"
    if problem.detail:
        message += f": {problem.detail}"
    if problem.validation_errors:
        details = "; ".join(
            f"{issue.field}: {issue.message}" if issue.field else issue.message
            for issue in problem.validation_errors
        )
        message += f" [{details}]"
    message += f" ({response.request.method} {response.request.url.path})"
    return cls(message, response=response, body=body, problem=problem)
