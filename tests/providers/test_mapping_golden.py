"""Golden tests: every fixture maps to the billing events, top-ups and refunds recorded in
``golden/``. Regenerate after a deliberate change with ``UPDATE_GOLDEN=1 pytest tests/providers``
and review the diff."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from providers._deliveries import FIXTURES, adapter, sign

from openmeter_billing.catalog import (
    AddOn,
    Feature,
    Meter,
    MeteredEntitlement,
    Plan,
    Price,
    TopUp,
    define_catalog,
)
from openmeter_billing.providers import CustomerHint, MappedEvent

GOLDEN = Path(__file__).parent / "golden"

# Provider ids taken from the fixtures, so each fixture's product or price is a catalog item.
CATALOG = define_catalog(
    meters={"tokens": Meter(event_type="tokens", aggregation="SUM", value_property="$.tokens")},
    features={
        "ai_tokens": Feature(type="metered", meter="tokens"),
        "support": Feature(type="boolean"),
    },
    plans={
        "free": Plan(entitlements={"ai_tokens": MeteredEntitlement(amount=1_000, reset="month")}),
        "pro": Plan(
            entitlements={"ai_tokens": MeteredEntitlement(amount=100_000, reset="month")},
            provider_ids={
                "stripe": "prod_TgJOHgLaqMqGBs",
                "polar": "260ea636-e7ac-452e-ae4c-8c0db35365ca",
                "creem": "prod_d1AY2Sadk9YAvLI0pj97f",
                "dodo": "pdt_0NVPN65dLWspJhGZcSJ3d",
            },
            prices={
                "monthly": Price(
                    amount=2000,
                    currency="USD",
                    interval="month",
                    provider_ids={
                        "stripe": "price_1RCV6tCMHTTliF5iuMgrQbyE",
                        "razorpay": "plan_BvrFKjSxauOH7N",
                    },
                )
            },
        ),
        "team": Plan(
            entitlements={"ai_tokens": MeteredEntitlement(amount=500_000, reset="month")},
            provider_ids={"creem": "prod_3ELsC3Lt97orn81SOdgQI3"},
            prices={
                "weekly": Price(
                    amount=900,
                    currency="USD",
                    interval="week",
                    provider_ids={"razorpay": "plan_BvrHngQ0xLNnNG"},
                )
            },
        ),
    },
    addons={
        "support": AddOn(
            entitlements={"support": True},
            compatible_plans=("pro",),
            prices={"monthly": Price(amount=500, currency="USD", interval="month")},
        )
    },
    topups={
        "token_pack": TopUp(
            feature="ai_tokens",
            amount=1000,
            provider_ids={"stripe": "plink_1SiwnCQEUxc7vavP8ztCdvQw", "autumn": "credits"},
            prices={"once": Price(amount=500, currency="USD", interval="one_time")},
        )
    },
)

# Fixtures without your id in metadata resolve through the provider's customer id.
KNOWN_CUSTOMERS = {
    "cus_TgW1cCgtzSEYJP": "acme",
    "cus_TgW4BfSMznHNLD": "acme",
    "cus_TgOTn73INcHzcn": "acme",
    "cus_SGqVI5XZS5sDjA": "acme",
    "cust_C0WlbKhp3aLA7W": "acme",
    "cust_1OcIK1GEuVvXZwD19tjq2z": "acme",
    "cust_3y4k2CELGsw7n9Eeeiw2hm": "acme",
}


def resolve(hint: CustomerHint) -> object | None:
    return hint.reference_id or KNOWN_CUSTOMERS.get(hint.provider_customer_id or "")


def fixtures() -> list[tuple[str, str]]:
    return sorted(
        (p.parent.name, p.name.removesuffix(".json"))
        for p in FIXTURES.glob("*/*.json")
        if not p.parent.name.startswith("_")
    )


def as_data(mapped: MappedEvent) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if hasattr(value, "model_dump"):
            return {
                k: plain(v) for k, v in value.model_dump().items() if v not in (None, {}, False)
            }
        if hasattr(value, "__dataclass_fields__"):
            return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__}
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value.isoformat() if hasattr(value, "isoformat") else value

    return plain(mapped)


def deliver(provider: str, name: str, **options: Any) -> MappedEvent:
    body = (FIXTURES / provider / f"{name}.json").read_bytes()
    a = adapter(provider, resolve_customer=resolve, **options)
    event = a.verify(sign(provider, body, delivery_id=f"dlv_{name}"), body)
    return a.map(event, catalog=CATALOG)


@pytest.mark.parametrize(("provider", "name"), fixtures())
def test_fixture_maps_to_its_golden_result(provider: str, name: str) -> None:
    got = as_data(deliver(provider, name, tolerance=10**10))
    path = GOLDEN / provider / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(path.read_text())


def test_every_fixture_is_mapped_or_deliberately_ignored() -> None:
    unknown = [f for f in fixtures() if deliver(*f, tolerance=10**10).unknown_type]
    assert unknown == []
