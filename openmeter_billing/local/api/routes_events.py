"""``/api/v1/events``: CloudEvents ingestion and listing.

Ingestion is exact about content types (the real server switches on the literal header), validates
each event, fills a missing ``time`` with now, drops duplicates by (source, id) silently and answers
204. Unlike OpenMeter, where events flow through Kafka and show up in meters a moment later, events
are metered as soon as the request returns.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from openmeter_billing.local.api.inputs import Fields
from openmeter_billing.local.api.problems import bad_request
from openmeter_billing.local.api.render import iso
from openmeter_billing.local.api.router import Context, Reply, Router
from openmeter_billing.local.meters.index import EventRecord, event_problem
from openmeter_billing.local.state.store import IngestedRecord, MeterRecord

__all__ = ["register"]

_SINGLE = "application/cloudevents+json"
_BATCH = "application/cloudevents-batch+json"
_JSON = "application/json"
SPEC_VERSIONS = ("1.0", "0.3")  # the versions the CloudEvents Go SDK behind OpenMeter reads
MAX_EVENT_BYTES = 1024 * 1024  # an event travels as one Kafka message (1 MiB by default)


def _events_of(ctx: Context) -> list[Any]:
    content_type = ctx.headers.get("content-type", "")
    if content_type not in (_SINGLE, _BATCH, _JSON):
        raise bad_request(
            f"invalid content type: {content_type!r} (send {_SINGLE}, {_BATCH} or {_JSON})"
        )
    payload = ctx.json()
    if content_type == _SINGLE and not isinstance(payload, dict):
        raise bad_request(f"{_SINGLE} takes one event object")
    if content_type == _BATCH and not isinstance(payload, list):
        raise bad_request(f"{_BATCH} takes an array of events")
    events = payload if isinstance(payload, list) else [payload]
    if not events:
        raise bad_request("no events found")
    return events


def _validate(raw: Any, position: str, now: datetime) -> EventRecord:
    if not isinstance(raw, dict):
        raise bad_request(f"{position}: an event must be a JSON object", field=position)
    body = Fields(raw, f"{position}.")
    for name in ("id", "source", "specversion", "type", "subject"):
        body.required_string(name, min_len=1)
    if raw["specversion"] not in SPEC_VERSIONS:
        raise bad_request(
            f"{position}.specversion: {raw['specversion']!r} is not a CloudEvents version "
            f"OpenMeter reads ({', '.join(SPEC_VERSIONS)})",
            field=f"{position}.specversion",
        )
    content_type = body.string("datacontenttype")
    if content_type not in (None, "application/json"):
        raise bad_request(
            f"{position}.datacontenttype: {content_type!r} is not application/json",
            field=f"{position}.datacontenttype",
        )
    data = raw.get("data")
    if data is not None and not isinstance(data, dict):
        raise bad_request(f"{position}.data: must be a JSON object", field=f"{position}.data")
    return EventRecord(
        id=raw["id"],
        source=raw["source"],
        type=raw["type"],
        subject=raw["subject"],
        time=body.datetime("time") or now,  # OpenMeter stamps events sent without a time
        data=data,
    )


def _store(ctx: Context, record: EventRecord, raw: dict[str, Any]) -> None:
    state = ctx.state
    if (record.source, record.id) in state.seen_events:
        return  # OpenMeter drops duplicates silently
    state.seen_events.add((record.source, record.id))
    customer = state.customer_for_subject(record.subject)
    meters: list[MeterRecord] = [
        m for m in state.meters.values() if m.deleted_at is None and m.event_type == record.type
    ]
    problem = next(
        (p for m in meters if (p := event_problem(m.index.spec, record)) is not None), None
    )
    for meter in meters:
        meter.index.add(record)
    state.events.append(
        IngestedRecord(
            event=record,
            raw=raw,
            ingested_at=ctx.clock.now(),
            customer_id=customer.id if customer else None,
            validation_error=problem,
        )
    )


def _check_sizes(ctx: Context, raws: list[Any]) -> None:
    if len(ctx.body) <= MAX_EVENT_BYTES:
        return  # no event in the body can be larger than the body
    for i, raw in enumerate(raws):
        size = len(json.dumps(raw, separators=(",", ":")).encode())
        if size > MAX_EVENT_BYTES:
            field = f"events[{i}]" if len(raws) > 1 else "event"
            raise bad_request(
                f"{field}: {size} bytes is larger than the {MAX_EVENT_BYTES} bytes an event "
                "may take",
                field=field,
            )


def _ingest(ctx: Context) -> Reply:
    raws = _events_of(ctx)
    _check_sizes(ctx, raws)
    now = ctx.clock.now()
    records = [
        _validate(raw, f"events[{i}]" if len(raws) > 1 else "event", now)
        for i, raw in enumerate(raws)
    ]
    for raw, record in zip(raws, records, strict=True):
        stored = dict(raw)
        stored["time"] = iso(record.time)
        _store(ctx, record, stored)
    return Reply(204)


def _ingested_json(stored: IngestedRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event": stored.raw,
        "ingestedAt": iso(stored.ingested_at),
        "storedAt": iso(stored.ingested_at),
    }
    if stored.customer_id is not None:
        doc["customerId"] = stored.customer_id
    if stored.validation_error is not None:
        doc["validationError"] = stored.validation_error
    return doc


def _list(ctx: Context) -> Reply:
    q = ctx.query
    now = ctx.clock.now()
    start = q.datetime("from") or now - timedelta(hours=72)
    end = q.datetime("to")
    ingested_from, ingested_to = q.datetime("ingestedAtFrom"), q.datetime("ingestedAtTo")
    id_part, subject_part = q.get("id"), q.get("subject")
    customers = set(q.list("customerId"))
    limit = q.integer("limit", 100, minimum=1, maximum=100)
    found = [
        s
        for s in ctx.state.events
        if s.event.time >= start
        and (end is None or s.event.time <= end)
        and (ingested_from is None or s.ingested_at >= ingested_from)
        and (ingested_to is None or s.ingested_at <= ingested_to)
        and (id_part is None or id_part in s.event.id)
        and (subject_part is None or subject_part in s.event.subject)
        and (not customers or s.customer_id in customers)
    ]
    found.sort(key=lambda s: s.event.time, reverse=True)
    return Reply(200, [_ingested_json(s) for s in found[:limit]])


def register(router: Router) -> None:
    router.route("POST", "/api/v1/events")(_ingest)
    router.route("GET", "/api/v1/events")(_list)
