"""The billing catalog as code: meters, features, plans, add-ons and top-ups in one typed value.

One definition owned by the application is the source of truth; OpenMeter and every payment
provider are compiled from it, so no dashboard drifts on its own.

```python
catalog = define_catalog(
    meters={"tokens": Meter(event_type="ai_tokens", aggregation="SUM", value_property="$.tokens")},
    features={"ai_tokens": Feature(type="metered", meter="tokens")},
    plans={
        "pro": Plan(
            name="Pro",
            entitlements={"ai_tokens": MeteredEntitlement(amount=100_000, reset="month")},
            prices={"monthly": Price(amount=2000, currency="USD", interval="month")},
        )
    },
)
```

Items live in maps keyed by their *catalog name*; every reference (a feature's meter, an
entitlement's feature, an add-on's compatible plans, a top-up's feature) uses that name. ``key``
is the OpenMeter key and defaults to the name. Models are frozen; value rules (key patterns,
currencies, amounts, references) are checked by `validate_catalog` so that every problem is
reported at once instead of stopping at the first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    model_validator,
)
from typing_extensions import Self

from .._exceptions import CatalogError, CatalogIssue

__all__ = [
    "AGGREGATIONS",
    "DEFAULT_TOPUP_PRIORITY",
    "ENTITLEMENT_RESETS",
    "EXPIRATION_DURATIONS",
    "KEY_PATTERN",
    "PRICE_INTERVALS",
    "AddOn",
    "BooleanEntitlement",
    "Catalog",
    "Entitlement",
    "Expiration",
    "Feature",
    "FeatureType",
    "Meter",
    "MeteredEntitlement",
    "Plan",
    "Price",
    "Rollover",
    "StaticEntitlement",
    "TopUp",
    "TopUpGrant",
    "define_catalog",
]

#: OpenMeter's pattern for meter slugs and feature keys (1 to 64 characters).
KEY_PATTERN = r"^[a-z0-9]+(?:_[a-z0-9]+)*$"
#: Meter aggregations OpenMeter knows.
AGGREGATIONS = ("SUM", "COUNT", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST")
#: Usage-period lengths of a metered entitlement.
ENTITLEMENT_RESETS = ("day", "week", "month", "year")
#: Billing intervals of a price; plans and add-on subscriptions recur, top-ups are ``one_time``.
PRICE_INTERVALS = ("day", "week", "month", "year", "one_time")
#: Units of a top-up grant's expiration, as OpenMeter spells them.
EXPIRATION_DURATIONS = ("HOUR", "DAY", "WEEK", "MONTH", "YEAR")

#: Priority of a top-up grant whose catalog entry sets none (the plan allowance burns first).
DEFAULT_TOPUP_PRIORITY = 10

FeatureType = Literal["metered", "boolean", "static"]
Metadata = dict[str, str]


def _finite_number(value: float) -> float:
    # JSON has no NaN or infinity, and OpenMeter reads numbers as 64-bit floats.
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite:
        raise ValueError("must be a finite number (not NaN, infinity or beyond a 64-bit float)")
    return value


Number = Annotated[StrictInt | float, AfterValidator(_finite_number)]


class _Model(BaseModel):
    # Frozen: a catalog is a value compiled many times; nothing may change it half-way.
    # extra="forbid": a misspelt field in a catalog file is an error, not silently ignored.
    model_config = ConfigDict(frozen=True, extra="forbid")


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class Meter(_Model):
    """How usage events aggregate: ``event_type`` selects events, ``value_property`` the number.

    ``aggregation`` is one of `AGGREGATIONS` (any case); COUNT takes no ``value_property``, every
    other aggregation needs a JSONPath such as ``$.tokens``.
    """

    event_type: str
    aggregation: Annotated[str, BeforeValidator(_upper)]
    value_property: str | None = None
    group_by: dict[str, str] = Field(default_factory=dict)
    key: str | None = None
    name: str | None = None
    description: str | None = None
    metadata: Metadata = Field(default_factory=dict)


class Feature(_Model):
    """Something a plan grants: ``metered`` (needs ``meter``), ``boolean`` or ``static``.

    ``config`` is the default JSON object of a static feature, used by static entitlements that
    give none. ``meter_group_by_filters`` narrows a shared meter, e.g. ``{"model": "gpt-4"}``.
    """

    type: FeatureType
    meter: str | None = None
    meter_group_by_filters: dict[str, str] = Field(default_factory=dict)
    config: dict[str, Any] | None = None
    key: str | None = None
    name: str | None = None
    description: str | None = None
    metadata: Metadata = Field(default_factory=dict)


class Rollover(_Model):
    """Carry unused allowance into the next usage period (see `validate_catalog`: not expressible
    on OpenMeter plan entitlements, whose allowance grant is restored to exactly ``amount``)."""

    max_amount: Number
    min_amount: Number = 0


class MeteredEntitlement(_Model):
    """``amount`` units per ``reset`` period of a metered feature.

    ``soft_limit`` keeps access when the balance runs out (bill the overage instead);
    ``preserve_overage`` carries overage into the next period instead of forgiving it.
    """

    type: Literal["metered"] = "metered"
    amount: Number
    reset: Annotated[str, BeforeValidator(_lower)] = "month"
    soft_limit: bool = False
    preserve_overage: bool = False
    rollover: Rollover | None = None
    metadata: Metadata = Field(default_factory=dict)


class BooleanEntitlement(_Model):
    """On/off access to a boolean feature. ``enabled=False`` grants nothing (no entitlement)."""

    type: Literal["boolean"] = "boolean"
    enabled: bool = True
    metadata: Metadata = Field(default_factory=dict)


class StaticEntitlement(_Model):
    """A static feature with a JSON object ``config`` (the feature's ``config`` when omitted)."""

    type: Literal["static"] = "static"
    config: dict[str, Any] | None = None
    metadata: Metadata = Field(default_factory=dict)


Entitlement = Annotated[
    MeteredEntitlement | BooleanEntitlement | StaticEntitlement, Field(discriminator="type")
]


def _coerce_entitlement(value: object) -> object:
    """Shorthands: a bool is boolean, a number metered, a string static ``{"value": s}``."""
    if isinstance(value, bool):
        return {"type": "boolean", "enabled": value}
    if isinstance(value, (int, float)):
        return {"type": "metered", "amount": value}
    if isinstance(value, str):
        return {"type": "static", "config": {"value": value}}
    if isinstance(value, Mapping) and "type" not in value:
        data = dict(value)
        if "amount" in data:
            return {"type": "metered", **data}
        if "config" in data:
            if isinstance(data["config"], str):
                data["config"] = {"value": data["config"]}
            return {"type": "static", **data}
        return {"type": "boolean", **data}
    return value


def _coerce_entitlements(value: object) -> object:
    if isinstance(value, Mapping):
        return {name: _coerce_entitlement(item) for name, item in value.items()}
    return value


Entitlements = Annotated[dict[str, Entitlement], BeforeValidator(_coerce_entitlements)]


class Price(_Model):
    """A price in integer minor units (``2000`` USD is $20.00) of an ISO 4217 ``currency``.

    ``interval`` is one of `PRICE_INTERVALS`; ``lookup_key`` defaults to ``<item key>:<price name>``
    when compiled; ``provider_ids`` maps a provider (``stripe``) to its existing price id.
    """

    amount: StrictInt
    currency: Annotated[str, BeforeValidator(_upper)]
    interval: Annotated[str, BeforeValidator(_lower)]
    interval_count: StrictInt = 1
    trial_days: StrictInt | None = None
    lookup_key: str | None = None
    provider_ids: dict[str, str] = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)


