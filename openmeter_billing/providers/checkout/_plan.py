"""What a checkout sells, resolved from the catalog before any network call (pure).

Every mistake (unknown item or price, a missing provider id, an add-on the plan does not take,
something the provider cannot sell in one checkout) is a typed error here, naming the field and
the fix, so no half-built session is ever sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..._exceptions import InvalidInputError, ProviderUnsupportedError
from ...catalog.dsl import AddOn, Catalog, Plan, Price, TopUp

__all__ = ["CheckoutLink", "CheckoutPlan", "Line", "PortalLink", "plan_checkout"]

Kind = Literal["plan", "addon", "topup"]
_SECTIONS: dict[Kind, str] = {"plan": "plans", "addon": "addons", "topup": "topups"}
#: Subscriptions of these hold exactly one product: add-ons need checkouts of their own.
_ONE_PRODUCT = frozenset({"polar", "creem"})
#: These bill every recurring item of a subscription on one cadence.
_ONE_CADENCE = frozenset({"stripe", "dodo"})


@dataclass(frozen=True)
class CheckoutLink:
    """Where to send the customer to pay.

    Attributes:
        url: The provider's hosted checkout page.
        session_id: The provider's id for it (``cs_...``, Polar checkout id, ``sub_...``, ...).
        provider: The provider name.
        customer_key: The customer key sent in the provider's reference/metadata fields; the
            webhook maps the purchase back to it.
        mode: ``subscription`` or ``payment`` (one-time: top-ups and one-time add-ons).
        idempotency_key: The key sent on every attempt (Stripe ``Idempotency-Key``; Creem
            ``request_id``; Razorpay payment link ``reference_id``).
    """

    url: str
    session_id: str | None
    provider: str
    customer_key: str
    mode: str
    idempotency_key: str


@dataclass(frozen=True)
class PortalLink:
    """A provider billing portal session. Its ``url`` logs the customer in: never log it."""

    url: str = field(repr=False)
    provider: str
    session_id: str | None = None


@dataclass(frozen=True)
class Line:
    """One catalog item at one price, as the provider knows it."""

    kind: Kind
    key: str
    price_name: str
    price: Price
    provider_id: str | None
    quantity: int = 1
    name: str | None = None

    @property
    def recurring(self) -> bool:
        return self.price.interval != "one_time"


@dataclass(frozen=True)
class CheckoutPlan:
    """A checkout, resolved: the main item, extra add-on lines and what travels with it."""

    provider: str
    customer_key: str
    main: Line
    extras: tuple[Line, ...]
    success_url: str
    cancel_url: str | None
    idempotency_key: str
    customer_email: str | None = None
    provider_customer_id: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def mode(self) -> Literal["subscription", "payment"]:
        return "subscription" if self.main.recurring else "payment"

    @property
    def metadata(self) -> dict[str, str]:
        """What the webhook mapping reads back: ``referenceId`` and the catalog item."""
        data = {"referenceId": self.customer_key, self.main.kind: self.main.key}
        data["price"] = self.main.price_name
        if self.extras:
            data["addons"] = ",".join(f"{x.key}:{x.quantity}" for x in self.extras)
        return data


def plan_checkout(
    catalog: Catalog | None,
    provider: str,
    customer_key: str,
    *,
    plan: str | None,
    addon: str | None,
    topup: str | None,
    price: str | None,
    addons: Mapping[str, int] | None,
    success_url: str,
    cancel_url: str | None,
    idempotency_key: str,
    **extra: Any,
) -> CheckoutPlan:
    """Resolve a checkout request against the catalog; raise before any I/O."""
    chosen = [(k, v) for k, v in (("plan", plan), ("addon", addon), ("topup", topup)) if v]
    if len(chosen) != 1:
        raise InvalidInputError(
            "pass exactly one of plan=, addon= or topup=",
            field="plan",
            hint="plan='pro' for a subscription, topup='token_pack' for a one-time purchase",
        )
    if catalog is None:
        raise InvalidInputError(
            "checkout links are built from the catalog, and none is configured",
            field="catalog",
            hint="pass catalog=define_catalog(...) to OpenMeterBilling",
        )
    urls: tuple[tuple[str, object], ...] = (
        ("success_url", success_url),
        ("cancel_url", cancel_url),
    )
    for name, url in urls:
        if url is not None and not (
            isinstance(url, str) and url.startswith(("https://", "http://"))
        ):
            raise InvalidInputError(
                f"{name} must be an absolute http(s) URL, got {url!r}",
                field=name,
                hint="the provider redirects the customer's browser there",
            )
    kind, key = chosen[0][0], str(chosen[0][1])
    main = _line(catalog, provider, kind, key, price)  # type: ignore[arg-type]
    extras = _addon_lines(catalog, provider, main, addons or {})
    _check_provider(provider, main, extras)
    return CheckoutPlan(
        provider, customer_key, main, extras, success_url, cancel_url, idempotency_key, **extra
    )


def _item(catalog: Catalog, kind: Kind, key: str) -> Plan | AddOn | TopUp:
    section: Mapping[str, Plan | AddOn | TopUp] = getattr(catalog, _SECTIONS[kind])
    found = section.get(key) or next((i for i in section.values() if i.key == key), None)
    if found is None:
        known = ", ".join(sorted(section)) or "none"
        raise InvalidInputError(
            f"the catalog has no {kind} {key!r}",
            field=kind,
            hint=f"known {_SECTIONS[kind]}: {known}",
        )
    return found


def _line(
    catalog: Catalog, provider: str, kind: Kind, key: str, price_name: str | None, quantity: int = 1
) -> Line:
    item = _item(catalog, kind, key)
    item_key = item.key or key
    names = sorted(item.prices)
    if price_name is None and len(names) == 1:
        price_name = names[0]
    if price_name not in item.prices:
        raise InvalidInputError(
            f"{kind} {item_key!r} has no price {price_name!r}"
            if price_name
            else f"{kind} {item_key!r} has several prices; say which",
            field="price",
            hint=f"prices of {item_key!r}: {', '.join(names) or 'none'}",
        )
    price = item.prices[price_name]
    provider_id = price.provider_ids.get(provider) or item.provider_ids.get(provider)
    if provider == "autumn":
        provider_id = provider_id or item_key  # Autumn product ids are usually the catalog keys
    elif provider_id is None and not (provider == "razorpay" and price.interval == "one_time"):
        raise InvalidInputError(
            f"{provider} has no id for {kind} {item_key!r} (price {price_name!r})",
            field=f"{_SECTIONS[kind]}.{key}.prices.{price_name}.provider_ids",
            hint=f"set provider_ids={{'{provider}': '<its id>'}} on the price or the {kind}",
        )
    return Line(kind, item_key, price_name, price, provider_id, quantity, item.name)


def _addon_lines(
    catalog: Catalog, provider: str, main: Line, wanted: Mapping[str, int]
) -> tuple[Line, ...]:
    if wanted and main.kind != "plan":
        raise InvalidInputError(
            "addons= go with a plan", field="addons", hint="buy add-ons with plan=..., or alone"
        )
    lines = []
    for name, quantity in wanted.items():
        addon = _item(catalog, "addon", name)
        assert isinstance(addon, AddOn)
        limit = addon.max_quantity if addon.multiple else 1
        given: object = quantity  # checked at run time: callers may pass anything
        bad = isinstance(given, bool) or not isinstance(given, int) or given < 1
        if bad or (limit is not None and quantity > limit):
            raise InvalidInputError(
                f"add-on {name!r} quantity {quantity!r} is not allowed",
                field=f"addons.{name}",
                hint=f"a whole number from 1 to {limit}" if limit else "a whole number >= 1",
            )
        if addon.compatible_plans is not None and main.key not in addon.compatible_plans:
            raise InvalidInputError(
                f"add-on {name!r} does not go with plan {main.key!r}",
                field=f"addons.{name}",
                hint=f"compatible plans: {', '.join(addon.compatible_plans)}",
            )
        lines.append(_line(catalog, provider, "addon", name, _addon_price(addon, main), quantity))
    return tuple(lines)


def _addon_price(addon: AddOn, main: Line) -> str | None:
    """The add-on price on the plan price's cadence, else its only price."""
    for name, price in addon.prices.items():
        same = (price.interval, price.interval_count) == (
            main.price.interval,
            main.price.interval_count,
        )
        if same:
            return name
    return next(iter(addon.prices)) if len(addon.prices) == 1 else None


