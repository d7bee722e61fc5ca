"""The three webhook signature schemes, as pure functions over the exact raw bytes.

* Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]``, hex HMAC-SHA256 of ``t.body``, keyed
  with the UTF-8 bytes of the whole ``whsec_...`` secret.
* Plain HMAC (Razorpay, Creem): hex HMAC-SHA256 of the body; no timestamp is signed.
* Standard Webhooks / Svix (Polar, Dodo, Autumn): ``v1,<base64>`` HMAC-SHA256 of
  ``id.timestamp.body``, keyed with the base64-decoded part after ``whsec_``.

Every comparison is constant-time (`hmac.compare_digest`), and any of several keys may match, so a
secret can be rotated without dropping deliveries. Nothing here logs or echoes a secret.

Speed: a verification should cost little more than its one HMAC. Adapters therefore key their HMACs
once (`hmac_keys`; each delivery copies a keyed state instead of re-keying), feed the signed prefix
and the body to the HMAC separately (no copy of the body), and normalise the request headers once
per delivery (`normalise_headers`) instead of scanning them for every header they read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

from .._exceptions import WebhookVerificationError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TOLERANCE",
    "HeaderMap",
    "HmacKey",
    "check_timestamp",
    "header",
    "hmac_keys",
    "normalise_headers",
    "raw_body",
    "standard_webhooks_keys",
    "verify_hmac_hex",
    "verify_standard_webhooks",
    "verify_stripe",
]

DEFAULT_TOLERANCE = 300
DEFAULT_MAX_BODY_BYTES = 1_048_576


class HeaderMap(dict[str, str]):
    """Request headers keyed by lower-case name (the first of repeated headers wins)."""


def normalise_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> HeaderMap:
    """``headers`` (a mapping or ``(name, value)`` pairs, ``str`` or ASGI ``bytes``) as a
    `HeaderMap`, built once per delivery so every later lookup is one dict access."""
    if type(headers) is HeaderMap:
        return headers
    # dict first: the isinstance check against the Mapping ABC costs more than the whole loop.
    items = headers.items() if isinstance(headers, (dict, Mapping)) else headers
    out = HeaderMap()
    for key, value in items:
        name = (key if isinstance(key, str) else key.decode("latin-1")).lower()
        if name not in out:
            out[name] = value.decode("latin-1") if isinstance(value, bytes) else value
    return out


def header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    """The value of header ``name``, matched case-insensitively (first one wins)."""
    if type(headers) is HeaderMap:
        return headers.get(name.lower())
    return normalise_headers(headers).get(name.lower())


def require_header(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str, provider: str
) -> str:
    """Like `header`, raising a ``missing_header`` verification error when absent or empty."""
    value = header(headers, name)
    if not value:
        raise WebhookVerificationError(
            f"{provider}: the {name} header is missing",
            reason="missing_header",
            provider=provider,
        )
    return value


def raw_body(body: bytes | str, provider: str, max_bytes: int) -> bytes:
    """The body as bytes (``str`` is UTF-8 encoded), refusing bodies over ``max_bytes``."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WebhookVerificationError(
            f"{provider}: the body must be the raw request bytes or text, got "
            f"{type(body).__name__} (a parsed body cannot be verified)",
            reason="malformed",
            provider=provider,
        )
    if len(data) > max_bytes:
        raise WebhookVerificationError(
            f"{provider}: the body has {len(data)} bytes, over the {max_bytes}-byte limit "
            "(raise max_body_bytes= if your provider sends larger events)",
            reason="body_too_large",
            provider=provider,
        )
    return bytes(data)


#: An HMAC-SHA256 key: its raw bytes, or a state already keyed with them (see `hmac_keys`).
HmacKey: TypeAlias = "bytes | hmac.HMAC"


def hmac_keys(secrets: Iterable[bytes]) -> tuple[hmac.HMAC, ...]:
    """HMAC-SHA256 states keyed once per secret; each verification copies one (cheaper than
    keying again, and the key bytes need not be kept next to it)."""
    return tuple(hmac.new(secret, digestmod=hashlib.sha256) for secret in secrets)


def _digest(key: HmacKey, prefix: bytes, body: bytes) -> bytes:
    """HMAC-SHA256 of ``prefix + body`` without concatenating them (the body is not copied)."""
    mac = hmac.new(key, digestmod=hashlib.sha256) if isinstance(key, bytes) else key.copy()
    if prefix:
        mac.update(prefix)
    mac.update(body)
    return mac.digest()


