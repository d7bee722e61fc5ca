"""The three webhook signature schemes, as pure functions over the exact raw bytes.

* Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]``, hex HMAC-SHA256 of ``t.body``, keyed
  with the UTF-8 bytes of the whole ``whsec_...`` secret.
* Plain HMAC (Razorpay, Creem): hex HMAC-SHA256 of the body; no timestamp is signed.
* Standard Webhooks / Svix (Polar, Dodo, Autumn): ``v1,<base64>`` HMAC-SHA256 of
  ``id.timestamp.body``, keyed with the base64-decoded part after ``whsec_``.

Every comparison is constant-time (`hmac.compare_digest`), and any of several keys may match, so a
secret can be rotated without dropping deliveries. Nothing here logs or echoes a secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

from .._exceptions import WebhookVerificationError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TOLERANCE",
    "check_timestamp",
    "header",
    "raw_body",
    "standard_webhooks_keys",
    "verify_hmac_hex",
    "verify_standard_webhooks",
    "verify_stripe",
]

DEFAULT_TOLERANCE = 300
DEFAULT_MAX_BODY_BYTES = 1_048_576


def header(headers: Mapping[str, str] | Iterable[tuple[str, str]], name: str) -> str | None:
    """The value of header ``name``, matched case-insensitively (first one wins)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    for key, value in items:
        key_text = key.decode("latin-1") if isinstance(key, bytes) else key
        if key_text.lower() == wanted:
            return value.decode("latin-1") if isinstance(value, bytes) else value
    return None


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
    secrets: Sequence[bytes],
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
    signed = timestamp.encode("ascii") + b"." + body
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, signed, hashlib.sha256).hexdigest().encode("ascii")
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise _bad_signature(provider)
    check_timestamp(when, tolerance, now, provider)
    return when


def verify_hmac_hex(
    signature: str, body: bytes, secrets: Sequence[bytes], *, provider: str
) -> None:
    """Check a bare hex HMAC-SHA256 of the body (Razorpay, Creem)."""
    candidate = signature.strip().lower().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode("ascii")
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise _bad_signature(provider)


def verify_standard_webhooks(
    message_id: str,
    timestamp: str,
    signature_header: str,
    body: bytes,
    keys: Sequence[bytes],
    *,
    tolerance: float,
    now: float,
    provider: str,
) -> int:
    """Check a Standard Webhooks (or Svix) delivery; return its timestamp.

    The signature header lists ``v1,<base64>`` entries separated by spaces; any may match.
    """
    when = _parse_timestamp(timestamp, provider)
    candidates = [
        sig.encode("ascii", "replace")
        for version, _, sig in (entry.partition(",") for entry in signature_header.split())
        if version == "v1" and sig
    ]
    if not candidates:
        raise WebhookVerificationError(
            f"{provider}: the signature header has no v1,<signature> entry",
            reason="malformed",
            provider=provider,
        )
    signed = f"{message_id}.{timestamp}.".encode() + body
    matched = False
    for key in keys:
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
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
