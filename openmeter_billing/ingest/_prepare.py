"""Turn ``submit(...)`` arguments into one encoded CloudEvent, fast and without awaiting.

This is the hot path of `events.submit`. The envelope is written by string formatting and the
data by the C JSON encoder built once (``json.dumps`` rebuilds it per call); a flat payload of
plain values is checked inline, anything else by the same `check_json_value` `events.ingest`
uses, so every bad input fails with `InvalidInputError` naming the field before it is queued.

Ids: a UUID-shaped string (RFC 9562 version 8, "custom"): 74 random bits drawn once per process
(again in a forked child) followed by a 48-bit counter. Unique across processes with the odds of
a random UUID, and a tenth of the cost of `uuid.uuid4` per event.
"""

from __future__ import annotations

import itertools
import json
import json.encoder
import os
import sys
from collections.abc import Coroutine, Mapping
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

from .._exceptions import InvalidInputError
from .._validate import check_json_value

__all__ = ["encode_event", "new_event_id", "run_now"]

T = TypeVar("T")
_LARGEST_INT = int(sys.float_info.max)  # OpenMeter reads numbers as 64-bit floats
_quote: Any = getattr(json.encoder, "c_encode_basestring", None) or json.encoder.encode_basestring


def _default(value: object) -> object:
    """What the encoder calls for non-JSON types: the string forms pydantic's JSON mode uses."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _build_encoder() -> Any:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (another interpreter): the pure-Python encoder
        encoder = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_default
        )
        return encoder.encode
    # markers=None: no circular-reference table (shared tables are not thread-safe); a cycle
    # ends in RecursionError, reported like any other unencodable value.
    encode = make(None, _default, _quote, None, ":", ",", False, False, False)
    return lambda value: "".join(encode(value, 0))


_encode_value = _build_encoder()


def _new_prefix() -> str:
    bits = os.urandom(10).hex()
    variant = "89ab"[int(bits[15], 16) & 3]
    return f"{bits[:8]}-{bits[8:12]}-8{bits[12:15]}-{variant}{bits[16:19]}-"


_prefix = _new_prefix()
_counter = itertools.count()


def _reseed() -> None:
    global _prefix, _counter  # one id stream per process, by design
    _prefix, _counter = _new_prefix(), itertools.count()


if hasattr(os, "register_at_fork"):  # a child must never repeat its parent's ids
    os.register_at_fork(after_in_child=_reseed)


def new_event_id() -> str:
    """A fresh event id (see the module docstring); thread-safe, unique across processes."""
    return f"{_prefix}{next(_counter) & 0xFFFFFFFFFFFF:012x}"


def _plain(data: Mapping[str, Any]) -> bool:
    """Whether ``data`` is a flat dict of plain values the encoder alone checks fully."""
    for key, value in data.items():
        if key.__class__ is not str:
            return False
        kind = value.__class__
        if kind is int:
            if not -_LARGEST_INT <= value <= _LARGEST_INT:
                return False
        elif kind is not str and kind is not float and kind is not bool and value is not None:
            return False
    return True


def _refuse(name: str, value: object, hint: str | None = None) -> InvalidInputError:
    return InvalidInputError(
        f"{name} must be a non-empty string, got {value!r}", field=f"event.{name}", hint=hint
    )


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
    # Arguments are checked at run time whatever their annotations say: callers pass anything.
    if type.__class__ is not str or not type:
        raise _refuse("type", type, "pass the event type your meters match, e.g. type='ai-tokens'")
    if id is None:
        event_id = new_event_id()
        quoted_id = f'"{event_id}"'
    elif id.__class__ is str and id:
        event_id, quoted_id = id, _quote(id)
    else:
        raise _refuse("id", id, "omit it")
    if source.__class__ is not str or not source:
        raise _refuse("source", source)
    if subject.__class__ is not str or not subject:
        raise _refuse("subject", subject, "pass customer=<id, key or principal> or subject=...")
    head = (
        f'{{"specversion":"1.0","id":{quoted_id},"source":{_quote(source)},'
        f'"type":{_quote(type)},"subject":{_quote(subject)}'
    )
    if time is not None:
        head += f',"time":"{_check_time(time)}"'
    if data is None:
        text = head + "}"
    else:
        text = f'{head},"data":{_encode_data(data)}}}'
    try:
        return event_id, text.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate in a string
        raise InvalidInputError(
            f"the event holds text that is not valid Unicode: {exc}",
            field="event",
            hint="decode bytes with errors='replace' before sending",
        ) from exc


def _check_time(time: object) -> str:
    if not isinstance(time, datetime) or time.utcoffset() is None:
        raise InvalidInputError(
            f"time must be a timezone-aware datetime, got {time!r}",
            field="event.time",
            hint="use datetime.now(timezone.utc), or omit it to let OpenMeter stamp the event",
        )
    return time.isoformat()


def _encode_data(data: object) -> str:
    if not isinstance(data, Mapping):
        raise InvalidInputError(
            f"data must be a mapping, got {data.__class__.__name__}",
            field="event.data",
            hint="pass a dict such as {'tokens': 850}",
        )
    if data.__class__ is not dict:
        data = dict(data)
    if not _plain(data):
        check_json_value(data, "event.data")  # nested or unusual values: the full check
    try:
        return str(_encode_value(data))
    except (TypeError, ValueError, RecursionError) as exc:
        check_json_value(data, "event.data")  # names the exact field when it can
        raise InvalidInputError(
            f"data is not JSON-serialisable: {exc}",
            field="event.data",
            hint="use strings, numbers, booleans, lists and dicts only",
        ) from exc


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
