"""Compile a catalog into each payment provider's products and prices: pure, no I/O.

Providers model what you sell differently, so every product and price carries an explicit
*strategy* saying how it is sold there, and anything a provider cannot express becomes a typed
warning (``strict=True`` turns the warnings into one `CatalogError`).

Strategy per provider as (plan / recurring add-on / one-time add-on / top-up):

* stripe: subscription_product / subscription_item / invoice_item / one_time_checkout
* polar: subscription_product / subscription_product / one_time_checkout / one_time_checkout
* razorpay: subscription_plan / subscription_addon / subscription_addon / manual_charge
* creem: subscription_product / subscription_product / one_time_checkout / one_time_checkout
* dodo: subscription_product / subscription_addon / one_time_checkout / one_time_checkout
* autumn: subscription_product / subscription_addon / one_time_checkout / one_time_checkout

Why: Stripe subscriptions hold several items, so recurring add-ons are extra items and one-time
add-ons are invoice items. Polar and Creem subscriptions hold exactly one product, so a recurring
add-on is a second subscription to its own product (warning ``addon_separate_subscription``) and
a one-time add-on an ordinary one-time checkout. Razorpay plans take add-ons only as upfront
charges at subscription creation (recurring add-ons warn) and has no one-time product catalog,
so top-ups are charged through your own payment flow (warning ``topup_custom_flow``). Dodo and
Autumn have first-class subscription add-ons. Stripe and Dodo bill every recurring item of a
subscription on one cadence, so a recurring add-on whose interval no compatible plan price has
warns ``addon_interval_mismatch``. Creem bills monthly, quarterly, half-yearly or yearly only
(``interval_unsupported``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .._exceptions import CatalogError, CatalogIssue, InvalidInputError
from .compile_openmeter import MANAGED_KEY
from .dsl import AddOn, Catalog, Plan, Price, TopUp
from .validate import price_lookup_key

__all__ = [
    "PROVIDERS",
    "CompileWarning",
    "ItemKind",
    "PaymentCatalog",
    "PaymentPrice",
    "PaymentProduct",
    "Provider",
    "Strategy",
    "compile_payment_catalog",
]

Provider = Literal["stripe", "polar", "razorpay", "creem", "dodo", "autumn"]
PROVIDERS: tuple[Provider, ...] = ("stripe", "polar", "razorpay", "creem", "dodo", "autumn")
Strategy = Literal[
    "subscription_product",
    "subscription_item",
    "invoice_item",
    "subscription_plan",
    "subscription_addon",
    "one_time_checkout",
    "manual_charge",
]
ItemKind = Literal["plan", "addon", "topup"]

# (plan, recurring add-on, one-time add-on, top-up) per provider; see the module docstring.
_STRATEGIES: dict[str, tuple[Strategy, Strategy, Strategy, Strategy]] = {
    "stripe": ("subscription_product", "subscription_item", "invoice_item", "one_time_checkout"),
    "polar": (
        "subscription_product",
        "subscription_product",
        "one_time_checkout",
        "one_time_checkout",
    ),
    "razorpay": ("subscription_plan", "subscription_addon", "subscription_addon", "manual_charge"),
    "creem": (
        "subscription_product",
        "subscription_product",
        "one_time_checkout",
        "one_time_checkout",
    ),
    "dodo": (
        "subscription_product",
        "subscription_addon",
        "one_time_checkout",
        "one_time_checkout",
    ),
    "autumn": (
        "subscription_product",
        "subscription_addon",
        "one_time_checkout",
        "one_time_checkout",
    ),
}
_SINGLE_CADENCE = ("stripe", "dodo")
_CREEM_PERIODS = {("month", 1), ("month", 3), ("month", 6), ("year", 1)}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CompileWarning(_Frozen):
    """Something the provider cannot express as the catalog says; ``code`` is stable."""

    code: str
    path: str
    message: str


class PaymentProduct(_Frozen):
    """A product to create (or match by ``product_id``) at the provider."""

    provider: Provider
    kind: ItemKind
    name: str = Field(description="the catalog name of the plan, add-on or top-up")
    key: str
    strategy: Strategy
    display_name: str
    description: str | None = None
    product_id: str | None = None
    compatible_plans: tuple[str, ...] = ()
    multiple: bool | None = None
    feature_key: str | None = None
    amount: float | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class PaymentPrice(_Frozen):
    """A price to create (or match by ``price_id`` or ``lookup_key``) at the provider."""

    provider: Provider
    kind: ItemKind
    item: str
    item_key: str
    price: str
    strategy: Strategy
    lookup_key: str
    amount: int
    currency: str
    interval: str
    interval_count: int
    trial_days: int | None = None
    price_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class PaymentCatalog(_Frozen):
    """What to set up at one provider: products, prices and what it cannot express."""

    provider: Provider
    products: tuple[PaymentProduct, ...]
    prices: tuple[PaymentPrice, ...]
    warnings: tuple[CompileWarning, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (for ``catalog compile --json`` and golden files)."""
        return self.model_dump(mode="json")


