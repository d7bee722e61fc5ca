"""Compile a catalog into OpenMeter request bodies: pure functions, no I/O.

Every body is JSON-ready, in OpenMeter's wire format (camelCase), and valid against its OpenAPI
spec: meters for ``POST /api/v1/meters``, features for ``POST /api/v1/features``, entitlements for
``POST /api/v2/customers/{customer}/entitlements`` and top-up grants for
``POST /api/v2/customers/{customer}/entitlements/{featureKey}/grants``.

Every body carries metadata markers (``openmeter_billing.*``, string values only) so a reconciler
can tell the entitlements and grants this library created from ones made by hand.

Merge rule when a plan and its add-ons grant the same feature:

* metered: amounts add up (an add-on's amount times its quantity); the usage period is the plan's
  (validation requires add-ons to use the same reset; add-ons alone that disagree raise
  `InvalidInputError`); soft limit and preserve-overage are on when any contributor sets them;
* boolean: enabled when any contributor enables it (``enabled=False`` alone creates nothing);
* static: the last contributor wins: the plan first, then add-ons in the order given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

from .._exceptions import InvalidInputError
from .dsl import (
    DEFAULT_TOPUP_PRIORITY,
    AddOn,
    BooleanEntitlement,
    Catalog,
    Entitlement,
    MeteredEntitlement,
    Plan,
    StaticEntitlement,
    TopUp,
)

__all__ = [
    "ADDONS_KEY",
    "FEATURE_KEY",
    "FEATURE_TYPE_KEY",
    "IDEMPOTENCY_KEY",
    "MANAGED_KEY",
    "PAYMENT_ID_KEY",
    "PLAN_KEY",
    "PROVIDER_KEY",
    "RESERVED_METADATA_KEYS",
    "TOPUP_KEY",
    "compile_openmeter_entitlements",
    "compile_openmeter_features",
    "compile_openmeter_meters",
    "compile_openmeter_topup_grant",
    "topup_feature_key",
]

logger = logging.getLogger("openmeter_billing")

#: ``"true"`` on everything this library creates in OpenMeter.
MANAGED_KEY = "openmeter_billing.managed"
#: The catalog plan key an entitlement was compiled from.
PLAN_KEY = "openmeter_billing.plan"
#: Comma-separated ``<add-on key>:<quantity>`` pairs that contributed to an entitlement.
ADDONS_KEY = "openmeter_billing.addons"
#: A feature's catalog type (OpenMeter cannot tell boolean from static features apart).
FEATURE_TYPE_KEY = "openmeter_billing.feature_type"
#: The catalog top-up key a grant was compiled from.
TOPUP_KEY = "openmeter_billing.topup"
#: The feature key a top-up grant adds balance to.
FEATURE_KEY = "openmeter_billing.feature"
#: The caller's idempotency key of a top-up grant (one payment, one grant).
IDEMPOTENCY_KEY = "openmeter_billing.idempotency_key"
#: The payment provider's payment id of a top-up.
PAYMENT_ID_KEY = "openmeter_billing.payment_id"
#: The payment provider that took a top-up's payment.
PROVIDER_KEY = "openmeter_billing.provider"
#: Grant metadata keys callers may not set themselves.
RESERVED_METADATA_KEYS = frozenset(
    {MANAGED_KEY, TOPUP_KEY, FEATURE_KEY, IDEMPOTENCY_KEY, PAYMENT_ID_KEY, PROVIDER_KEY}
)

ItemT = TypeVar("ItemT", Plan, AddOn, TopUp)


def compile_openmeter_meters(catalog: Catalog) -> list[dict[str, Any]]:
    """``MeterCreate`` bodies for every meter of a valid catalog, in catalog order."""
    catalog.check()
    bodies: list[dict[str, Any]] = []
    for name, meter in catalog.meters.items():
        body: dict[str, Any] = {
            "slug": meter.key or name,
            "aggregation": meter.aggregation,
            "eventType": meter.event_type,
        }
        _put(body, "name", meter.name)
        _put(body, "description", meter.description)
        _put(body, "valueProperty", meter.value_property)
        _put(body, "groupBy", dict(meter.group_by) or None)
        body["metadata"] = {**meter.metadata, MANAGED_KEY: "true"}
        bodies.append(body)
    return bodies


def compile_openmeter_features(catalog: Catalog) -> list[dict[str, Any]]:
    """``FeatureCreateInputs`` bodies for every feature of a valid catalog, in catalog order."""
    catalog.check()
    bodies: list[dict[str, Any]] = []
    for name, feature in catalog.features.items():
        key = feature.key or name
        body: dict[str, Any] = {"key": key, "name": feature.name or key}
        if feature.meter is not None:
            meter = catalog.meters[feature.meter]
            body["meterSlug"] = meter.key or feature.meter
            _put(body, "meterGroupByFilters", dict(feature.meter_group_by_filters) or None)
        body["metadata"] = {
            **feature.metadata,
            MANAGED_KEY: "true",
            FEATURE_TYPE_KEY: feature.type,
        }
        bodies.append(body)
    return bodies


def compile_openmeter_entitlements(
    catalog: Catalog,
    plan_key: str,
    addons: Mapping[str, int] | Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Entitlement create bodies (v2) for a plan plus add-ons, one per feature.

    Args:
        catalog: A valid catalog.
        plan_key: The plan's catalog name or key.
        addons: Add-on names or keys, or a mapping of them to quantities (default 1 each).

    Raises:
        CatalogError: the catalog is invalid.
        InvalidInputError: an unknown plan or add-on, an add-on not compatible with the plan, or
            a quantity the add-on does not allow.
    """
    catalog.check()
    plan_name, plan = _find(catalog.plans, plan_key, "plan", "plan_key")
    chosen = _resolve_addons(catalog, plan_name, addons)
    # feature name -> [(add-on key or None for the plan, entitlement, quantity)]
    grants: dict[str, list[tuple[str | None, Entitlement, int]]] = {}
    for feature_name, entitlement in plan.entitlements.items():
        grants.setdefault(feature_name, []).append((None, entitlement, 1))
    for addon_key, addon, quantity in chosen:
        for feature_name, entitlement in addon.entitlements.items():
            grants.setdefault(feature_name, []).append((addon_key, entitlement, quantity))
    bodies = []
    for feature_name, contributions in grants.items():
        body = _merge(catalog, feature_name, contributions)
        if body is not None:
            body["metadata"] = _entitlement_metadata(plan.key or plan_name, contributions)
            bodies.append(body)
    return bodies


