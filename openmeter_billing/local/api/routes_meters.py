"""``/api/v1/meters``: create, list, get, update, delete, and meter queries (GET and POST).

A meter sees every stored event of its type, including events ingested before it was created, as
OpenMeter's meters are views over the event store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openmeter_billing.local.api.inputs import KEY_PATTERN, Fields, parse_datetime, parse_time_zone
from openmeter_billing.local.api.problems import bad_request, conflict, not_found
from openmeter_billing.local.api.render import iso, meter_json
from openmeter_billing.local.api.router import Context, Reply, Router
from openmeter_billing.local.meters.index import MeterIndex, MeterSpec, QueryRow, meter_problems
from openmeter_billing.local.state.store import MeterRecord, State

__all__ = ["AGGREGATIONS", "WINDOW_SIZES", "find_meter", "register"]

AGGREGATIONS = ("SUM", "COUNT", "UNIQUE_COUNT", "AVG", "MIN", "MAX", "LATEST")
WINDOW_SIZES = ("MINUTE", "HOUR", "DAY", "MONTH")


def find_meter(state: State, id_or_slug: str) -> MeterRecord:
    found = state.live_meter(id_or_slug)
    if found is None:
        raise not_found(f"meter not found: {id_or_slug}")
    return found


def build_index(state: State, spec: MeterSpec) -> MeterIndex:
    """A meter index filled with every stored event (meters are views over all events)."""
    index = MeterIndex(spec)
    for stored in state.events:
        index.add(stored.event)
    return index


def _spec_of(m: MeterRecord) -> MeterSpec:
    return MeterSpec(
        slug=m.slug,
        event_type=m.event_type,
        aggregation=m.aggregation,  # type: ignore[arg-type]
        value_property=m.value_property,
        group_by=dict(m.group_by),
        event_from=m.event_from,
    )


def _check(spec: MeterSpec) -> None:
    problems = meter_problems(spec)
    if problems:
        field, message = problems[0]
        raise bad_request(f"{field}: {message}", field=field)


def _create(ctx: Context) -> Reply:
    body = Fields(ctx.json_object())
    slug = body.required_string("slug", min_len=1, max_len=64, pattern=KEY_PATTERN)
    aggregation = body.enum("aggregation", AGGREGATIONS, required=True)
    event_type = body.required_string("eventType", min_len=1)
    spec = MeterSpec(
        slug=slug,
        event_type=event_type,
        aggregation=aggregation,  # type: ignore[arg-type]
        value_property=body.string("valueProperty", min_len=1),
        group_by=body.string_map("groupBy") or {},
        event_from=body.datetime("eventFrom"),
    )
    _check(spec)
    if ctx.state.live_meter(slug) is not None:
        raise conflict(f"meter with slug {slug} already exists")
    now = ctx.clock.now()
    record = MeterRecord(
        id=ctx.new_id(),
        slug=slug,
        aggregation=spec.aggregation,
        event_type=event_type,
        created_at=now,
        updated_at=now,
        index=build_index(ctx.state, spec),
        name=body.string("name", min_len=1, max_len=256) or slug,
        description=body.string("description", max_len=1024),
        metadata=body.string_map("metadata"),
        event_from=spec.event_from,
        value_property=spec.value_property,
        group_by=dict(spec.group_by),
    )
    ctx.state.meters[record.id] = record
    return Reply(201, meter_json(record))


def _update(ctx: Context) -> Reply:
    record = find_meter(ctx.state, ctx.params["meterIdOrSlug"])
    body = Fields(ctx.json_object())
    record.name = body.string("name", min_len=1, max_len=256) or record.name
    record.description = body.string("description", max_len=1024)
    record.metadata = body.string_map("metadata")
    group_by = body.string_map("groupBy") or {}
    removed = set(record.group_by) - set(group_by)
    if removed:
        raise bad_request(
            f"groupBy: keys {sorted(removed)} cannot be removed from an existing meter",
            field="groupBy",
        )
    if group_by != record.group_by:
        record.group_by = group_by
        spec = _spec_of(record)
        _check(spec)
        record.index = build_index(ctx.state, spec)
    record.updated_at = ctx.clock.now()
    return Reply(200, meter_json(record))


def _query(ctx: Context, meter: MeterRecord, params: Mapping[str, Any]) -> Reply:
    """Run a meter query from already-decoded parameters (GET query string or POST body)."""
    start = params.get("from") and parse_datetime(params["from"], "from")
    end = params.get("to") and parse_datetime(params["to"], "to")
    window = params.get("windowSize")
    if window is not None and window not in WINDOW_SIZES:
        raise bad_request(
            f"windowSize: {window!r} is not one of {', '.join(WINDOW_SIZES)}", field="windowSize"
        )
    subjects = list(params.get("subject") or [])
    customer_ids = list(params.get("filterCustomerId") or [])
    group_by = list(params.get("groupBy") or [])
    if "customer_id" in group_by and not customer_ids:
        raise bad_request(
            "groupBy: customer_id needs filterCustomerId (the customers to group by)",
            field="groupBy",
        )
    customers = None
    if customer_ids:
        customers = {}
        for cid in customer_ids:
            found = ctx.state.customers.get(cid)
            if found is None:
                raise bad_request(
                    f"filterCustomerId: customer {cid} not found", field="filterCustomerId"
                )
            customers[cid] = found.subjects()
    try:
        rows = meter.index.query(
            start=start or None,
            end=end or None,
            window_size=window,
            tz=parse_time_zone(params.get("windowTimeZone")),
            subjects=subjects or None,
            customers=customers,
            group_by=group_by,
            group_filters=params.get("filterGroupBy") or None,
        )
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    doc: dict[str, Any] = {"data": [_row_json(r) for r in rows]}
    if start:
        doc["from"] = iso(start)
    if end:
        doc["to"] = iso(end)
    if window:
        doc["windowSize"] = window
    return Reply(200, doc)


def _row_json(row: QueryRow) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "value": row.value,
        "windowStart": iso(row.window_start),
        "windowEnd": iso(row.window_end),
        "subject": row.subject,
        "groupBy": dict(row.group_by),
    }
    if row.customer_id is not None:
        doc["customerId"] = row.customer_id
    return doc


def register(router: Router) -> None:
    router.route("POST", "/api/v1/meters")(_create)
    router.route("PUT", "/api/v1/meters/{meterIdOrSlug}")(_update)

    @router.route("GET", "/api/v1/meters")
    def list_(ctx: Context) -> Reply:
        include_deleted = ctx.query.boolean("includeDeleted")
        items = [m for m in ctx.state.meters.values() if include_deleted or m.deleted_at is None]
        return Reply(200, [meter_json(m) for m in items])

    @router.route("GET", "/api/v1/meters/{meterIdOrSlug}")
    def get(ctx: Context) -> Reply:
        return Reply(200, meter_json(find_meter(ctx.state, ctx.params["meterIdOrSlug"])))

    @router.route("DELETE", "/api/v1/meters/{meterIdOrSlug}")
    def delete(ctx: Context) -> Reply:
        record = find_meter(ctx.state, ctx.params["meterIdOrSlug"])
        record.deleted_at = record.updated_at = ctx.clock.now()
        return Reply(204)

    @router.route("GET", "/api/v1/meters/{meterIdOrSlug}/query")
    def query_get(ctx: Context) -> Reply:
        meter = find_meter(ctx.state, ctx.params["meterIdOrSlug"])
        q = ctx.query
        params = {
            "from": q.get("from"),
            "to": q.get("to"),
            "windowSize": q.get("windowSize"),
            "windowTimeZone": q.get("windowTimeZone"),
            "subject": q.list("subject"),
            "filterCustomerId": q.list("filterCustomerId"),
            "groupBy": q.list("groupBy"),
            "filterGroupBy": q.prefixed("filterGroupBy"),
        }
        return _query(ctx, meter, params)

    @router.route("POST", "/api/v1/meters/{meterIdOrSlug}/query")
    def query_post(ctx: Context) -> Reply:
        meter = find_meter(ctx.state, ctx.params["meterIdOrSlug"])
        body = ctx.json_object()
        filters = body.get("filterGroupBy") or {}
        # POST sends lists of accepted values per key; Local matches the first (documented).
        body["filterGroupBy"] = {
            k: (v[0] if isinstance(v, list) and v else v) for k, v in filters.items()
        }
        return _query(ctx, meter, body)