class Plan(_Model):
    """A recurring subscription: what it grants (``entitlements``) and costs (``prices``)."""

    entitlements: Entitlements = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)
    key: str | None = None
    name: str | None = None
    description: str | None = None
    provider_ids: dict[str, str] = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)


class AddOn(_Model):
    """Extra entitlements bought on top of a plan, recurring or one-time.

    ``compatible_plans`` (plan names) defaults to every plan; ``multiple`` allows buying it more
    than once (its metered amounts are multiplied by the quantity), up to ``max_quantity``.
    """

    entitlements: Entitlements = Field(default_factory=dict)
    prices: dict[str, Price] = Field(default_factory=dict)
    compatible_plans: tuple[str, ...] | None = None
    multiple: bool = False
    max_quantity: StrictInt | None = None
    key: str | None = None
    name: str | None = None
    description: str | None = None
    provider_ids: dict[str, str] = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)


class Expiration(_Model):
    """A grant expires ``count`` ``duration`` units after it takes effect (``YEAR``, 1)."""

    duration: Annotated[str, BeforeValidator(_upper)]
    count: StrictInt = 1


class TopUpGrant(_Model):
    """How a bought top-up becomes an OpenMeter grant.

    ``priority`` 1 (burns first) to 255, default `DEFAULT_TOPUP_PRIORITY` (10: after the plan's
    allowance, which OpenMeter issues at priority 1, so bought credit lasts longest);
    ``min_rollover_amount``/``max_rollover_amount`` bound what survives a usage-period reset
    (OpenMeter keeps the whole grant by default).
    """

    priority: StrictInt | None = None
    expiration: Expiration | None = None
    min_rollover_amount: Number | None = None
    max_rollover_amount: Number | None = None
    metadata: Metadata = Field(default_factory=dict)