def check_timestamp(timestamp: int, tolerance: float, now: float, provider: str) -> None:
    """Refuse a signed timestamp more than ``tolerance`` seconds from ``now``, either way."""
    if abs(now - timestamp) > tolerance:
        direction = "old" if timestamp < now else "in the future"
        raise WebhookVerificationError(
            f"{provider}: the signed timestamp is {abs(now - timestamp):.0f} s {direction}, "
            f"outside the {tolerance:g} s tolerance (a replay, or a clock out of sync)",
            reason="timestamp_outside_tolerance",
            provider=provider,
        )


def _parse_timestamp(value: str, provider: str) -> int:
    try:
        if not value.isascii():  # int() takes other scripts' digits; the signed bytes are ASCII
            raise ValueError(value)
        return int(value)
    except ValueError:
        raise WebhookVerificationError(
            f"{provider}: the signed timestamp is not a Unix time in seconds",
            reason="malformed",
            provider=provider,
        ) from None


def _bad_signature(provider: str) -> WebhookVerificationError:
    return WebhookVerificationError(
        f"{provider}: no signature matches the body for any configured secret (check the secret, "
        "and that the raw request body is passed, not re-serialised JSON)",
        reason="bad_signature",
        provider=provider,
    )


def verify_stripe(
    signature_header: str,
    body: bytes,
    secrets: Sequence[HmacKey],
    *,
    tolerance: float,
    now: float,
    provider: str = "stripe",
) -> int:
    """Check a ``Stripe-Signature`` header; return its timestamp.

    All ``v1`` entries are tried against all secrets; ``v0`` (a legacy test scheme) is ignored.
    """
    timestamp: str | None = None
    candidates: list[bytes] = []
    for part in signature_header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value.encode("ascii", "replace"))
    if timestamp is None or not candidates:
        raise WebhookVerificationError(
            f"{provider}: the Stripe-Signature header has no t= or no v1= entry",
            reason="malformed",
            provider=provider,
        )
    when = _parse_timestamp(timestamp, provider)
    prefix = timestamp.encode("ascii") + b"."
    matched = False
    for secret in secrets:
        expected = _digest(secret, prefix, body).hex().encode("ascii")
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise _bad_signature(provider)
    check_timestamp(when, tolerance, now, provider)
    return when


def verify_hmac_hex(
    signature: str, body: bytes, secrets: Sequence[HmacKey], *, provider: str
) -> None:
    """Check a bare hex HMAC-SHA256 of the body (Razorpay, Creem)."""
    candidate = signature.strip().lower().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        expected = _digest(secret, b"", body).hex().encode("ascii")
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise _bad_signature(provider)


def verify_standard_webhooks(
    message_id: str,
    timestamp: str,
    signature_header: str,
    body: bytes,
    keys: Sequence[HmacKey],
    *,
    tolerance: float,
    now: float,
    provider: str,
) -> int:
    """Check a Standard Webhooks (or Svix) delivery; return its timestamp.

    The signature header lists ``v1,<base64>`` entries separated by spaces; any may match.
    """
    when = _parse_timestamp(timestamp, provider)
    candidates = []
    for entry in signature_header.split():
        version, _, sig = entry.partition(",")
        if version == "v1" and sig:
            candidates.append(sig.encode("ascii", "replace"))
    if not candidates:
        raise WebhookVerificationError(
            f"{provider}: the signature header has no v1,<signature> entry",
            reason="malformed",
            provider=provider,
        )
    prefix = f"{message_id}.{timestamp}.".encode()
    matched = False
    for key in keys:
        expected = base64.b64encode(_digest(key, prefix, body))
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise _bad_signature(provider)
    check_timestamp(when, tolerance, now, provider)
    return when


def standard_webhooks_keys(secret: str, *, legacy: bool = False) -> list[bytes]:
    """The HMAC keys a Standard Webhooks secret stands for.

    Standard: base64-decode the part after ``whsec_``. With ``legacy=True`` (Polar secrets made
    before 2026-09-08) the UTF-8 bytes of the whole secret are tried first.
    """
    keys = [secret.encode("utf-8")] if legacy else []
    encoded = secret.removeprefix("whsec_")
    encoded += "=" * (-len(encoded) % 4)  # dashboards may show the secret without padding
    try:
        keys.append(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        if not legacy:
            raise ValueError("not a base64 Standard Webhooks secret ('whsec_<base64>')") from None
    return keys
