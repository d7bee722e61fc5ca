"""The catalog DSL: construction from Python and from plain data, shorthands, shape errors."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from openmeter_billing.catalog import (
    AddOn,
    BooleanEntitlement,
    Catalog,
    CatalogError,
    Feature,
    Meter,
    MeteredEntitlement,
    Plan,
    Price,
    StaticEntitlement,
    TopUp,
    define_catalog,
)


def test_python_definition_with_keywords_builds_a_checked_catalog() -> None:
    catalog = define_catalog(
        meters={"tokens": Meter(event_type="ai", aggregation="sum", value_property="$.tokens")},
        features={"ai_tokens": Feature(type="metered", meter="tokens")},
        plans={
            "pro": Plan(
                name="Pro",
                entitlements={"ai_tokens": MeteredEntitlement(amount=1000)},
                prices={"monthly": Price(amount=2000, currency="usd", interval="MONTH")},
            )
        },
        topups={
            "pack": TopUp(
                feature="ai_tokens",
                amount=500,
                prices={"once": Price(amount=500, currency="EUR", interval="one_time")},
            )
        },
    )
    assert catalog.meters["tokens"].aggregation == "SUM"
    price = catalog.plans["pro"].prices["monthly"]
    assert (price.currency, price.interval) == ("USD", "month")
    entitlement = catalog.plans["pro"].entitlements["ai_tokens"]
    assert isinstance(entitlement, MeteredEntitlement)
    assert entitlement.reset == "month"


def test_keys_default_to_catalog_names_and_explicit_keys_are_kept(catalog: Catalog) -> None:
    assert catalog.plans["free"].key == "free"
    assert catalog.features["aiTokens"].key == "ai_tokens"
    assert catalog.meters["tokens"].key == "tokens"
    assert catalog.addons["prioritySupport"].key == "priority_support_addon"


def test_entitlement_shorthands_become_typed_entitlements(catalog: Catalog) -> None:
    free = catalog.plans["free"].entitlements
    assert free["aiTokens"] == MeteredEntitlement(amount=10000)
    assert free["apiAccess"] == BooleanEntitlement(enabled=True)
    assert free["supportTier"] == StaticEntitlement(config={"value": "community"})
    pro = catalog.plans["pro"].entitlements
    assert isinstance(pro["apiAccess"], BooleanEntitlement)
    assert pro["supportTier"] == StaticEntitlement(config={"value": "priority"})
    assert pro["aiTokens"].metadata == {"unit": "tokens"}


def test_object_entitlement_with_explicit_type_wins_over_inference() -> None:
    plan = Plan.model_validate({"entitlements": {"f": {"type": "static", "config": {"a": 1}}}})
    assert plan.entitlements["f"] == StaticEntitlement(config={"a": 1})
    plan = Plan.model_validate({"entitlements": {"f": {"enabled": False}}})
    assert plan.entitlements["f"] == BooleanEntitlement(enabled=False)


def test_models_are_frozen(catalog: Catalog) -> None:
    with pytest.raises(pydantic.ValidationError):
        catalog.plans["pro"].name = "Other"  # type: ignore[misc]


def test_shape_errors_are_reported_together_with_dotted_paths() -> None:
    data: dict[str, Any] = {
        "features": {"f": {"type": "metered", "meterr": "m"}},
        "plans": {
            "p": {
                "entitlements": {"f": {"amount": "lots"}},
                "prices": {"m": {"amount": 19.99, "currency": "USD"}},
            }
        },
    }
    with pytest.raises(CatalogError) as info:
        define_catalog(data)
    found = {(issue.path, issue.code) for issue in info.value.issues}
    assert found == {
        ("features.f.meterr", "invalid_field"),
        ("plans.p.entitlements.f.amount", "invalid_field"),
        ("plans.p.prices.m.amount", "invalid_field"),
        ("plans.p.prices.m.interval", "invalid_field"),
    }
    by_path = {issue.path: issue for issue in info.value.issues}
    assert by_path["plans.p.prices.m.amount"].value == 19.99
    assert "snake_case" in (by_path["features.f.meterr"].hint or "")
    assert "4 problems" in str(info.value)


def test_unknown_feature_type_is_a_shape_error() -> None:
    with pytest.raises(CatalogError) as info:
        define_catalog({"features": {"f": {"type": "quota"}}, "plans": {}})
    assert [i.path for i in info.value.issues] == ["features.f.type"]


def test_non_mapping_catalog_data_is_an_issue_not_a_crash() -> None:
    with pytest.raises(CatalogError) as info:
        Catalog.from_data(["not", "a", "catalog"])
    assert info.value.issues[0].path == "$"
    assert info.value.issues[0].value == "list"


def test_define_catalog_without_check_returns_an_invalid_catalog_for_inspection() -> None:
    catalog = define_catalog(check=False)
    assert catalog.plans == {}
    with pytest.raises(CatalogError):
        catalog.check()


def test_keyword_sections_override_the_data_mapping(catalog_data: dict[str, Any]) -> None:
    catalog = define_catalog(
        catalog_data, addons={"extra": AddOn(entitlements={"apiAccess": True})}
    )
    assert list(catalog.addons) == ["extra"]
    assert list(catalog.plans) == ["free", "pro"]


def test_schema_marker_in_data_is_ignored(catalog_data: dict[str, Any]) -> None:
    catalog_data["$schema"] = "./catalog.schema.json"
    assert define_catalog(catalog_data).plans["pro"].name == "Pro"


def test_public_names_are_sorted_importable_and_documented() -> None:
    import openmeter_billing.catalog as package

    def kind(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2), name

    assert package.__all__ == sorted(package.__all__, key=kind)
    for name in package.__all__:
        obj = getattr(package, name)
        if isinstance(obj, type) or callable(obj):
            assert (obj.__doc__ or "").strip(), name
