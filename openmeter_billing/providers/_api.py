"""Calls to a payment provider's own API (checkout and portal links): the I/O edge of providers.

One small client per provider call site: the provider's auth header, JSON or form bodies, an
idempotency key that stays the same across retries, retries of what may succeed later (no
response, 409, 429, 5xx; ``Retry-After`` honoured), and `ProviderAPIError` with the provider's
own message and never a secret. Webhook verification and mapping stay pure elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import httpx

from .._exceptions import ProviderAPIError
from .._version import __version__

__all__ = ["ProviderAPI", "form_fields"]

logger = logging.getLogger("openmeter_billing")

#: Seconds before the first retry (doubled each time, with jitter); tests set it to 0.
BACKOFF_BASE = 0.5
_MAX_BACKOFF = 8.0
_RETRY_STATUSES = frozenset({409, 429})


class ProviderAPI:
    """Authenticated JSON/form requests to one provider's API, retried safely.

    Args:
        provider: The provider name, for errors and logs.
        base_url: The API root (``https://api.stripe.com``), from the adapter's ``base_url=``.
        auth: Returns the auth headers at call time, so the key is held by the adapter only.
        secrets: Values scrubbed from any provider message that echoes them.
        idempotency_header: The header the provider honours for idempotent retries, if any.
    """

    def __init__(
        self,
        provider: str,
        base_url: str,
        auth: Callable[[], Mapping[str, str]],
        *,
        secrets: Callable[[], Sequence[str]] = tuple,
        idempotency_header: str | None = None,
        max_retries: int = 2,
        timeout: float = 30.0,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._secrets = secrets
        self.idempotency_header = idempotency_header
        self.max_retries = max_retries
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"ProviderAPI({self.provider!r}, base_url={self.base_url!r})"

    async def post(
        self,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        form: Sequence[tuple[str, str]] | None = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """POST and return the JSON object answered; raise `ProviderAPIError` otherwise.

        The same ``idempotency_key`` is sent on every attempt, so a retry after a lost response
        cannot create a second session where the provider supports idempotency.
        """
        url = f"{self.base_url}/{path.lstrip('/')}"
        headers = {"User-Agent": f"openmeter-billing/{__version__}", **self._auth()}
        if idempotency_key and self.idempotency_header:
            headers[self.idempotency_header] = idempotency_key
        content: bytes | None = None
        if form is not None:
            content = str(httpx.QueryParams(list(form))).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            for attempt in range(self.max_retries + 1):
                last = attempt == self.max_retries
                try:
                    response = await http.post(
                        url, json=json, content=content, params=params, headers=headers
                    )
                except httpx.TransportError as exc:
                    if last:
                        raise ProviderAPIError(
                            self.provider,
                            None,
                            f"{type(exc).__name__}: no response",
                            method="POST",
                            url=url,
                        ) from None
                    await self._sleep(attempt, None)
                    continue
                if response.is_success:
                    return self._json(response, url)
                if last or not _retryable(response.status_code):
                    raise self._error(response, url)
                logger.info(
                    "%s API answered %s; retrying (attempt %s)",
                    self.provider,
                    response.status_code,
                    attempt + 1,
                )
                await self._sleep(attempt, response.headers.get("retry-after"))
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, response: httpx.Response, url: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ProviderAPIError(
                self.provider,
                response.status_code,
                "the answer is not a JSON object",
                method="POST",
                url=url,
            )
        return body

    def _error(self, response: httpx.Response, url: str) -> ProviderAPIError:
        try:
            body: object = response.json()
        except ValueError:
            body = response.text[:300]
        message, code = provider_message(body)
        for secret in self._secrets():
            if secret:
                message = message.replace(secret, "***")
        return ProviderAPIError(
            self.provider,
            response.status_code,
            message or response.reason_phrase,
            code=code,
            method="POST",
            url=url,
        )

    async def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = min(_MAX_BACKOFF, BACKOFF_BASE * 2**attempt) * (0.5 + random.random() / 2)  # noqa: S311
        if retry_after is not None:
            with contextlib.suppress(ValueError):
                delay = min(_MAX_BACKOFF, max(delay, float(retry_after)))
        await anyio.sleep(delay if BACKOFF_BASE > 0 else 0)


def _retryable(status: int) -> bool:
    return status in _RETRY_STATUSES or status >= 500


def provider_message(body: object) -> tuple[str, str | None]:
    """The error message and code in any of the six providers' error shapes."""
    if isinstance(body, str):
        return body, None
    if not isinstance(body, dict):
        return "", None
    error = body.get("error")
    if isinstance(error, dict):  # Stripe {error: {message, code}}, Razorpay {error: {description}}
        message = error.get("message") or error.get("description") or ""
        return str(message), _code(error.get("code") or error.get("type"))
    detail = body.get("detail")
    if isinstance(detail, list):  # Polar / FastAPI validation errors
        detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
    message = body.get("message")
    if isinstance(message, list):  # Creem lists validation messages
        message = "; ".join(str(m) for m in message)
    text = message or detail or (error if isinstance(error, str) else "") or ""
    return str(text), _code(body.get("code") or body.get("type") or body.get("error_code"))


def _code(value: object) -> str | None:
    return str(value) if isinstance(value, (str, int)) and value != "" else None


def form_fields(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: ``{"a": {"b": [1]}}`` -> ``[("a[b][0]", "1")]``; None is skipped."""
    fields: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            fields.extend(form_fields(value, name))
        elif isinstance(value, (list, tuple)):
            fields.extend(form_fields({str(i): v for i, v in enumerate(value)}, name))
        elif isinstance(value, bool):
            fields.append((name, "true" if value else "false"))
        else:
            fields.append((name, str(value)))
    return fields
