"""Client settings checked at construction: a wrong setting fails at once, with the fix, instead
of as an odd error (or a leaked key) on the first request."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import httpx

from ._constants import CLOUD_HOSTS, DEFAULT_BASE_URL, ENV_ENDPOINT, ENV_TOKEN
from ._exceptions import ConfigurationError, safe_repr

if TYPE_CHECKING:
    from ._http import HTTPOptions

__all__ = ["check_http_options", "is_loopback", "resolve_connection"]

#: Characters that would end a header line (header injection) or that no header may carry.
_FORBIDDEN_IN_HEADERS = frozenset("\r\n\0")
#: RFC 9110 token characters, the only ones allowed in a header name.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
MAX_RETRIES_LIMIT = 100


def resolve_connection(api_key: object, base_url: object) -> tuple[str | None, httpx.URL]:
    """API key and base URL: the arguments, then ``OPENMETER_TOKEN``/``OPENMETER_ENDPOINT``."""
    key = _check_api_key(api_key if api_key is not None else os.environ.get(ENV_TOKEN) or None)
    raw_url = base_url or os.environ.get(ENV_ENDPOINT) or DEFAULT_BASE_URL
    if not isinstance(raw_url, (str, httpx.URL)):
        raise ConfigurationError(
            f"base_url must be a str or httpx.URL, got {type(raw_url).__name__}; "
            "for example 'https://openmeter.cloud'"
        )
    try:
        url = httpx.URL(str(raw_url))
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"base_url {str(raw_url)!r} is not a valid URL: {exc}") from exc
    if key is None and url.host in CLOUD_HOSTS:
        raise ConfigurationError(
            f"OpenMeter Cloud ({url.host}) needs an API token: pass api_key=... or set "
            f"the {ENV_TOKEN} environment variable (self-hosted OpenMeter: pass base_url=)"
        )
    return key, url


def _check_api_key(key: object) -> str | None:
    if key is None or key == "":
        return None
    if not isinstance(key, str):
        decode = " (decode it first: key.decode())" if isinstance(key, bytes) else ""
        raise ConfigurationError(f"api_key must be a str, got {type(key).__name__}{decode}")
    if key != key.strip() or any(ch in _FORBIDDEN_IN_HEADERS or not ch.isprintable() for ch in key):
        raise ConfigurationError(
            "api_key contains whitespace or control characters (a line break or a stray space "
            "from a file or an environment variable?); pass the token alone, e.g. key.strip()"
        )
    return key


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine: ``localhost`` exactly, or a loopback IP address.

    Parsed, not prefix-matched: ``127.evil.example`` and ``127.0.0.1.nip.io`` are remote hosts.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_http_options(options: HTTPOptions) -> None:
    """Every rule on the connection settings (constructor and `with_options` alike)."""
    _check_max_retries(options.max_retries)
    _check_timeout(options.timeout)
    _check_headers(options.default_headers)
    _check_url(options.base_url, options.api_key is not None, options.allow_insecure_http)


def _check_max_retries(value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(
            f"max_retries must be an int, got {type(value).__name__} {safe_repr(value)}; "
            "for example max_retries=3"
        )
    if not 0 <= value <= MAX_RETRIES_LIMIT:
        raise ConfigurationError(
            f"max_retries must be between 0 and {MAX_RETRIES_LIMIT}, got {value}; "
            "0 turns retries off"
        )


def _check_timeout(timeout: httpx.Timeout) -> None:
    for name in ("connect", "read", "write", "pool"):
        value = getattr(timeout, name)
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ConfigurationError(
                f"timeout ({name}) must be a positive number of seconds or None (wait forever), "
                f"got {safe_repr(value)}; for example timeout=30 or httpx.Timeout(30, connect=5)"
            )


def _check_headers(headers: Mapping[str, str]) -> None:
    # Typed str, but callers pass what their config holds: check the runtime types too.
    items: list[tuple[object, object]] = list(headers.items())
    for name, value in items:
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
            raise ConfigurationError(
                f"default_headers: {safe_repr(name)} is not a valid header name; use letters, "
                "digits and '-', e.g. 'X-Request-Source'"
            )
        if name.lower() == "authorization":
            raise ConfigurationError(
                "default_headers may not set Authorization; pass api_key= instead"
            )
        if not isinstance(value, str) or any(ch in _FORBIDDEN_IN_HEADERS for ch in value):
            raise ConfigurationError(
                f"default_headers[{name!r}] must be a str without line breaks or NUL "
                f"(got {type(value).__name__}); a line break would inject another header"
            )


def _check_url(url: httpx.URL, has_key: bool, allow_insecure_http: bool) -> None:
    scheme, host = url.scheme, url.host
    if scheme not in {"http", "https"}:
        raise ConfigurationError(
            f"base_url must be an http(s) URL, got scheme {scheme!r}; "
            "for example https://openmeter.cloud or http://127.0.0.1:8888"
        )
    if not host:
        raise ConfigurationError(
            f"base_url {str(url)!r} has no host; for example https://openmeter.cloud or "
            "http://127.0.0.1:8888"
        )
    if has_key and scheme == "http" and not is_loopback(host) and not allow_insecure_http:
        raise ConfigurationError(
            f"refusing to send the API key over plain HTTP to {host!r}; use https, a loopback "
            "address (localhost, 127.0.0.1, ::1), or pass allow_insecure_http=True if the "
            "network is trusted"
        )
