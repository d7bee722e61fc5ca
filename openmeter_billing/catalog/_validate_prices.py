"""Price rules: amounts, currencies, intervals, trials and unique lookup keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._currencies import ISO_4217
from ._issues import Issues, names
from .dsl import PRICE_INTERVALS, Catalog, Price

__all__ = ["check_compatible", "check_lookup_keys", "check_prices", "price_lookup_key"]


def price_lookup_key(item_key: str, price_name: str, price: Price) -> str:
    """A price's lookup key: its own, else ``<item key>:<price name>`` (stable across pushes)."""
    return price.lookup_key or f"{item_key}:{price_name}"


def check_prices(base: str, prices: Mapping[str, Price], issues: Issues) -> None:
    """Prices: positive amounts, ISO currencies, known intervals, counts, trials."""
    for name, price in prices.items():
        path = f"{base}.{name}"
        if price.amount <= 0:
            issues.add(
                f"{path}.amount",
                "non_positive_amount",
                "a price must be a positive integer in minor units",
                price.amount,
                "2000 USD means $20.00; a free item needs no price",
            )
        if price.currency not in ISO_4217:
            issues.add(
                f"{path}.currency",
                "unknown_currency",
                "not an ISO 4217 currency code",
                price.currency,
                "use a three-letter code such as USD, EUR, GBP or INR",
            )
        if price.interval not in PRICE_INTERVALS:
            issues.add(
                f"{path}.interval",
                "invalid_interval",
                "unknown price interval",
                price.interval,
                f"use one of {', '.join(PRICE_INTERVALS)}",
            )
        if price.interval_count < 1:
            issues.add(
                f"{path}.interval_count",
                "invalid_count",
                "interval_count must be at least 1",
                price.interval_count,
                "use 3 with interval 'month' for quarterly billing",
            )
        _check_trial(path, price, issues)


def _check_trial(path: str, price: Price, issues: Issues) -> None:
    if price.trial_days is None:
        return
    if price.trial_days < 0:
        issues.add(
            f"{path}.trial_days",
            "invalid_count",
            "trial_days cannot be negative",
            price.trial_days,
            "use 0 or omit it for no trial",
        )
    elif price.interval == "one_time" and price.trial_days > 0:
        issues.add(
            f"{path}.trial_days",
            "unexpected_trial",
            "a one-time price cannot have a trial",
            price.trial_days,
            "remove trial_days",
        )


def check_lookup_keys(catalog: Catalog, issues: Issues) -> None:
    """Lookup keys (given or defaulted) are unique across the catalog."""
    seen: dict[str, str] = {}
    sections: list[tuple[str, Mapping[str, Any]]] = [
        ("plans", catalog.plans),
        ("addons", catalog.addons),
        ("topups", catalog.topups),
    ]
    for section, items in sections:
        for name, item in items.items():
            for price_name, price in item.prices.items():
                lookup = price_lookup_key(item.key or name, price_name, price)
                path = f"{section}.{name}.prices.{price_name}"
                if lookup in seen:
                    issues.add(
                        f"{path}.lookup_key",
                        "duplicate_lookup_key",
                        f"lookup key already used by {seen[lookup]}",
                        lookup,
                        "lookup keys identify prices at the provider; make each unique",
                    )
                seen.setdefault(lookup, path)


def check_compatible(
    catalog: Catalog, base: str, plans: tuple[str, ...] | None, issues: Issues
) -> None:
    """compatible_plans: not empty and only plans the catalog defines."""
    if plans is None:
        return
    if not plans:
        issues.add(
            f"{base}.compatible_plans",
            "empty_compatible_plans",
            "an empty compatible_plans list means no plan can buy this item",
            [],
            "omit compatible_plans to allow every plan",
        )
    for index, ref in enumerate(plans):
        if ref not in catalog.plans:
            issues.add(
                f"{base}.compatible_plans.{index}",
                "unknown_reference",
                "compatible_plans refers to a plan the catalog does not define",
                ref,
                f"use a plan name from: {names(catalog.plans)}",
            )