def _check_provider(provider: str, main: Line, extras: tuple[Line, ...]) -> None:
    if not extras:
        return
    first = extras[0].key
    if provider in _ONE_PRODUCT:
        raise ProviderUnsupportedError(
            f"{provider} subscriptions hold one product: add-ons cannot join the plan's checkout",
            field="addons",
            hint=f"buy each add-on in its own checkout: client.checkout.create(customer, "
            f"addon={first!r}, provider={provider!r}, ...)",
        )
    recurring = [x for x in extras if x.recurring]
    if provider == "razorpay" and recurring:
        raise ProviderUnsupportedError(
            "razorpay subscription add-ons are one-time upfront charges, not recurring items",
            field="addons",
            hint=f"sell {recurring[0].key!r} as its own subscription: client.checkout.create("
            f"customer, addon={recurring[0].key!r}, provider='razorpay', ...)",
        )
    cadence = (main.price.interval, main.price.interval_count)
    for line in recurring:
        if provider in _ONE_CADENCE and (line.price.interval, line.price.interval_count) != cadence:
            raise ProviderUnsupportedError(
                f"{provider} bills a subscription's items on one cadence; add-on {line.key!r} "
                f"has no price every {main.price.interval_count} {main.price.interval}",
                field=f"addons.{line.key}",
                hint="give the add-on a price on the plan's interval, or sell it separately",
            )
