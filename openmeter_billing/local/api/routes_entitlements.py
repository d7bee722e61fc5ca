"""Customer entitlements (v2), their values (v1 and v2), customer access, and the admin lists.

One active entitlement per customer and feature (409 with ``conflictingEntityId``); entitlements
are immutable, so a change is an override (soft delete plus create, 201). Deletion is historical:
a value read for an earlier time still sees the entitlement.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from openmeter_billing.local._time import interval_min_length, truncate_minute
from openmeter_billing.local.api.entitlement_math import omit_false_access, period_of, value_json
from openmeter_billing.local.api.inputs import KEY_PATTERN, ULID, Fields
from openmeter_billing.local.api.lookups import (
    active_for_feature,
    entitlement_of,
    find_feature,
    live_customer,
)
from openmeter_billing.local.api.problems import bad_request, conflict, not_found
from openmeter_billing.local.api.render import iso, page_of, period_json
from openmeter_billing.local.api.router import Context, Reply, Router
from openmeter_billing.local.api.routes_grants import build_grant, read_period
from openmeter_billing.local.state.ids import is_ulid
from openmeter_billing.local.state.store import CustomerRecord, EntitlementRecord, State

__all__ = ["register"]

_TYPES = ("metered", "boolean", "static")


def _measure_from(body: Fields, now: datetime, period_start: datetime) -> datetime:
    value = body.raw("measureUsageFrom")
    if value is None or value == "NOW":
        return truncate_minute(now)
    if value == "CURRENT_PERIOD_START":
        return period_start
    moment = body.datetime("measureUsageFrom")
    assert moment is not None
    return truncate_minute(moment)


def _read_issue(body: Fields) -> tuple[float | None, int | None]:
    issue = body.obj("issue")
    if issue is not None:
        if body.has("issueAfterReset"):
            raise bad_request("issue and issueAfterReset are mutually exclusive", field="issue")
        amount = issue.number("amount", minimum=0)
        if amount is None:
            raise bad_request("issue.amount: is required", field="issue.amount")
        return amount, issue.integer("priority", minimum=1, maximum=255) or 1
    amount = body.number("issueAfterReset", minimum=0)
    priority = body.integer("issueAfterResetPriority", minimum=1, maximum=255)
    return amount, (priority or 1) if amount is not None else None


def _build(ctx: Context, customer: CustomerRecord, data: dict[str, Any]) -> EntitlementRecord:
    """Validate an ``EntitlementV2CreateInputs`` body into a record (not stored yet)."""
    body = Fields(data)
    kind = body.enum("type", _TYPES, required=True)
    key = body.string("featureKey", min_len=1, max_len=64, pattern=KEY_PATTERN)
    feature_id = body.string("featureId", pattern=ULID)
    if key is None and feature_id is None:
        raise bad_request("featureKey or featureId is required", field="featureKey")
    feature = find_feature(ctx.state, feature_id or str(key))
    if feature.archived_at is not None:
        raise bad_request(f"feature {feature.key} is archived", field="featureKey")
    if key is not None and feature.key != key:
        raise bad_request("featureKey and featureId name different features", field="featureKey")
    now = ctx.clock.now()
    period = read_period(body, "usagePeriod", truncate_minute(now))
    if period is not None and interval_min_length(period.parsed).total_seconds() < 3600:
        raise bad_request("usagePeriod.interval: must be at least one hour", field="usagePeriod")
    record = EntitlementRecord(
        id=ctx.new_id(),
        type=str(kind),
        customer_id=customer.id,
        feature_id=feature.id,
        feature_key=feature.key,
        created_at=now,
        updated_at=now,
        metadata=body.string_map("metadata"),
        usage_period=period,
    )
    if kind == "metered":
        _fill_metered(ctx, record, body, feature.meter_slug)
    elif body.has("config") and kind == "boolean":
        raise bad_request("config: boolean entitlements take no config", field="config")
    if kind == "static":
        record.config = _static_config(body)
    return record


def _fill_metered(ctx: Context, record: EntitlementRecord, body: Fields, meter: str | None) -> None:
    if meter is None:
        raise bad_request(
            f"feature {record.feature_key} has no meter; metered entitlements need one",
            field="featureKey",
        )
    if record.usage_period is None:
        raise bad_request("usagePeriod: is required for metered entitlements", field="usagePeriod")
    if body.has("config"):
        raise bad_request("config: metered entitlements take no config", field="config")
    record.is_soft_limit = body.boolean("isSoftLimit")
    record.preserve_overage_at_reset = body.boolean("preserveOverageAtReset")
    record.issue_amount, record.issue_priority = _read_issue(body)
    if record.issue_amount and body.has("grants"):
        raise bad_request("issue and grants are mutually exclusive", field="grants")
    now = ctx.clock.now()
    start = record.usage_period.recurrence().last_at_or_before(now)
    record.measure_usage_from = _measure_from(body, now, start)


def _static_config(body: Fields) -> str:
    config = body.required_string("config")
    try:
        parsed = json.loads(config)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise bad_request(
            'config: must be a string holding a JSON object, e.g. "{\\"seats\\": 5}"',
            field="config",
        )
    return config


def _default_grants(ctx: Context, record: EntitlementRecord, data: dict[str, Any]) -> list[Any]:
    """The ``issue`` grant and the ``grants`` of a metered create body, validated."""
    if record.type != "metered":
        return []
    grants = []
    now = ctx.clock.now()
    if record.issue_amount:
        grants.append(
            build_grant(
                ctx,
                record,
                Fields(
                    {
                        "amount": record.issue_amount,
                        "priority": record.issue_priority,
                        "effectiveAt": iso(period_of(ctx.state, record, now)[0]),
                        "minRolloverAmount": record.issue_amount,
                        "maxRolloverAmount": record.issue_amount,
                        "annotations": {"issueAfterReset": True},
                    }
                ),
            )
        )
    extra = data.get("grants") or []
    if not isinstance(extra, list):
        raise bad_request("grants: must be a list", field="grants")
    for i, raw in enumerate(extra):
        if not isinstance(raw, dict):
            raise bad_request(f"grants[{i}]: must be an object", field=f"grants[{i}]")
        grants.append(build_grant(ctx, record, Fields(raw, f"grants[{i}].")))
    return grants


def entitlement_json(state: State, e: EntitlementRecord, now: datetime) -> dict[str, Any]:
    customer = state.customers[e.customer_id]
    doc: dict[str, Any] = {
        "type": e.type,
        "id": e.id,
        "featureKey": e.feature_key,
        "featureId": e.feature_id,
        "customerId": e.customer_id,
        "createdAt": iso(e.created_at),
        "updatedAt": iso(e.updated_at),
        "activeFrom": iso(e.created_at),
    }
    if customer.key:
        doc["customerKey"] = customer.key
    if e.metadata is not None:
        doc["metadata"] = e.metadata
    if e.deleted_at is not None:
        doc["deletedAt"] = doc["activeTo"] = iso(e.deleted_at)
    if e.usage_period is not None:
        start, end = period_of(state, e, now)
        doc["usagePeriod"] = period_json(e.usage_period)
        doc["currentUsagePeriod"] = {"from": iso(start), "to": iso(end)}
    if e.type == "static":
        doc["config"] = e.config
    if e.type == "metered":
        assert e.measure_usage_from is not None
        doc["lastReset"] = doc["currentUsagePeriod"]["from"]
        doc["measureUsageFrom"] = iso(e.measure_usage_from)
        doc["isSoftLimit"] = e.is_soft_limit
        doc["preserveOverageAtReset"] = e.preserve_overage_at_reset
        if e.issue_amount:
            doc["issue"] = {"amount": e.issue_amount, "priority": e.issue_priority}
            doc["issueAfterReset"] = e.issue_amount
            doc["issueAfterResetPriority"] = e.issue_priority
    return doc


def _store(
    ctx: Context, customer: CustomerRecord, data: dict[str, Any], replacing: str | None
) -> Reply:
    record = _build(ctx, customer, data)
    now = ctx.clock.now()
    existing = active_for_feature(ctx.state, customer.id, record.feature_key, now)
    if existing is not None and existing.id != replacing:
        raise conflict(
            f"entitlement with id {existing.id} already exists for feature {record.feature_id} "
            f"and customer {customer.id}",
            existing.id,
        )
    grants = _default_grants(ctx, record, data)
    if replacing is not None:
        old = ctx.state.entitlements[replacing]
        old.deleted_at = old.updated_at = now
    ctx.state.add_entitlement(record)
    for grant in grants:
        ctx.state.add_grant(grant)
    return Reply(201, entitlement_json(ctx.state, record, now))


def _sorted_page(ctx: Context, items: list[EntitlementRecord]) -> Reply:
    q = ctx.query
    order_by = q.enum("orderBy", ("createdAt", "updatedAt")) or "createdAt"
    descending = q.descending()
    items.sort(
        key=(lambda e: e.id) if order_by == "createdAt" else (lambda e: (e.updated_at, e.id)),
        reverse=descending,
    )
    now = ctx.clock.now()
    return Reply(200, page_of(items, q, lambda e: entitlement_json(ctx.state, e, now)))


def _value_time(ctx: Context) -> datetime:
    return ctx.query.datetime("time") or ctx.clock.now()


def _value(ctx: Context, *, v2: bool) -> Reply:
    customer = live_customer(ctx.state, ctx.params["customerIdOrKey"])
    ref = ctx.params.get("entitlementIdOrFeatureKey") or ctx.params["featureKey"]
    at = _value_time(ctx)
    if is_ulid(ref) and v2:
        ent = ctx.state.entitlements.get(ref)
        if ent is None or ent.customer_id != customer.id:
            raise not_found(f"entitlement not found: {ref}")
    else:
        find_feature(ctx.state, ref)  # an unknown feature is 404; a known one without access is 200
        ent = active_for_feature(ctx.state, customer.id, ref, at)
    doc = value_json(ctx.state, ent, at, v2=v2)
    return Reply(200, omit_false_access(doc) if v2 else doc)


def register(router: Router) -> None:
    base = "/api/v2/customers/{customerIdOrKey}/entitlements"

    @router.route("POST", base)
    def create(ctx: Context) -> Reply:
        customer = live_customer(ctx.state, ctx.params["customerIdOrKey"])
        return _store(ctx, customer, ctx.json_object(), None)

    @router.route("GET", base)
    def list_(ctx: Context) -> Reply:
        customer = live_customer(ctx.state, ctx.params["customerIdOrKey"])
        include_deleted = ctx.query.boolean("includeDeleted")
        items = [
            e
            for e in ctx.state.entitlements_of(customer.id)
            if include_deleted or e.deleted_at is None
        ]
        return _sorted_page(ctx, items)

    @router.route("GET", base + "/{entitlementIdOrFeatureKey}")
    def get(ctx: Context) -> Reply:
        return Reply(200, entitlement_json(ctx.state, entitlement_of(ctx), ctx.clock.now()))

    @router.route("PUT", base + "/{entitlementIdOrFeatureKey}/override")
    def override(ctx: Context) -> Reply:
        old = entitlement_of(ctx)
        if old.deleted_at is not None:
            raise bad_request(f"entitlement {old.id} is already deleted")
        customer = ctx.state.customers[old.customer_id]
        return _store(ctx, customer, ctx.json_object(), old.id)

    @router.route("DELETE", base + "/{entitlementIdOrFeatureKey}")
    def delete(ctx: Context) -> Reply:
        ent = entitlement_of(ctx)
        if ent.deleted_at is not None:
            raise not_found(f"entitlement not found: {ent.id}")
        ent.deleted_at = ent.updated_at = ctx.clock.now()
        return Reply(204)

    router.route("GET", base + "/{entitlementIdOrFeatureKey}/value")(lambda c: _value(c, v2=True))
    router.route("GET", "/api/v1/customers/{customerIdOrKey}/entitlements/{featureKey}/value")(
        lambda c: _value(c, v2=False)
    )

    @router.route("GET", "/api/v1/customers/{customerIdOrKey}/access")
    def access(ctx: Context) -> Reply:
        customer = live_customer(ctx.state, ctx.params["customerIdOrKey"])
        now = ctx.clock.now()
        values = {}
        for ent in ctx.state.entitlements.values():
            if ent.customer_id == customer.id and ent.active_at(now):
                values[ent.feature_key] = omit_false_access(
                    value_json(ctx.state, ent, now, v2=True)
                )
        return Reply(200, {"entitlements": values})

    @router.route("GET", "/api/v2/entitlements")
    def list_all(ctx: Context) -> Reply:
        q = ctx.query
        features, kinds = set(q.list("feature")), set(q.list("entitlementType"))
        keys, ids = set(q.list("customerKeys")), set(q.list("customerIds"))
        exclude_inactive = q.boolean("excludeInactive")
        now = ctx.clock.now()
        items = []
        for e in ctx.state.entitlements.values():
            c = ctx.state.customers[e.customer_id]
            if (
                (not features or {e.feature_key, e.feature_id} & features)
                and (not kinds or e.type in kinds)
                and (not keys or c.key in keys)
                and (not ids or c.id in ids)
                and (not exclude_inactive or e.active_at(now))
            ):
                items.append(e)
        return _sorted_page(ctx, items)

    @router.route("GET", "/api/v2/entitlements/{entitlementId}")
    def get_by_id(ctx: Context) -> Reply:
        ent = ctx.state.entitlements.get(ctx.params["entitlementId"])
        if ent is None:
            raise not_found(f"entitlement not found: {ctx.params['entitlementId']}")
        return Reply(200, entitlement_json(ctx.state, ent, ctx.clock.now()))