class TopUp(_Model):
    """A one-time purchase of ``amount`` units of a metered ``feature`` (a credit pack)."""

    feature: str
    amount: Number
    prices: dict[str, Price] = Field(default_factory=dict)
    grant: TopUpGrant = Field(default_factory=TopUpGrant)
    compatible_plans: tuple[str, ...] | None = None
    key: str | None = None
    name: str | None = None
    description: str | None = None
    provider_ids: dict[str, str] = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=dict)


class Catalog(_Model):
    """The whole catalog. Build it with `define_catalog`; check it with `Catalog.check`.

    After construction every item's ``key`` is set (its catalog name unless given).
    """

    meters: dict[str, Meter] = Field(default_factory=dict)
    features: dict[str, Feature] = Field(default_factory=dict)
    plans: dict[str, Plan] = Field(default_factory=dict)
    addons: dict[str, AddOn] = Field(default_factory=dict)
    topups: dict[str, TopUp] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _default_keys(self) -> Self:
        for section in ("meters", "features", "plans", "addons", "topups"):
            items: dict[str, Any] = getattr(self, section)
            filled = {
                name: item if item.key is not None else item.model_copy(update={"key": name})
                for name, item in items.items()
            }
            # The model is frozen for callers; filling defaults here is part of construction.
            object.__setattr__(self, section, filled)
        return self

    @classmethod
    def from_data(cls, data: object) -> Catalog:
        """Build a catalog from plain data (parsed JSON, TOML or YAML), without rule checks.

        Raises:
            CatalogError: the data has the wrong shape; one issue per problem, all at once.
        """
        if not isinstance(data, Mapping):
            issue = CatalogIssue(
                path="$",
                message="a catalog must be an object with meters, features, plans, addons, topups",
                value=type(data).__name__,
                hint="pass a dict (or a JSON/TOML/YAML file whose top level is a table)",
                code="invalid_field",
            )
            raise CatalogError([issue])
        body = {k: v for k, v in data.items() if k != "$schema"}
        try:
            return cls.model_validate(body)
        except pydantic.ValidationError as exc:
            issues: dict[str, CatalogIssue] = {}
            for error in exc.errors():
                issue = _issue_from_error(error)
                issues.setdefault(issue.path, issue)  # a union reports once per member
            raise CatalogError(list(issues.values())) from None

    def check(self) -> Self:
        """Raise `CatalogError` listing every issue `validate_catalog` finds; else return self."""
        from .validate import validate_catalog

        issues = validate_catalog(self)
        if issues:
            raise CatalogError(issues)
        return self


_ENTITLEMENT_TAGS = {"metered", "boolean", "static"}
_NUMBER_MEMBERS = {"int", "float"}


def _issue_from_error(error: Any) -> CatalogIssue:
    """Turn one pydantic error into a catalog issue with a dotted path."""
    loc = [str(part) for part in error["loc"]]
    # A tagged union adds the tag to the location (entitlements.x.metered.amount): drop it.
    parts = [
        part
        for i, part in enumerate(loc)
        if not (part in _ENTITLEMENT_TAGS and i >= 2 and loc[i - 2] == "entitlements")
    ]
    kind = error["type"]
    message = str(error["msg"])
    if kind == "value_error":  # our own validators: their text without pydantic's prefix
        message = str(error["ctx"]["error"])
    if parts and parts[-1] in _NUMBER_MEMBERS:
        parts.pop()
        message = "Input should be a number"
    hint = None
    if kind == "extra_forbidden":
        hint = "remove it or fix its spelling; catalog fields are snake_case"
    elif kind == "missing":
        hint = "add this field"
    return CatalogIssue(
        path=".".join(parts) or "$",
        message=message,
        value=error.get("input") if kind != "missing" else None,
        hint=hint,
        code="invalid_field",
    )


def define_catalog(
    data: Mapping[str, Any] | None = None,
    /,
    *,
    meters: Mapping[str, Meter | Mapping[str, Any]] | None = None,
    features: Mapping[str, Feature | Mapping[str, Any]] | None = None,
    plans: Mapping[str, Plan | Mapping[str, Any]] | None = None,
    addons: Mapping[str, AddOn | Mapping[str, Any]] | None = None,
    topups: Mapping[str, TopUp | Mapping[str, Any]] | None = None,
    check: bool = True,
) -> Catalog:
    """Build and check a catalog, from keyword arguments or from one plain-data mapping.

    Raises:
        CatalogError: the catalog is malformed or breaks a rule; ``.issues`` lists every one.
    """
    sections: dict[str, Mapping[str, Any] | None] = {
        "meters": meters,
        "features": features,
        "plans": plans,
        "addons": addons,
        "topups": topups,
    }
    merged: dict[str, Any] = dict(data or {})
    for name, value in sections.items():
        if value is not None:
            merged[name] = dict(value)
    catalog = Catalog.from_data(merged)
    return catalog.check() if check else catalog