def _resolve_addons(
    catalog: Catalog, plan_name: str, addons: Mapping[str, int] | Sequence[str]
) -> list[tuple[str, AddOn, int]]:
    if isinstance(addons, str):
        addons = [addons]
    wanted = addons.items() if isinstance(addons, Mapping) else ((ref, 1) for ref in addons)
    chosen: list[tuple[str, AddOn, int]] = []
    for ref, quantity in wanted:
        name, addon = _find(catalog.addons, ref, "add-on", "addons")
        field = f"addons.{ref}"
        if addon.compatible_plans is not None and plan_name not in addon.compatible_plans:
            raise InvalidInputError(
                f"add-on {ref!r} cannot be bought with plan {plan_name!r}",
                field=field,
                hint=f"compatible plans: {', '.join(addon.compatible_plans)}",
            )
        limit = addon.max_quantity if addon.multiple else 1
        if not _is_positive_int(quantity):  # callers may pass anything at runtime
            raise InvalidInputError(
                f"quantity must be a positive integer, got {quantity!r}", field=field
            )
        if limit is not None and quantity > limit:
            raise InvalidInputError(
                f"add-on {ref!r} allows at most {limit}, got {quantity}",
                field=field,
                hint="set multiple/max_quantity on the add-on to sell more",
            )
        chosen.append((addon.key or name, addon, quantity))
    return chosen


def _merge(
    catalog: Catalog,
    feature_name: str,
    contributions: list[tuple[str | None, Entitlement, int]],
) -> dict[str, Any] | None:
    feature = catalog.features[feature_name]
    key = feature.key or feature_name
    entitlements = [entitlement for _, entitlement, _ in contributions]
    if isinstance(entitlements[0], MeteredEntitlement):
        metered = [e for e in entitlements if isinstance(e, MeteredEntitlement)]
        resets = sorted({e.reset for e in metered})
        if len(resets) > 1:
            # Validation catches plan vs add-on; two add-ons alone can still disagree.
            raise InvalidInputError(
                f"the chosen add-ons reset {key!r} on different periods: {', '.join(resets)}",
                field="addons",
                hint="buy add-ons whose metered entitlements share one reset",
            )
        amount = sum(
            e.amount * quantity
            for _, e, quantity in contributions
            if isinstance(e, MeteredEntitlement)
        )
        body: dict[str, Any] = {
            "type": "metered",
            "featureKey": key,
            "usagePeriod": {"interval": metered[0].reset.upper()},
            "isSoftLimit": any(e.soft_limit for e in metered),
            "preserveOverageAtReset": any(e.preserve_overage for e in metered),
        }
        if amount > 0:
            # `issue` makes OpenMeter restore this allowance at every reset.
            body["issue"] = {"amount": amount}
        return body
    if isinstance(entitlements[0], BooleanEntitlement):
        enabled = any(isinstance(e, BooleanEntitlement) and e.enabled for e in entitlements)
        return {"type": "boolean", "featureKey": key} if enabled else None
    config: dict[str, Any] | None = None
    for entitlement in entitlements:
        if isinstance(entitlement, StaticEntitlement):
            config = entitlement.config if entitlement.config is not None else feature.config
    # OpenMeter wants the config as a string holding a JSON object.
    text = json.dumps(config or {}, sort_keys=True, separators=(",", ":"))
    return {"type": "static", "featureKey": key, "config": text}


