"""``/api/v1/customers``: create, list, get, replace, soft delete.

Semantics follow OpenMeter: a key or at least one subject key is required, keys and subject keys
are unique among live customers (409), a deleted customer is 404 by key but still readable by id,
and anything else done to it is 412.
"""

from __future__ import annotations

import re
from typing import Any

from openmeter_billing.local.api.inputs import Fields
from openmeter_billing.local.api.lookups import find_customer, live_customer
from openmeter_billing.local.api.problems import (
    bad_request,
    conflict,
)
from openmeter_billing.local.api.render import customer_json, page_of
from openmeter_billing.local.api.router import Context, Reply, Router
from openmeter_billing.local.state.store import CustomerRecord, State

__all__ = ["register"]

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _read_body(ctx: Context) -> dict[str, Any]:
    body = Fields(ctx.json_object())
    values: dict[str, Any] = {
        "name": body.required_string("name", min_len=1, max_len=256),
        "description": body.string("description", max_len=1024),
        "metadata": body.string_map("metadata"),
        "key": body.string("key", min_len=1, max_len=256),
        "primary_email": body.string("primaryEmail"),
        "currency": body.string("currency", pattern=_CURRENCY),
        "billing_address": None,
        "subject_keys": None,
    }
    attribution = body.obj("usageAttribution")
    if attribution is not None:
        keys = attribution.raw("subjectKeys")
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            raise bad_request(
                "usageAttribution.subjectKeys: must be a list of non-empty strings",
                field="usageAttribution.subjectKeys",
            )
        values["subject_keys"] = list(dict.fromkeys(keys))
    address = body.obj("billingAddress")
    if address is not None:
        values["billing_address"] = dict(address.data)
    if not values["key"] and not values["subject_keys"]:
        raise bad_request(
            "either key or usageAttribution.subjectKeys must be provided", field="key"
        )
    return values


def _check_unique(state: State, values: dict[str, Any], own_id: str | None) -> None:
    """409 when the key or a subject key already belongs to another live customer."""
    for other in state.claiming([k for k in [values["key"], *(values["subject_keys"] or ())] if k]):
        if other.id == own_id:
            continue
        if values["key"] and other.key == values["key"]:
            raise conflict(f"customer with key {values['key']} already exists", other.id)
        taken = set(values["subject_keys"] or ()) & set(other.subject_keys or ())
        if taken:
            raise conflict(
                f"subject keys {sorted(taken)} are already attributed to customer {other.id}",
                other.id,
            )


def register(router: Router) -> None:
    @router.route("POST", "/api/v1/customers")
    def create(ctx: Context) -> Reply:
        values = _read_body(ctx)
        _check_unique(ctx.state, values, None)
        now = ctx.clock.now()
        record = CustomerRecord(id=ctx.new_id(), created_at=now, updated_at=now, **values)
        ctx.state.add_customer(record)
        return Reply(201, customer_json(record))

    @router.route("GET", "/api/v1/customers")
    def list_(ctx: Context) -> Reply:
        q = ctx.query
        include_deleted = q.boolean("includeDeleted")
        order_by = q.enum("orderBy", ("id", "name", "createdAt")) or "id"
        descending = q.descending()
        filters = {k: q.get(k) for k in ("key", "name", "primaryEmail", "subject")}
        items = [
            c
            for c in ctx.state.customers.values()
            if (include_deleted or c.deleted_at is None) and _matches(c, filters)
        ]
        sort_key = {"id": lambda c: c.id, "name": lambda c: c.name, "createdAt": lambda c: c.id}
        items.sort(key=sort_key[order_by], reverse=descending)
        return Reply(200, page_of(items, q, customer_json))

    @router.route("GET", "/api/v1/customers/{customerIdOrKey}")
    def get(ctx: Context) -> Reply:
        return Reply(200, customer_json(find_customer(ctx.state, ctx.params["customerIdOrKey"])))

    @router.route("PUT", "/api/v1/customers/{customerIdOrKey}")
    def replace(ctx: Context) -> Reply:
        record = live_customer(ctx.state, ctx.params["customerIdOrKey"])
        values = _read_body(ctx)
        _check_unique(ctx.state, values, record.id)
        for name, value in values.items():
            setattr(record, name, value)
        ctx.state.index_customer(record)
        record.updated_at = ctx.clock.now()
        return Reply(200, customer_json(record))

    @router.route("DELETE", "/api/v1/customers/{customerIdOrKey}")
    def delete(ctx: Context) -> Reply:
        record = live_customer(ctx.state, ctx.params["customerIdOrKey"])
        now = ctx.clock.now()
        record.deleted_at = record.updated_at = now
        for ent in ctx.state.entitlements_of(record.id):
            if ent.customer_id == record.id and ent.deleted_at is None:
                ent.deleted_at = ent.updated_at = now
        return Reply(204)


def _matches(c: CustomerRecord, filters: dict[str, str | None]) -> bool:
    """OpenMeter's list filters: case-insensitive partial matches."""

    def contains(value: str | None, needle: str | None) -> bool:
        return needle is None or (value is not None and needle.lower() in value.lower())

    subject = filters["subject"]
    return (
        contains(c.key, filters["key"])
        and contains(c.name, filters["name"])
        and contains(c.primary_email, filters["primaryEmail"])
        and (subject is None or any(subject.lower() in s.lower() for s in c.subject_keys or ()))
    )
