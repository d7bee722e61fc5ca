"""Entitlement, add-on and top-up rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._issues import Issues, names
from ._validate_prices import check_compatible, check_prices
from .dsl import (
    ENTITLEMENT_RESETS,
    EXPIRATION_DURATIONS,
    AddOn,
    BooleanEntitlement,
    Catalog,
    Entitlement,
    Feature,
    MeteredEntitlement,
    StaticEntitlement,
    TopUp,
)

__all__ = ["check_addon", "check_entitlements", "check_topup"]


def check_entitlements(
    catalog: Catalog, base: str, entitlements: Mapping[str, Entitlement], issues: Issues, kind: str
) -> None:
    """Entitlements: known features, matching types, valid amounts and resets."""
    path = f"{base}.entitlements"
    if not entitlements:
        issues.add(path, "empty", f"the {kind} grants no entitlements", hint="grant a feature")
    for feature_name, entitlement in entitlements.items():
        feature = catalog.features.get(feature_name)
        where = f"{path}.{feature_name}"
        if feature is None:
            issues.add(
                where,
                "unknown_reference",
                "the entitlement refers to a feature the catalog does not define",
                feature_name,
                f"use a feature name from: {names(catalog.features)}",
            )
            continue
        if entitlement.type != feature.type:
            issues.add(
                where,
                "entitlement_type_mismatch",
                f"a {entitlement.type} entitlement on the {feature.type} feature {feature_name!r}",
                _entitlement_value(entitlement),
                _mismatch_hint(feature.type),
            )
            continue
        if isinstance(entitlement, MeteredEntitlement):
            _check_metered(where, entitlement, issues)
        elif isinstance(entitlement, StaticEntitlement) and _no_config(entitlement, feature):
            issues.add(
                f"{where}.config",
                "missing_config",
                "a static entitlement needs a config object",
                None,
                "give the entitlement a config, or the feature a default config",
            )


def _no_config(entitlement: StaticEntitlement, feature: Feature) -> bool:
    return entitlement.config is None and feature.config is None


def _entitlement_value(entitlement: Entitlement) -> Any:
    if isinstance(entitlement, MeteredEntitlement):
        return entitlement.amount
    if isinstance(entitlement, BooleanEntitlement):
        return entitlement.enabled
    return entitlement.config


def _mismatch_hint(feature_type: str) -> str:
    return {
        "metered": "grant an amount, e.g. {amount: 1000, reset: 'month'}",
        "boolean": "grant true (amounts only apply to metered features)",
        "static": "grant {config: {...}} (amounts only apply to metered features)",
    }[feature_type]


def _check_metered(where: str, entitlement: MeteredEntitlement, issues: Issues) -> None:
    if entitlement.amount < 0:
        issues.add(
            f"{where}.amount",
            "negative_amount",
            "a metered allowance cannot be negative",
            entitlement.amount,
            "use 0 for no included usage",
        )
    if entitlement.reset not in ENTITLEMENT_RESETS:
        issues.add(
            f"{where}.reset",
            "invalid_interval",
            "unknown usage-period reset",
            entitlement.reset,
            f"use one of {', '.join(ENTITLEMENT_RESETS)}",
        )
    if entitlement.rollover is not None:
        issues.add(
            f"{where}.rollover",
            "unsupported_rollover",
            "OpenMeter restores a plan's allowance to exactly its amount at each reset, so "
            "unused allowance cannot roll over",
            entitlement.rollover.model_dump(),
            "remove rollover; sell carry-over credit as a top-up with grant.max_rollover_amount",
        )


def check_addon(catalog: Catalog, name: str, addon: AddOn, issues: Issues) -> None:
    """An add-on: entitlements, prices, compatible plans, quantities, resets."""
    base = f"addons.{name}"
    check_entitlements(catalog, base, addon.entitlements, issues, "add-on")
    check_prices(f"{base}.prices", addon.prices, issues)
    check_compatible(catalog, base, addon.compatible_plans, issues)
    if addon.max_quantity is not None and (
        addon.max_quantity < 1 or (not addon.multiple and addon.max_quantity > 1)
    ):
        issues.add(
            f"{base}.max_quantity",
            "invalid_quantity",
            "max_quantity must be at least 1, and above 1 only when multiple is true",
            addon.max_quantity,
            "set multiple: true to sell several, or remove max_quantity",
        )
    plan_names = addon.compatible_plans if addon.compatible_plans is not None else catalog.plans
    for feature_name, entitlement in addon.entitlements.items():
        if not isinstance(entitlement, MeteredEntitlement):
            continue
        for plan_name in plan_names:
            plan = catalog.plans.get(plan_name)
            granted = plan.entitlements.get(feature_name) if plan else None
            if isinstance(granted, MeteredEntitlement) and granted.reset != entitlement.reset:
                issues.add(
                    f"{base}.entitlements.{feature_name}.reset",
                    "reset_mismatch",
                    f"plan {plan_name!r} resets {feature_name!r} every {granted.reset}; "
                    "amounts of one entitlement share one usage period",
                    entitlement.reset,
                    f"use reset {granted.reset!r}",
                )


def check_topup(catalog: Catalog, name: str, topup: TopUp, issues: Issues) -> None:
    """A top-up: a metered feature, a positive amount, one-time prices, a valid grant."""
    base = f"topups.{name}"
    _check_topup_feature(catalog, base, topup, issues)
    if topup.amount <= 0:
        issues.add(
            f"{base}.amount",
            "non_positive_amount",
            "a top-up must add a positive amount (OpenMeter refuses empty grants)",
            topup.amount,
            "e.g. 1000000 for a 1M token pack",
        )
    if not topup.prices:
        issues.add(
            f"{base}.prices",
            "empty",
            "a top-up needs a one-time price",
            hint="add e.g. one_time: {amount: 1000, currency: USD, interval: one_time}",
        )
    check_prices(f"{base}.prices", topup.prices, issues)
    for price_name, price in topup.prices.items():
        if price.interval != "one_time":
            issues.add(
                f"{base}.prices.{price_name}.interval",
                "recurring_topup_price",
                "top-ups are bought once; their prices must be one_time",
                price.interval,
                "use interval 'one_time', or sell recurring capacity as an add-on",
            )
    check_compatible(catalog, base, topup.compatible_plans, issues)
    _check_grant(base, topup, issues)


def _check_topup_feature(catalog: Catalog, base: str, topup: TopUp, issues: Issues) -> None:
    feature = catalog.features.get(topup.feature)
    if feature is None:
        issues.add(
            f"{base}.feature",
            "unknown_reference",
            "the top-up refers to a feature the catalog does not define",
            topup.feature,
            f"use a metered feature name from: {names(catalog.features)}",
        )
    elif feature.type != "metered":
        issues.add(
            f"{base}.feature",
            "topup_not_metered",
            f"top-ups add balance to metered features; {topup.feature!r} is {feature.type}",
            topup.feature,
            "sell boolean or static access as an add-on",
        )


def _check_grant(base: str, topup: TopUp, issues: Issues) -> None:
    grant = topup.grant
    path = f"{base}.grant"
    if grant.priority is not None and not 1 <= grant.priority <= 255:
        issues.add(
            f"{path}.priority",
            "invalid_priority",
            "grant priority must be between 1 (burns first) and 255",
            grant.priority,
            "use 1 to burn top-ups before other grants",
        )
    if grant.expiration is not None:
        if grant.expiration.duration not in EXPIRATION_DURATIONS:
            issues.add(
                f"{path}.expiration.duration",
                "invalid_expiration",
                "unknown expiration duration",
                grant.expiration.duration,
                f"use one of {', '.join(EXPIRATION_DURATIONS)}",
            )
        if not 1 <= grant.expiration.count <= 1000:
            issues.add(
                f"{path}.expiration.count",
                "invalid_count",
                "expiration count must be between 1 and 1000",
                grant.expiration.count,
                "e.g. duration YEAR, count 1",
            )
    for field in ("min_rollover_amount", "max_rollover_amount"):
        value = getattr(grant, field)
        if value is not None and value < 0:
            issues.add(
                f"{path}.{field}", "negative_amount", f"{field} cannot be negative", value, "use 0"
            )
    low, high = grant.min_rollover_amount, grant.max_rollover_amount
    if low is not None and high is not None and low > high:
        issues.add(
            f"{path}.min_rollover_amount",
            "invalid_rollover",
            "min_rollover_amount is above max_rollover_amount",
            low,
            f"use at most {high}",
        )
