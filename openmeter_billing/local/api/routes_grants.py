"""Grants, resets and balance history of metered entitlements.

``POST/GET /api/v2/customers/{c}/entitlements/{e}/grants``, ``DELETE /api/v1/grants/{id}`` (void),
``GET /api/v2/grants``, ``POST .../reset`` and ``GET .../history``. Grant rules are the v2 ones:
priority omitted means 0, ``maxRolloverAmount`` defaults to the amount, ``effectiveAt`` is truncated
to the minute and may not precede the current usage period.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local._time import (
    add_expiration,
    parse_interval,
    truncate_minute,
)
from openmeter_billing.local.api.entitlement_math import engine_inputs, metered_state, period_of
from openmeter_billing.local.api.inputs import Fields, parse_time_zone
from openmeter_billing.local.api.lookups import entitlement_of
from openmeter_billing.local.api.problems import bad_request, not_found
from openmeter_billing.local.api.render import grant_json, iso, page_of
from openmeter_billing.local.api.router import Context, Reply, Router
from openmeter_billing.local.engine.balance import (
    HistoryResult,
    MeteredEntitlementState,
    ResetRecord,
    compute_history,
    period_start_for_grant_validation,
)
from openmeter_billing.local.state.store import EntitlementRecord, GrantRecord, PeriodInput, State

__all__ = ["build_grant", "read_period", "register", "render_grant"]

_DURATIONS = ("HOUR", "DAY", "WEEK", "MONTH", "YEAR")
_WINDOWS = ("MINUTE", "HOUR", "DAY", "MONTH")


def read_period(body: Fields, name: str, default_anchor: datetime) -> PeriodInput | None:
    """A ``RecurringPeriodCreateInput``: an interval (enum or ISO duration) and an anchor."""
    period = body.obj(name)
    if period is None:
        return None
    text = period.required_string("interval", min_len=1)
    try:
        parsed = parse_interval(text)
    except InvalidInputError as exc:
        raise bad_request(
            f"{period.path('interval')}: {exc}", field=period.path("interval")
        ) from None
    anchor = period.datetime("anchor") or default_anchor
    return PeriodInput(interval=text, parsed=parsed, anchor=truncate_minute(anchor))


def _require_in_period(
    ctx: Context, ent: EntitlementRecord, at: datetime, field: str
) -> MeteredEntitlementState:
    """400 unless ``at`` is in the current usage period (grants, voids and resets); returns the
    engine state it was checked against."""
    metered = metered_state(ctx.state, ent)
    earliest = period_start_for_grant_validation(metered, ctx.clock.now())
    if at < earliest:
        raise bad_request(
            f"{field}: {iso(at)} is before the current usage period started ({iso(earliest)})",
            field=field,
        )
    return metered


def build_grant(ctx: Context, ent: EntitlementRecord, body: Fields) -> GrantRecord:
    """Validate a ``EntitlementGrantCreateInputV2`` for ``ent`` and return the new record."""
    if ent.type != "metered":
        raise bad_request(f"entitlement {ent.id} is {ent.type}; only metered ones take grants")
    amount = body.number("amount", minimum=0)
    if amount is None or amount <= 0:
        raise bad_request(
            f"{body.path('amount')}: must be greater than 0", field=body.path("amount")
        )
    priority = body.integer("priority", minimum=1, maximum=255)
    effective_at = truncate_minute(body.datetime("effectiveAt", required=True))  # type: ignore[arg-type]
    now = ctx.clock.now()
    _require_in_period(ctx, ent, effective_at, body.path("effectiveAt"))
    expiration = body.obj("expiration")
    expires_at = None
    expiration_doc = None
    if expiration is not None:
        duration = expiration.enum("duration", _DURATIONS, required=True)
        count = expiration.integer("count", minimum=1, maximum=1000)
        if count is None:
            raise bad_request(
                f"{expiration.path('count')}: is required", field=expiration.path("count")
            )
        expires_at = add_expiration(effective_at, str(duration), count)
        expiration_doc = {"duration": duration, "count": count}
    minimum = body.number("minRolloverAmount") or 0.0
    maximum = body.number("maxRolloverAmount")
    annotations = body.raw("annotations")
    return GrantRecord(
        id=ctx.new_id(),
        entitlement_id=ent.id,
        amount=amount,
        priority=priority or 0,
        effective_at=effective_at,
        created_at=now,
        updated_at=now,
        min_rollover_amount=minimum,
        max_rollover_amount=amount if maximum is None else maximum,
        expiration=expiration_doc,
        expires_at=expires_at,
        recurrence=read_period(body, "recurrence", effective_at),
        metadata=body.string_map("metadata"),
        annotations=annotations if isinstance(annotations, dict) else None,
    )


def render_grant(g: GrantRecord, now: datetime) -> dict[str, Any]:
    upcoming = None
    if g.recurrence is not None:
        upcoming = g.recurrence.recurrence().next_after(now)
    return grant_json(g, upcoming)


def _grant_sort(query_order_by: str | None) -> Any:
    keys = {
        "id": lambda g: g.id,
        "createdAt": lambda g: (g.created_at, g.id),
        "updatedAt": lambda g: (g.updated_at, g.id),
    }
    return keys[query_order_by or "createdAt"]


def _listed(ctx: Context, grants: list[GrantRecord]) -> Reply:
    q = ctx.query
    include_deleted = q.boolean("includeDeleted")
    order_by = q.enum("orderBy", ("id", "createdAt", "updatedAt"))
    descending = q.descending()
    items = [g for g in grants if include_deleted or g.deleted_at is None]
    items.sort(key=_grant_sort(order_by), reverse=descending)
    now = ctx.clock.now()
    return Reply(200, page_of(items, q, lambda g: render_grant(g, now)))


def _void(ctx: Context) -> Reply:
    grant = ctx.state.grants.get(ctx.params["grantId"])
    if grant is None or grant.deleted_at is not None:
        raise not_found(f"grant not found: {ctx.params['grantId']}")
    now = ctx.clock.now()
    at = truncate_minute(ctx.query.datetime("at") or now)
    if at > now:
        raise bad_request(f"at: {iso(at)} is in the future", field="at")
    if grant.voided_at is not None:
        raise bad_request(f"grant {grant.id} is already voided", field="grantId")
    _require_in_period(ctx, ctx.state.entitlements[grant.entitlement_id], at, "at")
    grant.voided_at = at
    grant.updated_at = now
    return Reply(204)


def _reset(ctx: Context, ent: EntitlementRecord) -> Reply:
    if ent.type != "metered":
        raise bad_request(f"entitlement {ent.id} is {ent.type}; only metered ones can be reset")
    body = Fields(ctx.json_object() if ctx.body else {})
    now = ctx.clock.now()
    at = truncate_minute(body.datetime("effectiveAt") or now)
    if at > now:
        raise bad_request(f"effectiveAt: {iso(at)} is in the future", field="effectiveAt")
    metered = _require_in_period(ctx, ent, at, "effectiveAt")
    if ent.resets and ent.resets[-1].at == at:
        raise bad_request(
            f"effectiveAt: the entitlement was already reset at {iso(at)}", field="effectiveAt"
        )
    retain = body.boolean("retainAnchor")
    anchor = metered.resets[-1].anchor if retain and metered.resets else metered.usage_period.anchor
    preserve = body.raw("preserveOverage")
    if preserve is not None and not isinstance(preserve, bool):
        raise bad_request("preserveOverage: must be a boolean", field="preserveOverage")
    ent.resets.append(
        ResetRecord(at=at, anchor=anchor if retain else at, preserve_overage=preserve)
    )
    ent.updated_at = now
    return Reply(204)


def _history(ctx: Context, ent: EntitlementRecord) -> Reply:
    if ent.type != "metered":
        raise bad_request(f"entitlement {ent.id} is {ent.type}; only metered ones have history")
    q = ctx.query
    window = q.enum("windowSize", _WINDOWS)
    if window is None:
        raise bad_request(
            "windowSize: is required (MINUTE, HOUR, DAY or MONTH)", field="windowSize"
        )
    tz = parse_time_zone(q.get("windowTimeZone"))
    metered, grants, usage = engine_inputs(ctx.state, ent)
    now = ctx.clock.now()
    start = q.datetime("from")
    if start is None:
        start = period_of(ctx.state, ent, now)[0]
    try:
        result = compute_history(
            metered,
            grants,
            usage,
            start=start,
            end=q.datetime("to") or now,
            window_size=window,  # type: ignore[arg-type]
            tz=tz,
        )
    except InvalidInputError as exc:
        raise bad_request(str(exc), field=exc.field) from None
    return Reply(200, _history_json(result))


def _history_json(result: HistoryResult) -> dict[str, Any]:
    return {
        "windowedHistory": [
            {
                "period": {"from": iso(w.start), "to": iso(w.end)},
                "usage": w.usage,
                "balanceAtStart": w.balance_at_start,
            }
            for w in result.windows
        ],
        "burndownHistory": [
            {
                "period": {"from": iso(s.start), "to": iso(s.end)},
                "usage": s.usage,
                "overage": s.overage,
                "balanceAtStart": s.balance_at_start,
                "grantBalancesAtStart": dict(s.grant_balances_at_start),
                "balanceAtEnd": s.balance_at_end,
                "grantBalancesAtEnd": dict(s.grant_balances_at_end),
                "grantUsages": [
                    {"grantId": gid, "usage": used} for gid, used in s.grant_usages.items()
                ],
            }
            for s in result.segments
        ],
    }


def register(router: Router) -> None:
    """Register the grant, reset and history routes of an entitlement."""
    base = "/api/v2/customers/{customerIdOrKey}/entitlements/{entitlementIdOrFeatureKey}"

    @router.route("POST", base + "/grants")
    def create(ctx: Context) -> Reply:
        ent = entitlement_of(ctx)
        grant = build_grant(ctx, ent, Fields(ctx.json_object()))
        ctx.state.add_grant(grant)
        return Reply(201, render_grant(grant, ctx.clock.now()))

    @router.route("GET", base + "/grants")
    def list_(ctx: Context) -> Reply:
        ent = entitlement_of(ctx)
        return _listed(ctx, ctx.state.grants_of(ent.id))

    router.route("POST", base + "/reset")(lambda ctx: _reset(ctx, entitlement_of(ctx)))
    router.route("GET", base + "/history")(lambda ctx: _history(ctx, entitlement_of(ctx)))
    router.route("DELETE", "/api/v1/grants/{grantId}")(_void)

    @router.route("GET", "/api/v2/grants")
    def list_all(ctx: Context) -> Reply:
        state: State = ctx.state
        features = set(ctx.query.list("feature"))
        customers = set(ctx.query.list("customer"))
        found = []
        for grant in state.grants.values():
            ent = state.entitlements[grant.entitlement_id]
            customer = state.customers[ent.customer_id]
            if features and ent.feature_key not in features and ent.feature_id not in features:
                continue
            if customers and not ({customer.id, customer.key} & customers):
                continue
            found.append(grant)
        return _listed(ctx, found)
