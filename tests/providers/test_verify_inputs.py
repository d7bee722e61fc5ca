"""Verification over what servers really hand over: ASGI byte headers, repeated headers, bodies
in other Unicode encodings, odd timestamps, and one adapter shared by many threads."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from providers._deliveries import NOW, SECRETS, adapter, fixture, sign

from openmeter_billing import WebhookVerificationError

PROVIDERS = ["stripe", "polar", "razorpay", "creem", "dodo", "autumn"]
BODY = {
    "stripe": fixture("stripe", "customer.subscription.created"),
    "polar": fixture("polar", "subscription.created"),
    "razorpay": fixture("razorpay", "subscription.activated"),
    "creem": fixture("creem", "subscription.paid"),
    "dodo": fixture("dodo", "subscription.active"),
    "autumn": fixture("autumn", "billing.updated"),
}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_asgi_byte_header_pairs_verify_like_a_dict(provider: str) -> None:
    body = BODY[provider]
    headers = sign(provider, body)
    raw = [(b"Content-Type", b"application/json")]
    raw += [(k.title().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    a = adapter(provider)
    assert a.verify(raw, body) == a.verify(headers, body)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_first_of_repeated_signature_headers_is_the_one_checked(provider: str) -> None:
    body = BODY[provider]
    good = list(sign(provider, body).items())
    forged = [(k.upper(), "0" * 64 if "signature" in k.lower() else v) for k, v in good]
    a = adapter(provider)
    a.verify(good + forged, body)
    with pytest.raises(WebhookVerificationError) as info:
        a.verify(forged + good, body)
    assert info.value.reason in ("bad_signature", "malformed")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32-le"])
def test_signed_json_in_another_unicode_encoding_parses_as_json_loads_would(
    encoding: str,
) -> None:
    text = BODY["stripe"].decode()
    body = text.encode(encoding)
    event = adapter("stripe").verify(sign("stripe", body), body)
    assert event.payload == json.loads(text)


def test_signed_body_that_is_not_unicode_is_invalid_payload() -> None:
    body = b'{"id": "evt_1", "type": "x\xff"}'
    with pytest.raises(WebhookVerificationError) as info:
        adapter("stripe").verify(sign("stripe", body), body)
    assert info.value.reason == "invalid_payload"


@pytest.mark.parametrize("provider", ["stripe", "dodo"])
def test_a_timestamp_in_non_ascii_digits_is_malformed_not_a_crash(provider: str) -> None:
    body = BODY[provider]
    headers = sign(provider, body)
    arabic = str(NOW).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    if provider == "stripe":
        headers["Stripe-Signature"] = headers["Stripe-Signature"].replace(str(NOW), arabic)
    else:
        headers["webhook-timestamp"] = arabic
    with pytest.raises(WebhookVerificationError) as info:
        adapter(provider).verify(headers, body)
    assert info.value.reason == "malformed"


@pytest.mark.parametrize("provider", ["stripe", "razorpay", "dodo"])
def test_one_adapter_verifies_from_many_threads_with_rotated_secrets(provider: str) -> None:
    """The keyed HMAC states are copied per delivery, never updated in place."""
    body = BODY[provider]
    new_secret = SECRETS[provider][:-4] + ("AAA=" if SECRETS[provider].endswith("=") else "zzzz")
    a = adapter(provider, webhook_secret=[new_secret, SECRETS[provider]])
    deliveries = [
        (sign(provider, body, secret=secret), body, ok)
        for secret in (SECRETS[provider], new_secret)
        for ok in (True, False)
    ] * 50

    def check(delivery: tuple[dict[str, str], bytes, bool]) -> bool:
        headers, data, ok = delivery
        try:
            a.verify(headers, data if ok else data.replace(b"a", b"c", 1))
        except WebhookVerificationError as exc:
            return not ok and exc.reason == "bad_signature"
        return ok

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(check, deliveries))