def _entitlement_metadata(
    plan_key: str, contributions: list[tuple[str | None, Entitlement, int]]
) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for _, entitlement, _ in contributions:
        metadata.update(entitlement.metadata)
    metadata[MANAGED_KEY] = "true"
    metadata[PLAN_KEY] = plan_key
    addon_keys = [f"{key}:{quantity}" for key, _, quantity in contributions if key is not None]
    if addon_keys:
        metadata[ADDONS_KEY] = ",".join(addon_keys)
    else:
        metadata.pop(ADDONS_KEY, None)
    return metadata


def topup_feature_key(catalog: Catalog, topup_key: str) -> str:
    """The OpenMeter feature key a top-up's grant is created on (the grant URL needs it)."""
    _, topup = _find(catalog.topups, topup_key, "top-up", "topup_key")
    feature = catalog.features.get(topup.feature)
    if feature is None or feature.key is None:
        return topup.feature
    return feature.key


def compile_openmeter_topup_grant(
    catalog: Catalog,
    topup_key: str,
    *,
    idempotency_key: str,
    effective_at: datetime,
    payment_id: str | None = None,
    provider: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The grant create body (v2) for one bought top-up.

    Metadata is the catalog's grant and top-up metadata, then the caller's ``metadata``, then
    the reserved ``openmeter_billing.*`` keys, which always win: a caller cannot disguise a grant
    as another top-up or reuse an idempotency key by accident.

    Raises:
        CatalogError: the catalog is invalid.
        InvalidInputError: unknown top-up, empty idempotency key, naive ``effective_at`` or
            non-string metadata values.
    """
    catalog.check()
    name, topup = _find(catalog.topups, topup_key, "top-up", "topup_key")
    _check_grant_arguments(idempotency_key, effective_at)
    grant = topup.grant
    body: dict[str, Any] = {"amount": topup.amount, "effectiveAt": _rfc3339(effective_at)}
    # Never omitted: OpenMeter would store 0 (burn before everything), which it refuses on create.
    body["priority"] = grant.priority if grant.priority is not None else DEFAULT_TOPUP_PRIORITY
    if grant.expiration is not None:
        body["expiration"] = {
            "duration": grant.expiration.duration.upper(),
            "count": grant.expiration.count,
        }
    _put(body, "minRolloverAmount", grant.min_rollover_amount)
    _put(body, "maxRolloverAmount", grant.max_rollover_amount)
    body["metadata"] = _grant_metadata(catalog, name, topup, metadata or {})
    body["metadata"][IDEMPOTENCY_KEY] = idempotency_key
    if payment_id is not None:
        body["metadata"][PAYMENT_ID_KEY] = payment_id
    if provider is not None:
        body["metadata"][PROVIDER_KEY] = provider
    return body


def _check_grant_arguments(idempotency_key: str, effective_at: datetime) -> None:
    if not idempotency_key:
        raise InvalidInputError(
            "idempotency_key must be a non-empty string",
            field="idempotency_key",
            hint="use the provider's payment or event id",
        )
    if effective_at.tzinfo is None or effective_at.utcoffset() is None:
        raise InvalidInputError(
            f"effective_at must be timezone-aware, got {effective_at.isoformat()}",
            field="effective_at",
            hint="use datetime.now(timezone.utc)",
        )


def _grant_metadata(
    catalog: Catalog, name: str, topup: TopUp, extra: Mapping[str, str]
) -> dict[str, str]:
    for field, value in extra.items():
        if not isinstance(value, str):
            raise InvalidInputError(
                f"metadata values must be strings, got {type(value).__name__} for {field!r}",
                field=f"metadata.{field}",
                hint="OpenMeter metadata is a map of strings; use str(value) or json.dumps",
            )
    overridden = sorted(RESERVED_METADATA_KEYS.intersection(extra))
    if overridden:
        logger.warning("ignoring reserved top-up grant metadata keys: %s", ", ".join(overridden))
    metadata = {**topup.grant.metadata, **topup.metadata, **extra}
    metadata[MANAGED_KEY] = "true"
    metadata[TOPUP_KEY] = topup.key or name
    metadata[FEATURE_KEY] = topup_feature_key(catalog, name)
    for key in (PAYMENT_ID_KEY, PROVIDER_KEY):
        metadata.pop(key, None)
    return metadata


def _rfc3339(moment: datetime) -> str:
    utc = moment.astimezone(timezone.utc)
    spec = "milliseconds" if utc.microsecond else "seconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _find(items: Mapping[str, ItemT], ref: str, what: str, field: str) -> tuple[str, ItemT]:
    """An item by catalog name, else by key."""
    if ref in items:
        return ref, items[ref]
    for name, item in items.items():
        if item.key == ref:
            return name, item
    known = ", ".join(items) or "(none defined)"
    raise InvalidInputError(f"unknown {what} {ref!r}", field=field, hint=f"use one of: {known}")


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _put(body: dict[str, Any], field: str, value: Any) -> None:
    if value is not None:
        body[field] = value
