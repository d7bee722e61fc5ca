"""Compilation to payment providers: golden output per provider, strategies, warnings, strict."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from openmeter_billing import InvalidInputError
from openmeter_billing.catalog import Catalog, CatalogError, define_catalog
from openmeter_billing.catalog.compile_providers import PROVIDERS, compile_payment_catalog


@pytest.mark.parametrize("provider", PROVIDERS)
def test_plugin_catalog_matches_golden_per_provider(
    catalog: Catalog, provider: str, assert_golden: Callable[[str, Any], None]
) -> None:
    assert_golden(f"provider_{provider}", compile_payment_catalog(catalog, provider).to_dict())


def _strategies(catalog: Catalog, provider: str) -> list[tuple[str, str]]:
    result = compile_payment_catalog(catalog, provider)
    return [(p.key, p.strategy) for p in result.products]


@pytest.mark.parametrize(
    ("provider", "plan", "addon", "topup"),
    [
        ("stripe", "subscription_product", "subscription_item", "one_time_checkout"),
        ("polar", "subscription_product", "subscription_product", "one_time_checkout"),
        ("razorpay", "subscription_plan", "subscription_addon", "manual_charge"),
        ("creem", "subscription_product", "subscription_product", "one_time_checkout"),
        ("dodo", "subscription_product", "subscription_addon", "one_time_checkout"),
        ("autumn", "subscription_product", "subscription_addon", "one_time_checkout"),
    ],
)
def test_strategy_table_for_recurring_addons(
    catalog: Catalog, provider: str, plan: str, addon: str, topup: str
) -> None:
    assert _strategies(catalog, provider) == [
        ("free", plan),
        ("pro", plan),
        ("priority_support_addon", addon),
        ("token_pack_1m", topup),
    ]


@pytest.mark.parametrize(
    ("provider", "strategy"),
    [
        ("stripe", "invoice_item"),
        ("polar", "one_time_checkout"),
        ("razorpay", "subscription_addon"),
        ("creem", "one_time_checkout"),
        ("dodo", "one_time_checkout"),
        ("autumn", "one_time_checkout"),
    ],
)
def test_one_time_addon_strategy(
    catalog_data: dict[str, Any], provider: str, strategy: str
) -> None:
    catalog_data["addons"]["prioritySupport"]["prices"]["monthly"]["interval"] = "one_time"
    result = compile_payment_catalog(define_catalog(catalog_data), provider)
    addon_price = next(p for p in result.prices if p.kind == "addon")
    assert addon_price.strategy == strategy
    assert not [w for w in result.warnings if w.path.startswith("addons.")]


def test_stripe_output_has_ids_lookup_keys_and_compatible_plans(catalog: Catalog) -> None:
    result = compile_payment_catalog(catalog, "stripe")
    assert result.warnings == ()
    plan = result.products[1]
    assert (plan.key, plan.display_name, plan.description, plan.product_id) == (
        "pro",
        "Pro",
        "Pro plan",
        "prod_stripe_pro",
    )
    addon, topup = result.products[2], result.products[3]
    assert addon.compatible_plans == ("pro",)
    assert addon.multiple is False
    assert topup.compatible_plans == ("free", "pro")  # omitted means every plan
    assert (topup.feature_key, topup.amount) == ("ai_tokens", 1000000)
    monthly = result.prices[0]
    assert (monthly.lookup_key, monthly.amount, monthly.currency, monthly.price_id) == (
        "pro:monthly",
        2000,
        "USD",
        "price_stripe_pro_monthly",
    )
    assert [p.lookup_key for p in result.prices] == [
        "pro:monthly",
        "pro-yearly",
        "priority_support_addon:monthly",
        "token_pack_1m:oneTime",
    ]
    assert result.prices[3].metadata["openmeter_billing.feature"] == "ai_tokens"


def test_razorpay_warns_about_recurring_addons_and_topups(catalog: Catalog) -> None:
    result = compile_payment_catalog(catalog, "razorpay")
    assert [(w.code, w.path) for w in result.warnings] == [
        ("recurring_addon_unsupported", "addons.prioritySupport.prices.monthly.interval"),
        ("topup_custom_flow", "topups.tokenPack1m"),
    ]
    assert all(w.message for w in result.warnings)


def test_strict_mode_raises_one_error_listing_every_warning(catalog: Catalog) -> None:
    with pytest.raises(CatalogError) as info:
        compile_payment_catalog(catalog, "razorpay", strict=True)
    assert [(i.code, i.path) for i in info.value.issues] == [
        ("recurring_addon_unsupported", "addons.prioritySupport.prices.monthly.interval"),
        ("topup_custom_flow", "topups.tokenPack1m"),
    ]
    assert compile_payment_catalog(catalog, "stripe", strict=True).warnings == ()


@pytest.mark.parametrize("provider", ["dodo", "stripe"])
def test_single_cadence_providers_warn_when_addon_interval_has_no_plan_price(
    catalog_data: dict[str, Any], provider: str
) -> None:
    del catalog_data["plans"]["pro"]["prices"]["monthly"]
    result = compile_payment_catalog(define_catalog(catalog_data), provider)
    assert [(w.code, w.path) for w in result.warnings] == [
        ("addon_interval_mismatch", "addons.prioritySupport.compatible_plans")
    ]
    assert "'pro'" in result.warnings[0].message


def test_polar_and_creem_sell_recurring_addons_as_separate_subscriptions(catalog: Catalog) -> None:
    for provider in ("polar", "creem"):
        result = compile_payment_catalog(catalog, provider)
        assert [w.code for w in result.warnings] == ["addon_separate_subscription"]


def test_creem_warns_on_billing_periods_it_cannot_express(catalog_data: dict[str, Any]) -> None:
    catalog_data["plans"]["pro"]["prices"]["weekly"] = {
        "amount": 600,
        "currency": "USD",
        "interval": "week",
    }
    catalog_data["plans"]["pro"]["prices"]["yearly"]["interval_count"] = 2
    result = compile_payment_catalog(define_catalog(catalog_data), "creem")
    paths = [w.path for w in result.warnings if w.code == "interval_unsupported"]
    assert paths == ["plans.pro.prices.yearly.interval", "plans.pro.prices.weekly.interval"]


def test_provider_names_and_provider_ids_match_case_insensitively(
    catalog_data: dict[str, Any],
) -> None:
    catalog_data["plans"]["pro"]["provider_ids"] = {"Stripe": "prod_X"}
    result = compile_payment_catalog(define_catalog(catalog_data), "STRIPE")
    assert result.provider == "stripe"
    assert result.products[1].product_id == "prod_X"


def test_unknown_provider_is_invalid_input(catalog: Catalog) -> None:
    with pytest.raises(InvalidInputError) as info:
        compile_payment_catalog(catalog, "paypal")
    assert info.value.field == "provider"
    assert "stripe" in str(info.value)


def test_invalid_catalog_is_refused_before_compiling(catalog_data: dict[str, Any]) -> None:
    catalog_data["topups"]["tokenPack1m"]["prices"]["oneTime"]["interval"] = "month"
    with pytest.raises(CatalogError):
        compile_payment_catalog(define_catalog(catalog_data, check=False), "stripe")


def test_golden_comparison_fails_on_different_output(
    monkeypatch: pytest.MonkeyPatch, assert_golden: Callable[[str, Any], None]
) -> None:
    monkeypatch.delenv("UPDATE_GOLDEN", raising=False)  # never overwrite the file from here
    with pytest.raises(AssertionError, match="differs"):
        assert_golden("provider_stripe", {"provider": "stripe", "products": []})


def test_addon_with_recurring_and_one_time_prices_is_a_recurring_product(
    catalog_data: dict[str, Any],
) -> None:
    prices = catalog_data["addons"]["prioritySupport"]["prices"]
    catalog_data["addons"]["prioritySupport"]["prices"] = {
        "setup": {"amount": 5000, "currency": "USD", "interval": "one_time"},
        **prices,
    }
    result = compile_payment_catalog(define_catalog(catalog_data), "stripe")
    addon = next(p for p in result.products if p.kind == "addon")
    assert addon.strategy == "subscription_item"
    assert [p.strategy for p in result.prices if p.kind == "addon"] == [
        "invoice_item",
        "subscription_item",
    ]
