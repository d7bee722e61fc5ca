"""Signed test deliveries for every provider, built with this library's own scheme rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"
KAT = json.loads((FIXTURES / "_signatures" / "kat_vectors.json").read_text())
NOW = 1_800_000_000
SECRETS = {
    "stripe": "whsec_test_stripe_secret",
    "polar": "whsec_" + base64.b64encode(b"polar-test-key-0123456789abcdef").decode(),
    "razorpay": "razorpay_webhook_secret",
    "creem": "whsec_test_secret_123",
    "dodo": "whsec_" + base64.b64encode(b"dodo-test-key-0123456789abcdefgh").decode(),
    "autumn": "whsec_" + base64.b64encode(b"autumn-test-key-0123456789abcdef").decode(),
}


def fixture(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / f"{name}.json").read_bytes()


def _b64_sig(key: bytes, msg_id: str, ts: int, body: bytes) -> str:
    digest = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def sign(
    provider: str,
    body: bytes,
    *,
    secret: str | None = None,
    ts: int = NOW,
    delivery_id: str = "msg_test_1",
) -> dict[str, str]:
    """Headers of a correctly signed delivery of ``body``."""
    secret = secret or SECRETS[provider]
    if provider == "stripe":
        sig = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={ts},v1={sig}"}
    if provider in ("razorpay", "creem"):
        sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        name = "X-Razorpay-Signature" if provider == "razorpay" else "creem-signature"
        headers = {name: sig}
        if provider == "razorpay":
            headers["X-Razorpay-Event-Id"] = delivery_id
        return headers
    key = base64.b64decode(secret.removeprefix("whsec_"))
    prefix = "svix" if provider == "autumn" else "webhook"
    return {
        f"{prefix}-id": delivery_id,
        f"{prefix}-timestamp": str(ts),
        f"{prefix}-signature": _b64_sig(key, delivery_id, ts, body),
    }


def adapter(provider: str, **options: Any) -> Any:
    from openmeter_billing import providers

    cls = {
        "stripe": providers.Stripe,
        "polar": providers.Polar,
        "razorpay": providers.Razorpay,
        "creem": providers.Creem,
        "dodo": providers.Dodo,
        "autumn": providers.Autumn,
    }[provider]
    options.setdefault("webhook_secret", SECRETS[provider])
    options.setdefault("clock", lambda: float(NOW))
    return cls(**options)
