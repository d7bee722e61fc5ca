"""Turn ``submit(...)`` arguments into one encoded CloudEvent, fast and without awaiting.

This is the hot path of `events.submit`: a hand-built dict and one ``json.dumps`` (a pydantic
round trip would double its cost), with the same checks `events.ingest` makes, each failing with
`InvalidInputError` naming the field before anything is queued.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Coroutine, Mapping
from datetime import datetime
from typing import Any, TypeVar

from .._exceptions import InvalidInputError

__all__ = ["encode_event", "run_now"]

T = TypeVar("T")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_event(
    *,
    type: str,
    subject: str,
    data: Mapping[str, Any] | None,
    id: str | None,
    source: str,
    time: datetime | None,
) -> tuple[str, bytes]:
    """``(id, JSON bytes)`` of a CloudEvent; the id is generated here when not given."""
    checked: object = type  # callers may pass anything at run time
    if not isinstance(checked, str) or not type:
        raise InvalidInputError(
            f"type must be a non-empty string, got {type!r}",
            field="event.type",
            hint="pass the event type your meters match, e.g. type='ai-tokens'",
        )
    event_id: object = str(uuid.uuid4()) if id is None else id
    if not isinstance(event_id, str) or not event_id:
        raise InvalidInputError(
            f"id must be a non-empty string, got {id!r}", field="event.id", hint="omit it"
        )
    given_source: object = source
    if not isinstance(given_source, str) or not source:
        raise InvalidInputError(
            f"source must be a non-empty string, got {source!r}", field="event.source"
        )
    given_subject: object = subject
    if not isinstance(given_subject, str) or not subject:
        raise InvalidInputError(
            f"subject must be a non-empty string, got {subject!r}",
            field="event.subject",
            hint="pass customer=<id, key or principal> or subject=...",
        )
    doc: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": type,
        "subject": subject,
    }
    if time is not None:
        given_time: object = time
        if not isinstance(given_time, datetime) or time.utcoffset() is None:
            raise InvalidInputError(
                f"time must be a timezone-aware datetime, got {time!r}",
                field="event.time",
                hint="use datetime.now(timezone.utc), or omit it to let OpenMeter stamp the event",
            )
        doc["time"] = time.isoformat()
    if data is not None:
        given_data: object = data
        if not isinstance(given_data, Mapping):
            raise InvalidInputError(
                f"data must be a mapping, got {data.__class__.__name__}",
                field="event.data",
                hint="pass a dict such as {'tokens': 850}",
            )
        doc["data"] = data
    try:
        body = _dumps(doc).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"data is not JSON-serialisable: {exc}",
            field="event.data",
            hint="use strings, numbers, booleans, lists and dicts only",
        ) from exc
    return event_id, body


def run_now(coro: Coroutine[Any, Any, T], what: str) -> T:
    """Run a coroutine that never suspends (a resolver built from templates or plain functions).

    `events.submit` cannot await; a resolver that really waits (an async database lookup) is
    refused with a clear error instead of blocking the caller's loop.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise InvalidInputError(
        f"the {what} resolver waits for I/O, which events.submit() cannot do (it never awaits)",
        field="customer",
        hint="pass the customer key (or subject=) to submit(), or use await events.ingest(...)",
    )
