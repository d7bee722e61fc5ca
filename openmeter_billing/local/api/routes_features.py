"""``/api/v1/features``: create, list, get, archive.

OpenMeter's rules: keys are unique among non-archived features (409), cannot look like ids, the
meter must exist and aggregate with SUM, COUNT, UNIQUE_COUNT or LATEST (AVG/MIN/MAX cannot back an
entitlement), group-by filters must name the meter's group-by keys. Archiving is irreversible.
"""

from __future__ import annotations

from openmeter_billing.local.api.inputs import KEY_PATTERN, Fields
from openmeter_billing.local.api.lookups import find_feature
from openmeter_billing.local.api.problems import bad_request, conflict, not_found
from openmeter_billing.local.api.render import feature_json, page_of
from openmeter_billing.local.api.router import Context, Reply, Router
from openmeter_billing.local.state.ids import is_ulid
from openmeter_billing.local.state.store import FeatureRecord

__all__ = ["ENTITLEMENT_AGGREGATIONS", "register"]

ENTITLEMENT_AGGREGATIONS = ("SUM", "COUNT", "UNIQUE_COUNT", "LATEST")


def _create(ctx: Context) -> Reply:
    body = Fields(ctx.json_object())
    key = body.required_string("key", min_len=1, max_len=64, pattern=KEY_PATTERN)
    if is_ulid(key):
        raise bad_request("key: must not be a ULID (keys and ids share the path)", field="key")
    name = body.required_string("name")
    meter_slug = body.string("meterSlug", min_len=1, max_len=64, pattern=KEY_PATTERN)
    filters = body.string_map("meterGroupByFilters")
    if meter_slug is not None:
        meter = ctx.state.live_meter(meter_slug)
        if meter is None:
            raise not_found(f"meter not found: {meter_slug}")
        if meter.aggregation not in ENTITLEMENT_AGGREGATIONS:
            raise bad_request(
                f"meterSlug: meter {meter_slug} aggregates with {meter.aggregation}; features need "
                f"one of {', '.join(ENTITLEMENT_AGGREGATIONS)}",
                field="meterSlug",
            )
        unknown = sorted(set(filters or ()) - set(meter.group_by))
        if unknown:
            raise bad_request(
                f"meterGroupByFilters: {unknown} are not group-by keys of meter {meter_slug}",
                field="meterGroupByFilters",
            )
    elif filters:
        raise bad_request("meterGroupByFilters: needs meterSlug", field="meterGroupByFilters")
    existing = ctx.state.feature_by_key(key)
    if existing is not None:
        raise conflict(f"feature with key {key} already exists", existing.id)
    now = ctx.clock.now()
    extra = {
        name_: body.raw(name_)
        for name_ in ("advancedMeterGroupByFilters", "unitCost")
        if body.has(name_)
    }
    record = FeatureRecord(
        id=ctx.new_id(),
        key=key,
        name=name,
        created_at=now,
        updated_at=now,
        metadata=body.string_map("metadata"),
        meter_slug=meter_slug,
        meter_group_by_filters=filters,
        extra=extra,
    )
    ctx.state.features[record.id] = record
    return Reply(201, feature_json(record))


def _list(ctx: Context) -> Reply:
    q = ctx.query
    include_archived = q.boolean("includeArchived")
    slugs = set(q.list("meterSlug"))
    order_by = q.enum("orderBy", ("id", "key", "name", "createdAt", "updatedAt")) or "id"
    descending = q.descending()
    items = [
        f
        for f in ctx.state.features.values()
        if (include_archived or f.archived_at is None) and (not slugs or f.meter_slug in slugs)
    ]
    keys = {
        "id": lambda f: f.id,
        "key": lambda f: f.key,
        "name": lambda f: f.name,
        "createdAt": lambda f: f.id,
        "updatedAt": lambda f: (f.updated_at, f.id),
    }
    items.sort(key=keys[order_by], reverse=descending)
    if q.get("page") is not None or q.get("pageSize") is not None:
        return Reply(200, page_of(items, q, feature_json))
    if q.get("limit") is not None or q.get("offset") is not None:
        limit = q.integer("limit", 100, minimum=1, maximum=1000)
        offset = q.integer("offset", 0, minimum=0, maximum=2**31)
        items = items[offset : offset + limit]
    return Reply(200, [feature_json(f) for f in items])


def register(router: Router) -> None:
    router.route("POST", "/api/v1/features")(_create)
    router.route("GET", "/api/v1/features")(_list)

    @router.route("GET", "/api/v1/features/{featureId}")
    def get(ctx: Context) -> Reply:
        return Reply(200, feature_json(find_feature(ctx.state, ctx.params["featureId"])))

    @router.route("DELETE", "/api/v1/features/{featureId}")
    def archive(ctx: Context) -> Reply:
        record = find_feature(ctx.state, ctx.params["featureId"])
        if record.archived_at is None:
            record.archived_at = record.updated_at = ctx.clock.now()
        return Reply(204)
