"""Webhook benchmark: signature verification per scheme, and ``handle()`` end to end.

What it answers: is verifying a delivery cheap enough to never matter (goal: >= 20,000
verifications/s and p99 <= 100 us for a 4 KB body), and what does ``client.webhooks.handle``
cost on top of applying the same billing event directly?

Verification, per scheme, in ONE run, interleaved per repetition:

- ``verify``: the adapter's public ``provider.verify(headers, body)`` (header lookup, signature,
  timestamp check, JSON parse of the 4 KB body, delivery id): what a handler pays, since it
  returns the parsed event; its floor is ``baseline+parse``;
- ``signature only``: the same adapter's signature check without the JSON (headers normalised,
  HMAC, constant-time compare, timestamp): verification proper; its floor is ``baseline``;
- ``baseline``: the least any verifier must do on the same bytes: one HMAC-SHA256 over the
  scheme's signed content, encoded as the scheme encodes it, and ``hmac.compare_digest``;
- ``baseline+parse``: the baseline plus ``json.loads`` of the body, which every handler needs.

``vs floor`` is a mode's median ops/s divided by its floor's (1.00 = no overhead of ours).
Schemes: Stripe (``t=,v1=`` hex), plain HMAC hex over the body (Razorpay; Creem is the same
function), Standard Webhooks (Dodo; Polar and Autumn use the same function with other key
derivations / header names).

End to end, on Local OpenMeter in process (``transport=local``, no sockets):

- ``handle (new)``: a freshly signed ``customer.subscription.updated`` per call (new ``evt_`` id):
  verify, map, ledger claim, ``billing.apply_event``, ledger record;
- ``handle (duplicate)``: the same delivery again (verify, map, ledger says done);
- ``apply_event``: the same billing event applied directly (the baseline of ``vs apply_event``).

Run: ``python benchmarks/webhooks.py [--calls 5000] [--handle-calls 200] [--repeat 5] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from openmeter_billing.billing.events import BillingEvent
from openmeter_billing.catalog import (
    Feature,
    Meter,
    MeteredEntitlement,
    Plan,
    Price,
    define_catalog,
)
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.providers import Dodo, Razorpay, Stripe
from openmeter_billing.providers._adapter import ProviderAdapter
from openmeter_billing.providers.signatures import normalise_headers

BODY_BYTES = 4096
NOW = 1_800_000_000
STRIPE_SECRET = "whsec_bench_stripe_secret"
HMAC_SECRET = "bench_razorpay_webhook_secret"
STANDARD_SECRET = "whsec_" + base64.b64encode(b"bench-dodo-key-0123456789abcdef").decode()


def padded_body(kind: str) -> bytes:
    """A JSON object of exactly BODY_BYTES bytes that the provider's verify accepts."""
    payload: dict[str, Any] = {"id": "evt_bench_1", "type": kind, "created": NOW, "data": {}}
    payload["data"]["object"] = {"id": "obj_1", "padding": ""}
    bare = len(json.dumps(payload).encode())
    payload["data"]["object"]["padding"] = "x" * (BODY_BYTES - bare)
    body = json.dumps(payload).encode()
    assert len(body) == BODY_BYTES, len(body)
    return body


@dataclass
class Scheme:
    """One signature scheme: the adapter's verify and the bare-HMAC baseline, same bytes."""

    name: str
    verify: Callable[[], object]
    baseline: Callable[[], object]
    body: bytes
    signature: Callable[[], object]


def signature_only(adapter: ProviderAdapter, headers: dict[str, str], body: bytes) -> object:
    """The adapter's verification minus the JSON: what ``verify`` does before it parses."""
    return adapter._check_signature(normalise_headers(headers), body, adapter._clock())


