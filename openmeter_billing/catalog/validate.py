"""Catalog rules: every problem at once, each with a path, the offending value, a hint and a code.

Run it in CI (``openmeter-billing catalog check``) so a broken catalog never reaches OpenMeter or
a payment provider. Codes are stable and safe to match on:

``empty``, ``invalid_key``, ``duplicate_key``, ``unknown_reference``, ``unknown_aggregation``,
``missing_value_property``, ``unexpected_value_property``, ``invalid_value_property``,
``missing_meter``, ``unexpected_meter``, ``unsupported_aggregation``, ``unknown_group_by``,
``unexpected_config``, ``missing_config``, ``entitlement_type_mismatch``, ``negative_amount``,
``non_positive_amount``, ``invalid_interval``, ``unsupported_rollover``, ``reset_mismatch``,
``unknown_currency``, ``invalid_count``, ``one_time_plan_price``, ``recurring_topup_price``,
``unexpected_trial``, ``duplicate_lookup_key``, ``empty_compatible_plans``, ``invalid_quantity``,
``topup_not_metered``, ``invalid_priority``, ``invalid_expiration``, ``invalid_rollover``.
(Shape errors found while parsing plain data use ``invalid_field``.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .._exceptions import CatalogIssue
from ._issues import Issues, names
from ._validate_items import check_addon, check_entitlements, check_topup
from ._validate_prices import check_lookup_keys, check_prices, price_lookup_key
from .dsl import AGGREGATIONS, KEY_PATTERN, Catalog, Feature

__all__ = ["price_lookup_key", "validate_catalog"]

_KEY = re.compile(KEY_PATTERN)
_SECTIONS = ("meters", "features", "plans", "addons", "topups")
#: OpenMeter refuses features on these meters (a balance cannot burn down an average).
_UNMETERABLE = ("AVG", "MIN", "MAX")


def validate_catalog(catalog: Catalog) -> list[CatalogIssue]:
    """Every rule violation in ``catalog``, in catalog order; an empty list means valid.

    Never raises for a catalog value, however broken; `Catalog.check` raises with this list.
    """
    issues = Issues()
    if not catalog.features:
        issues.add("features", "empty", "the catalog defines no features", hint="add a feature")
    if not catalog.plans:
        issues.add("plans", "empty", "the catalog defines no plans", hint="add at least one plan")
    _check_keys(catalog, issues)
    for name, meter in catalog.meters.items():
        _check_meter(f"meters.{name}", meter.aggregation, meter.value_property, issues)
    for name, feature in catalog.features.items():
        _check_feature(catalog, name, feature, issues)
    for name, plan in catalog.plans.items():
        base = f"plans.{name}"
        check_entitlements(catalog, base, plan.entitlements, issues, "plan")
        check_prices(f"{base}.prices", plan.prices, issues)
        for price_name, price in plan.prices.items():
            if price.interval == "one_time":
                issues.add(
                    f"{base}.prices.{price_name}.interval",
                    "one_time_plan_price",
                    "plan prices recur; a plan cannot have a one-time price",
                    price.interval,
                    "use day/week/month/year, or sell the one-time charge as an add-on or top-up",
                )
    for name, addon in catalog.addons.items():
        check_addon(catalog, name, addon, issues)
    for name, topup in catalog.topups.items():
        check_topup(catalog, name, topup, issues)
    check_lookup_keys(catalog, issues)
    return issues.items


def _check_keys(catalog: Catalog, issues: Issues) -> None:
    for section in _SECTIONS:
        seen: dict[str, str] = {}
        items: Mapping[str, Any] = getattr(catalog, section)
        for name, item in items.items():
            key = item.key or name
            path = f"{section}.{name}.key"
            if len(key) > 64 or not _KEY.match(key):
                issues.add(
                    path,
                    "invalid_key",
                    "keys must match OpenMeter's pattern ^[a-z0-9]+(?:_[a-z0-9]+)*$ (1-64 chars)",
                    key,
                    f"use lower-case letters, digits and single underscores, e.g. "
                    f"{_suggest_key(key)!r}",
                )
            if key in seen:
                issues.add(
                    path,
                    "duplicate_key",
                    f"key already used by {section}.{seen[key]}",
                    key,
                    "give each item its own key",
                )
            seen.setdefault(key, name)


def _suggest_key(key: str) -> str:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()
    return re.sub(r"[^a-z0-9]+", "_", snake).strip("_")[:64] or "key"


def _check_meter(path: str, aggregation: str, value_property: str | None, issues: Issues) -> None:
    if aggregation not in AGGREGATIONS:
        issues.add(
            f"{path}.aggregation",
            "unknown_aggregation",
            "unknown meter aggregation",
            aggregation,
            f"use one of {', '.join(AGGREGATIONS)}",
        )
    elif aggregation == "COUNT" and value_property is not None:
        issues.add(
            f"{path}.value_property",
            "unexpected_value_property",
            "a COUNT meter counts events and takes no value_property",
            value_property,
            "remove value_property, or use SUM to add up a number",
        )
    elif aggregation != "COUNT" and not value_property:
        issues.add(
            f"{path}.value_property",
            "missing_value_property",
            f"a {aggregation} meter needs a value_property",
            value_property,
            "set a JSONPath into the event data, e.g. '$.tokens'",
        )
    if value_property and not value_property.startswith("$"):
        issues.add(
            f"{path}.value_property",
            "invalid_value_property",
            "value_property must be a JSONPath into the event data",
            value_property,
            f"write '$.{value_property}'",
        )


def _check_feature(catalog: Catalog, name: str, feature: Feature, issues: Issues) -> None:
    path = f"features.{name}"
    if feature.type != "static" and feature.config is not None:
        issues.add(
            f"{path}.config",
            "unexpected_config",
            f"only static features have a config; this one is {feature.type}",
            feature.config,
            "remove config or make the feature static",
        )
    if feature.type != "metered":
        if feature.meter is not None:
            issues.add(
                f"{path}.meter",
                "unexpected_meter",
                f"a {feature.type} feature has no meter",
                feature.meter,
                "remove meter, or make the feature metered",
            )
        return
    _check_feature_meter(catalog, path, feature, issues)


def _check_feature_meter(catalog: Catalog, path: str, feature: Feature, issues: Issues) -> None:
    """A metered feature's meter: present, defined, meterable, with known group-by keys."""
    if feature.meter is None:
        issues.add(
            f"{path}.meter",
            "missing_meter",
            "a metered feature needs a meter",
            None,
            f"name one of the catalog's meters: {names(catalog.meters)}",
        )
        return
    meter = catalog.meters.get(feature.meter)
    if meter is None:
        issues.add(
            f"{path}.meter",
            "unknown_reference",
            "the feature refers to a meter the catalog does not define",
            feature.meter,
            f"use a meter name from: {names(catalog.meters)}",
        )
        return
    if meter.aggregation in _UNMETERABLE:
        issues.add(
            f"{path}.meter",
            "unsupported_aggregation",
            f"OpenMeter refuses features on {meter.aggregation} meters",
            feature.meter,
            "meter it with SUM, COUNT, UNIQUE_COUNT or LATEST",
        )
    for group in feature.meter_group_by_filters:
        if group not in meter.group_by:
            issues.add(
                f"{path}.meter_group_by_filters.{group}",
                "unknown_group_by",
                f"meter {feature.meter!r} has no group_by {group!r}",
                group,
                f"add it to the meter's group_by, or use one of: {names(meter.group_by)}",
            )
