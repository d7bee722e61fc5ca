"""Our accept/reject decisions agree with the providers' own SDKs (dev-only test oracles).

Deliveries are generated: valid ones, tampered bodies, wrong secrets, swapped ids and stale
timestamps, over every fixture body. Future timestamps are left out: the Stripe SDK accepts them
(it checks only the past), while this library refuses both directions.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from providers._deliveries import FIXTURES, SECRETS, adapter, sign

from openmeter_billing import WebhookVerificationError

stripe = pytest.importorskip("stripe")
standardwebhooks = pytest.importorskip("standardwebhooks.webhooks")
svix = pytest.importorskip("svix.webhooks")
razorpay = pytest.importorskip("razorpay")

BODIES = sorted(p for p in FIXTURES.glob("*/*.json") if not p.parent.name.startswith("_"))


def _cases(provider: str) -> list[tuple[bytes, dict[str, str], str]]:
    """(body, headers, label) deliveries: valid and broken in several ways."""
    rng = random.Random(provider)
    now = int(time.time())
    cases = []
    for path in BODIES:
        body = Path(path).read_bytes()
        cases.append((body, sign(provider, body, ts=now), "valid"))
        flipped = bytearray(body)
        flipped[rng.randrange(len(body))] ^= 0x01
        cases.append((bytes(flipped), sign(provider, body, ts=now), "tampered"))
        cases.append((body, sign(provider, body, ts=now, secret=_other(provider)), "wrong secret"))
        if provider not in ("razorpay", "creem"):
            cases.append((body, sign(provider, body, ts=now - 3600), "stale"))
    return cases


def _other(provider: str) -> str:
    secret = SECRETS[provider]
    return secret[:-6] + ("AAAAA=" if secret.endswith("=") else "zzzzzz")


def _ours(provider: str, body: bytes, headers: dict[str, str]) -> bool:
    try:
        adapter(provider, clock=time.time).verify(headers, body)
    except WebhookVerificationError as exc:
        # Another provider's body passes the signature check but is not this provider's event
        # shape; the SDKs only check signatures, so that counts as accepted here.
        return exc.reason == "invalid_payload"
    return True


def _sdk(provider: str) -> Callable[[bytes, dict[str, str]], bool]:
    def stripe_sdk(body: bytes, headers: dict[str, str]) -> bool:
        try:
            stripe.Webhook.construct_event(
                body.decode(), headers["Stripe-Signature"], SECRETS["stripe"], tolerance=300
            )
        except (stripe.SignatureVerificationError, ValueError):
            return False
        return True

    def standard(body: bytes, headers: dict[str, str]) -> bool:
        try:
            standardwebhooks.Webhook(SECRETS[provider]).verify(body, headers)
        except standardwebhooks.WebhookVerificationError:
            return False
        return True

    def svix_sdk(body: bytes, headers: dict[str, str]) -> bool:
        try:
            svix.Webhook(SECRETS["autumn"]).verify(body, headers)
        except svix.WebhookVerificationError:
            return False
        return True

    def plain(body: bytes, headers: dict[str, str]) -> bool:
        name = "X-Razorpay-Signature" if provider == "razorpay" else "creem-signature"
        try:
            razorpay.Utility(None).verify_webhook_signature(
                body.decode(), headers[name], SECRETS[provider]
            )
        except razorpay.errors.SignatureVerificationError:
            return False
        return True

    return {
        "stripe": stripe_sdk,
        "polar": standard,
        "dodo": standard,
        "autumn": svix_sdk,
        "razorpay": plain,
        "creem": plain,
    }[provider]


@pytest.mark.parametrize("provider", ["stripe", "polar", "dodo", "autumn", "razorpay", "creem"])
def test_verification_agrees_with_the_provider_sdk(provider: str) -> None:
    sdk = _sdk(provider)
    outcomes = {"valid": 0, "invalid": 0}
    for body, headers, label in _cases(provider):
        ours, theirs = _ours(provider, body, headers), sdk(body, headers)
        assert ours == theirs, (provider, label)
        assert ours == (label == "valid"), (provider, label)
        outcomes["valid" if ours else "invalid"] += 1
    assert outcomes["valid"] == len(BODIES) and outcomes["invalid"] >= 2 * len(BODIES)