def compile_payment_catalog(
    catalog: Catalog, provider: str, strict: bool = False
) -> PaymentCatalog:
    """Products and prices for ``provider``, each with its strategy, plus warnings.

    Raises:
        InvalidInputError: ``provider`` is not one of `PROVIDERS`.
        CatalogError: the catalog is invalid, or ``strict`` and there are warnings (one issue
            per warning, code and path kept).
    """
    name = provider.lower()
    if name not in _STRATEGIES:
        raise InvalidInputError(
            f"unknown payment provider {provider!r}",
            field="provider",
            hint=f"use one of {', '.join(PROVIDERS)}",
        )
    catalog.check()
    builder = _Builder(catalog, name)
    for item_name, plan in catalog.plans.items():
        builder.add_item("plan", item_name, plan)
    for item_name, addon in catalog.addons.items():
        builder.add_item("addon", item_name, addon)
        builder.check_addon(item_name, addon)
    for item_name, topup in catalog.topups.items():
        builder.add_item("topup", item_name, topup)
    result = PaymentCatalog.model_validate(
        {
            "provider": name,
            "products": builder.products,
            "prices": builder.prices,
            "warnings": builder.warnings,
        }
    )
    if strict and result.warnings:
        issues = [
            CatalogIssue(w.path, w.message, code=w.code, hint=f"not expressible on {name}")
            for w in result.warnings
        ]
        raise CatalogError(issues)
    return result