def stripe_scheme() -> Scheme:
    body = padded_body("customer.subscription.updated")
    signed = f"{NOW}.".encode() + body
    sig = hmac.new(STRIPE_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    headers = {"Stripe-Signature": f"t={NOW},v1={sig}"}
    adapter = Stripe(webhook_secret=STRIPE_SECRET, clock=lambda: float(NOW))
    key, expected = STRIPE_SECRET.encode(), sig.encode()

    def baseline() -> bool:
        computed = hmac.new(key, signed, hashlib.sha256).hexdigest().encode()
        return hmac.compare_digest(computed, expected)

    return Scheme(
        "stripe (t=,v1= hex)",
        lambda: adapter.verify(headers, body),
        baseline,
        body,
        lambda: signature_only(adapter, headers, body),
    )


def hmac_scheme() -> Scheme:
    body = padded_body("payment.captured")
    sig = hmac.new(HMAC_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Razorpay-Signature": sig, "X-Razorpay-Event-Id": "evt_bench_1"}
    adapter = Razorpay(webhook_secret=HMAC_SECRET)
    key, expected = HMAC_SECRET.encode(), sig.encode()

    def baseline() -> bool:
        computed = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
        return hmac.compare_digest(computed, expected)

    return Scheme(
        "plain HMAC hex (razorpay, creem)",
        lambda: adapter.verify(headers, body),
        baseline,
        body,
        lambda: signature_only(adapter, headers, body),
    )


def standard_scheme() -> Scheme:
    body = padded_body("subscription.active")
    key = base64.b64decode(STANDARD_SECRET.removeprefix("whsec_"))
    signed = f"msg_bench_1.{NOW}.".encode() + body
    sig = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    headers = {
        "webhook-id": "msg_bench_1",
        "webhook-timestamp": str(NOW),
        "webhook-signature": "v1," + sig.decode(),
    }
    adapter = Dodo(webhook_secret=STANDARD_SECRET, clock=lambda: float(NOW))

    def baseline() -> bool:
        computed = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
        return hmac.compare_digest(computed, sig)

    return Scheme(
        "standard webhooks (dodo, polar, autumn)",
        lambda: adapter.verify(headers, body),
        baseline,
        body,
        lambda: signature_only(adapter, headers, body),
    )


@dataclass
class Samples:
    """Per repetition: ops/s; over all repetitions: every call's latency in ns."""

    rates: list[float] = field(default_factory=list)
    latencies: list[int] = field(default_factory=list)

    def add(self, durations: list[int]) -> None:
        self.rates.append(len(durations) / (sum(durations) / 1e9))
        self.latencies.extend(durations)

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def time_calls(func: Callable[[], object], calls: int) -> list[int]:
    clock = time.perf_counter_ns
    out = []
    for _ in range(calls):
        start = clock()
        func()
        out.append(clock() - start)
    return out


def bench_verification(calls: int, repeat: int) -> dict[str, dict[str, Samples]]:
    results: dict[str, dict[str, Samples]] = {}
    for scheme in (stripe_scheme(), hmac_scheme(), standard_scheme()):
        scheme.verify()  # fails loudly here if the delivery is not valid
        assert scheme.baseline() is True

        def parsed(
            baseline: Callable[[], object] = scheme.baseline, body: bytes = scheme.body
        ) -> object:
            return baseline() and json.loads(body)

        funcs = {
            "verify": scheme.verify,
            "signature only": scheme.signature,
            "baseline+parse": parsed,
            "baseline": scheme.baseline,
        }
        samples = {mode: Samples() for mode in funcs}
        for rep in range(repeat):
            for mode in funcs if rep % 2 == 0 else reversed(list(funcs)):
                samples[mode].add(time_calls(funcs[mode], calls))
        results[scheme.name] = samples
    return results


CATALOG = define_catalog(
    meters={"tokens": Meter(event_type="tokens", aggregation="SUM", value_property="$.tokens")},
    features={
        "ai_tokens": Feature(type="metered", meter="tokens"),
        "api_access": Feature(type="boolean"),
    },
    plans={
        "pro": Plan(
            entitlements={
                "ai_tokens": MeteredEntitlement(amount=100_000, reset="month"),
                "api_access": True,
            },
            prices={"monthly": Price(amount=2000, currency="USD", interval="month")},
            provider_ids={"stripe": "prod_pro"},
        )
    },
)


def subscription_update(event_id: str, now: int) -> bytes:
    item = {
        "price": {"id": "price_pro_monthly", "product": "prod_pro"},
        "quantity": 1,
        "current_period_start": now,
        "current_period_end": now + 30 * 86400,
    }
    sub = {
        "id": "sub_bench",
        "customer": "cus_bench",
        "status": "active",
        "metadata": {"referenceId": "bench"},
        "items": {"data": [item]},
    }
    event = {"id": event_id, "type": "customer.subscription.updated", "created": now}
    return json.dumps({**event, "data": {"object": sub}}).encode()


def stripe_headers(body: bytes, now: int) -> dict[str, str]:
    sig = hmac.new(STRIPE_SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={now},v1={sig}"}


async def bench_handle(calls: int, repeat: int) -> dict[str, Samples]:
    local = LocalOpenMeter()
    client = local.client(catalog=CATALOG, providers=[Stripe(webhook_secret=STRIPE_SECRET)])
    samples = {"handle (new)": Samples(), "handle (duplicate)": Samples(), "apply_event": Samples()}
    counter = 0
    async with client:
        await client.catalog.push()
        await client.customers.create(name="Bench", key="bench", subject_keys=["bench"])
        first = subscription_update("evt_first", int(time.time()))
        assert (
            await client.webhooks.handle(
                "stripe", headers=stripe_headers(first, int(time.time())), body=first
            )
        ).outcome == "applied"

        async def run(mode: str) -> list[int]:
            nonlocal counter
            out = []
            for _ in range(calls):
                counter += 1
                now = int(time.time())
                body = subscription_update(f"evt_{mode[:3]}_{counter}", now)
                headers = stripe_headers(body, now)
                if mode == "handle (duplicate)":
                    body, headers = first, stripe_headers(first, now)
                if mode == "apply_event":
                    event = direct_event(counter, now)
                    start = time.perf_counter_ns()
                    await client.billing.apply_event(event)
                else:
                    start = time.perf_counter_ns()
                    result = await client.webhooks.handle("stripe", headers=headers, body=body)
                out.append(time.perf_counter_ns() - start)
                if mode != "apply_event":
                    expected = "duplicate" if mode == "handle (duplicate)" else "applied"
                    assert result.outcome == expected, result
            return out

        modes = list(samples)
        for rep in range(repeat):
            for mode in modes if rep % 2 == 0 else reversed(modes):
                samples[mode].add(await run(mode))
    return samples


def direct_event(counter: int, now: int) -> BillingEvent:
    start = datetime.fromtimestamp(now, tz=timezone.utc)
    return BillingEvent(
        type="subscription.updated",
        provider="stripe",
        provider_event_id=f"evt_direct_{counter}",
        occurred_at=start,
        customer="bench",
        plan="pro",
        subscription_id="sub_bench",
        current_period_start=start,
        current_period_end=datetime.fromtimestamp(now + 30 * 86400, tz=timezone.utc),
    )


def row(name: str, mode: str, s: Samples, base: Samples | None) -> dict[str, Any]:
    ratio = statistics.median(s.rates) / statistics.median(base.rates) if base else None
    return {
        "what": name,
        "mode": mode,
        "ops_s_min": min(s.rates),
        "ops_s_median": statistics.median(s.rates),
        "ops_s_max": max(s.rates),
        "p50_us": s.p(0.50),
        "p99_us": s.p(0.99),
        "ratio": ratio,
    }


def print_table(rows: list[dict[str, Any]], ratio_label: str) -> None:
    head = (
        f"{'what':<40} {'mode':<19} {'min/s':>10} {'median/s':>10} {'max/s':>10} "
        f"{'p50 us':>8} {'p99 us':>8} {ratio_label:>14}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "1.00 (base)"
        print(
            f"{r['what']:<40} {r['mode']:<19} {r['ops_s_min']:>10,.0f} {r['ops_s_median']:>10,.0f} "
            f"{r['ops_s_max']:>10,.0f} {r['p50_us']:>8.1f} {r['p99_us']:>8.1f} {ratio:>14}"
        )


def meets_goal(r: dict[str, Any]) -> bool:
    return bool(r["ops_s_median"] >= 20_000 and r["p99_us"] <= 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000, help="verifications per repetition")
    parser.add_argument("--handle-calls", type=int, default=200, help="handle() calls per rep")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()

    verification = bench_verification(args.calls, args.repeat)
    vrows = []
    for name, samples in verification.items():
        vrows.append(row(name, "verify", samples["verify"], samples["baseline+parse"]))
        vrows.append(row(name, "signature only", samples["signature only"], samples["baseline"]))
        vrows.append(row(name, "baseline+parse", samples["baseline+parse"], None))
        vrows.append(row(name, "baseline", samples["baseline"], None))
    handle = asyncio.run(bench_handle(args.handle_calls, max(1, min(args.repeat, 3))))
    hrows = [
        row(
            "handle() on Local OpenMeter",
            mode,
            s,
            None if mode == "apply_event" else handle["apply_event"],
        )
        for mode, s in handle.items()
    ]
    if args.json:
        print(
            json.dumps({"body_bytes": BODY_BYTES, "verification": vrows, "handle": hrows}, indent=2)
        )
        return
    print(
        f"Verification of a {BODY_BYTES}-byte body: {args.calls} calls x {args.repeat} repetitions"
    )
    print("(goal: >= 20,000 verify/s and p99 <= 100 us)\n")
    print_table(vrows, "vs floor")
    verdicts = [
        f"{r['what']}, {r['mode']}: {'meets' if meets_goal(r) else 'MISSES'} the goal"
        for r in vrows
        if r["mode"] in ("verify", "signature only")
    ]
    print("\n" + "\n".join(verdicts))
    print(f"\nhandle() end to end, in process: {args.handle_calls} calls per repetition\n")
    print_table(hrows, "vs apply_event")


if __name__ == "__main__":
    main()