class _Builder:
    """Accumulates products, prices and warnings in catalog order."""

    def __init__(self, catalog: Catalog, provider: str) -> None:
        self.catalog = catalog
        self.provider = provider
        self.products: list[dict[str, Any]] = []
        self.prices: list[dict[str, Any]] = []
        self.warnings: list[dict[str, str]] = []

    def warn(self, code: str, path: str, message: str) -> None:
        """Record a warning."""
        self.warnings.append({"code": code, "path": path, "message": message})

    def strategy(self, kind: ItemKind, interval: str | None) -> Strategy:
        """The strategy of an item (and, for add-ons, a price interval)."""
        plan, recurring_addon, one_time_addon, topup = _STRATEGIES[self.provider]
        if kind == "plan":
            return plan
        if kind == "topup":
            return topup
        return one_time_addon if interval == "one_time" else recurring_addon

    def add_item(self, kind: ItemKind, name: str, item: Plan | AddOn | TopUp) -> None:
        """Add one plan, add-on or top-up product with its prices."""
        key = item.key or name
        section = f"{kind}s"
        metadata = {**item.metadata, MANAGED_KEY: "true", "openmeter_billing.kind": kind}
        metadata["openmeter_billing.key"] = key
        # An add-on with any recurring price is sold as a recurring add-on.
        intervals = {price.interval for price in item.prices.values()}
        product_interval = "one_time" if intervals == {"one_time"} else None
        product: dict[str, Any] = {
            "provider": self.provider,
            "kind": kind,
            "name": name,
            "key": key,
            "strategy": self.strategy(kind, product_interval),
            "display_name": item.name or key,
            "description": item.description,
            "product_id": _provider_id(item.provider_ids, self.provider),
            "metadata": metadata,
        }
        if not isinstance(item, Plan):
            product["compatible_plans"] = self.compatible(item.compatible_plans)
        if isinstance(item, AddOn):
            product["multiple"] = item.multiple
        if isinstance(item, TopUp):
            product["feature_key"] = self.feature_key(item.feature)
            product["amount"] = item.amount
            metadata["openmeter_billing.feature"] = product["feature_key"]
        self.products.append(product)
        for price_name, price in item.prices.items():
            path = f"{section}.{name}.prices.{price_name}"
            self.add_price(kind, name, key, price_name, price, metadata, path)
        if kind == "topup" and self.provider == "razorpay":
            self.warn(
                "topup_custom_flow",
                f"topups.{name}",
                "Razorpay has no one-time product catalog for top-ups; charge through your own "
                "payment flow (orders) and grant the top-up after the payment succeeds",
            )

    def add_price(
        self,
        kind: ItemKind,
        name: str,
        key: str,
        price_name: str,
        price: Price,
        item_metadata: Mapping[str, str],
        path: str,
    ) -> None:
        """Add one price (and warn about cadences the provider cannot bill)."""
        metadata = {**item_metadata, **price.metadata, "openmeter_billing.price": price_name}
        self.prices.append(
            {
                "provider": self.provider,
                "kind": kind,
                "item": name,
                "item_key": key,
                "price": price_name,
                "strategy": self.strategy(kind, price.interval),
                "lookup_key": price_lookup_key(key, price_name, price),
                "amount": price.amount,
                "currency": price.currency,
                "interval": price.interval,
                "interval_count": price.interval_count,
                "trial_days": price.trial_days,
                "price_id": _provider_id(price.provider_ids, self.provider),
                "metadata": metadata,
            }
        )
        period = (price.interval, price.interval_count)
        if (
            self.provider == "creem"
            and price.interval != "one_time"
            and period not in _CREEM_PERIODS
        ):
            self.warn(
                "interval_unsupported",
                f"{path}.interval",
                f"Creem bills every 1, 3 or 6 months or every year; not every "
                f"{price.interval_count} {price.interval}",
            )

    def check_addon(self, name: str, addon: AddOn) -> None:
        """Warn about recurring add-ons the provider cannot sell as such."""
        recurring = sorted({p.interval for p in addon.prices.values() if p.interval != "one_time"})
        if not recurring:
            return
        path = f"addons.{name}"
        if self.provider == "razorpay":
            for price_name, price in addon.prices.items():
                if price.interval != "one_time":
                    self.warn(
                        "recurring_addon_unsupported",
                        f"{path}.prices.{price_name}.interval",
                        "Razorpay add-ons are upfront charges at subscription creation; use a "
                        "one_time price or move recurring capacity into the plan's price",
                    )
        elif self.provider in ("polar", "creem"):
            self.warn(
                "addon_separate_subscription",
                path,
                f"{self.provider.title()} subscriptions hold one product, so this recurring "
                "add-on is sold as a second subscription",
            )
        if self.provider not in _SINGLE_CADENCE:
            return
        plan_names = addon.compatible_plans or tuple(self.catalog.plans)
        for plan_name in plan_names:
            plan = self.catalog.plans[plan_name]
            plan_intervals = {p.interval for p in plan.prices.values()}
            for interval in recurring:
                if interval not in plan_intervals:
                    self.warn(
                        "addon_interval_mismatch",
                        f"{path}.compatible_plans",
                        f"{self.provider.title()} bills a subscription on one cadence: the "
                        f"{interval} add-on needs a {interval} price on plan {plan_name!r}",
                    )

    def compatible(self, refs: tuple[str, ...] | None) -> tuple[str, ...]:
        """The plan keys an add-on or top-up can be bought with (omitted: every plan)."""
        names = refs if refs is not None else tuple(self.catalog.plans)
        return tuple(self.catalog.plans[n].key or n for n in names)

    def feature_key(self, feature_name: str) -> str:
        """The OpenMeter key of a feature name."""
        return self.catalog.features[feature_name].key or feature_name


def _provider_id(ids: Mapping[str, str], provider: str) -> str | None:
    # Provider names are matched case-insensitively everywhere ("Stripe" == "stripe").
    for name, value in ids.items():
        if name.lower() == provider:
            return value
    return None
