"""``client.events``: ingest usage events (CloudEvents) and list what OpenMeter stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pydantic

from .._exceptions import ConfigurationError, InvalidInputError, SubjectMismatchError
from .._validate import check_json_value
from ..identity import CustomerRef, ResolvedCustomer
from ..ingest._prepare import encode_event, run_now
from ..ingest._reconcile import ReconcileResult, reconcile
from ..ingest.options import IngestStats
from ..types.events import CloudEvent, IngestedEvent
from ._base import AsyncResource, iso, parse_with

__all__ = ["AsyncEvents"]

EVENTS = "/api/v1/events"
SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_ingested_list: pydantic.TypeAdapter[list[IngestedEvent]] = pydantic.TypeAdapter(
    list[IngestedEvent]
)


if TYPE_CHECKING:
    from ..ingest._engine import IngestEngine


class AsyncEvents(AsyncResource):
    """Usage events. Every event gets an id up front, so retries never count usage twice.

    `submit` queues an event and returns at once (a background flusher sends batches); `ingest`
    sends one event and waits for OpenMeter. See ``docs/events.md`` for which to use.
    """

    def submit(
        self,
        *,
        type: str,
        data: Mapping[str, Any] | None = None,
        customer: CustomerRef | None = None,
        subject: str | None = None,
        id: str | None = None,
        source: str | None = None,
        time: datetime | None = None,
    ) -> str:
        """Queue one usage event for background delivery and return its id (no await).

        The event is validated and encoded here, its id fixed for every retry. Without an
        outbox it goes to a bounded memory queue (``IngestOptions``); with ``outbox=`` it is
        committed to the outbox before this returns, and deleted only once OpenMeter took it.
        Arguments are those of `ingest`; a principal ``customer`` needs a resolver that does not
        wait for I/O (pass the customer key otherwise).

        Raises:
            InvalidInputError: Bad arguments (nothing was queued).
            QueueFullError: The memory queue is full and the overflow policy says so.
        """
        engine = self._engine
        if engine.runtime.closed:
            raise ConfigurationError("this client is closed; events can no longer be submitted")
        if customer is None and subject.__class__ is str and subject:
            event_subject: str = subject
        elif customer.__class__ is str and subject is None:
            event_subject = customer
        else:
            event_subject = self._subject_now(subject, customer)
        item = encode_event(
            type=type,
            subject=event_subject,
            data=data,
            id=id,
            source=source or self._deps.event_source,
            time=time,
        )
        engine.accept(item)
        callback = engine.options.on_submitted
        if callback is not None:
            callback(item[0], event_subject, type)
        return item[0]

    async def submit_in(
        self,
        conn: Any,
        *,
        type: str,
        data: Mapping[str, Any] | None = None,
        customer: CustomerRef | None = None,
        subject: str | None = None,
        id: str | None = None,
        source: str | None = None,
        time: datetime | None = None,
    ) -> str:
        """Write the event in your own PostgreSQL transaction (``conn``: a psycopg 3 connection).

        Usage is then recorded if and only if your transaction commits; the flusher sends it
        after the commit. Needs ``outbox=PostgresOutbox(...)`` on the client, on the database
        ``conn`` belongs to. Returns the event id.
        """
        outbox = self._engine.outbox
        insert_sql = getattr(outbox, "insert_sql", None)
        if not isinstance(insert_sql, str):
            raise ConfigurationError(
                "submit_in() writes to a PostgreSQL outbox: create the client with "
                "outbox=PostgresOutbox(dsn) on the database your connection belongs to"
            )
        resolved = (
            None
            if customer is None or isinstance(customer, str)
            else (await self._deps.identity.resolve(customer))
        )
        item = encode_event(
            type=type,
            subject=_choose_subject(subject, customer, resolved, "event"),
            data=data,
            id=id,
            source=source or self._deps.event_source,
            time=time,
        )
        result = conn.execute(insert_sql, item)
        if hasattr(result, "__await__"):
            await result
        self._engine.counters.add("submitted")
        return item[0]

    async def flush(self, *, timeout: float | None = None) -> int:
        """Send everything queued (and outbox rows other processes left behind) now.

        Returns how many events are still pending: 0 when all were delivered; more when the
        ``timeout`` (seconds) ran out or OpenMeter is unreachable (they stay queued).
        """
        return await self._engine.flush(timeout)

    def stats(self) -> IngestStats:
        """Counters: submitted, sent, retried, dropped, dead-lettered, and pending now."""
        return self._engine.stats()

    async def reconcile(
        self,
        ids: Iterable[str] | None = None,
        *,
        since: datetime | None = None,
        min_age: float = 60.0,
        resend: bool = True,
    ) -> ReconcileResult:
        """Check that delivered events are stored in OpenMeter; re-send the missing ones.

        Looks at events this process delivered (the last ``IngestOptions.remember_sent``):
        the given ``ids``, or all delivered at or after ``since``, skipping those delivered
        less than ``min_age`` seconds ago (OpenMeter stores events a moment after it
        acknowledges them). Re-sent events keep their id, so a double send is deduplicated.
        """
        return await reconcile(self, self._engine, ids, since, min_age, resend)

    @cached_property
    def _engine(self) -> IngestEngine:
        make = self._deps.ingest
        if make is None:
            raise ConfigurationError("this events resource has no ingest engine; use client.events")
        return make()

    def _subject_now(self, subject: str | None, customer: CustomerRef | None) -> str:
        if customer is None or isinstance(customer, str):
            return _choose_subject(subject, customer, None, "event")
        resolved = run_now(self._deps.identity.resolve(customer), type(customer).__name__)
        return _choose_subject(subject, customer, resolved, "event")

    async def ingest(
        self,
        *,
        type: str,
        data: Mapping[str, Any] | None = None,
        customer: CustomerRef | None = None,
        subject: str | None = None,
        id: str | None = None,
        source: str | None = None,
        time: datetime | None = None,
    ) -> CloudEvent:
        """Send one usage event and return it as sent (with its generated id).

        Args:
            type: The event type your meters match (for example ``ai-tokens``).
            data: The payload meters read values from (for example ``{"tokens": 850}``).
            customer: Whose usage this is: an OpenMeter id, a customer key or a principal. The
                subject is resolved from it.
            subject: An explicit subject. With a principal ``customer`` it must be that
                principal's own subject, so usage is never charged to someone else by accident.
            id: Defaults to a random UUID. OpenMeter drops a second event with the same
                ``source`` and ``id``: reuse the id when you retry.
            source: Defaults to the client's ``event_source`` (``openmeter-billing``).
            time: When the usage happened (timezone-aware). Omitted, OpenMeter stamps the event
                with the time it receives it, so the server's clock (or Local OpenMeter's
                controllable one) decides, not this machine's.
        """
        event = await self._prepare(
            {
                "type": type,
                "data": data,
                "subject": subject,
                "id": id,
                "source": source,
                "time": time,
            },
            customer,
        )
        await self._send([event], SINGLE)
        return event

    async def ingest_batch(
        self,
        events: Sequence[CloudEvent | Mapping[str, Any]],
        *,
        customer: CustomerRef | None = None,
    ) -> list[CloudEvent]:
        """Send several events in one request (``application/cloudevents-batch+json``).

        Each item is a `CloudEvent` or a mapping with at least ``type``; missing ids, sources,
        times and (with ``customer``) subjects are filled in as for `ingest`.
        """
        if isinstance(events, (str, bytes, Mapping)) or not events:
            raise InvalidInputError(
                "expected a non-empty sequence of events",
                field="events",
                hint="pass a list such as [{'type': 'ai-tokens', 'data': {'tokens': 1}}]",
            )
        prepared = [
            await self._prepare(_as_mapping(item, index), customer, index)
            for index, item in enumerate(events)
        ]
        await self._send(prepared, BATCH)
        return prepared

    async def list(
        self,
        *,
        from_: datetime | None = None,
        to: datetime | None = None,
        subject: str | None = None,
        id: str | None = None,
        customer_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[IngestedEvent]:
        """Events OpenMeter stored (default: the last 72 hours, at most 100)."""
        params = {
            "from": iso(from_),
            "to": iso(to),
            "subject": subject,
            "id": id,
            "customerId": list(customer_ids) if customer_ids else None,
            "limit": limit,
        }
        response = await self._http.request("GET", EVENTS, params=params)
        return parse_with(_ingested_list, response, "event list")

    async def _prepare(
        self, fields: Mapping[str, Any], customer: CustomerRef | None, index: int | None = None
    ) -> CloudEvent:
        where = "event" if index is None else f"events[{index}]"
        values = {k: v for k, v in fields.items() if v is not None}
        values["subject"] = await self._subject_for(values.get("subject"), customer, where)
        values.setdefault("id", str(uuid.uuid4()))
        values.setdefault("source", self._deps.event_source)
        values.setdefault("specversion", "1.0")
        # Before the model: its JSON mode would turn NaN into null and lose the usage silently.
        for name, value in values.items():
            check_json_value(value, f"{where}.{name}")
        try:
            return CloudEvent.model_validate(values)
        except pydantic.ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            location = ".".join(str(p) for p in error["loc"])
            raise InvalidInputError(
                f"{error['msg']} (got {error.get('input')!r})",
                field=f"{where}.{location}" if location else where,
                hint="see CloudEvent in openmeter_billing.types",
            ) from exc

    async def _subject_for(self, subject: Any, customer: CustomerRef | None, where: str) -> str:
        resolved = None
        if customer is not None and not isinstance(customer, str):
            resolved = await self._deps.identity.resolve(customer)
        return _choose_subject(subject, customer, resolved, where)

    async def _send(self, events: Sequence[CloudEvent], content_type: str) -> None:
        dumped = [event.model_dump(mode="json", exclude_none=True) for event in events]
        payload: Any = dumped[0] if content_type == SINGLE else dumped
        content = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        # Events carry ids OpenMeter deduplicates on, so repeating the POST is harmless.
        await self._http.request(
            "POST", EVENTS, content=content, content_type=content_type, idempotent=True
        )


def _as_mapping(item: CloudEvent | Mapping[str, Any], index: int) -> Mapping[str, Any]:
    if isinstance(item, CloudEvent):
        return item.model_dump(exclude_none=True)
    if isinstance(item, Mapping):
        return item
    raise InvalidInputError(
        f"expected a CloudEvent or a mapping, got {type(item).__name__}",
        field=f"events[{index}]",
    )


def _choose_subject(
    subject: Any, customer: CustomerRef | None, resolved: ResolvedCustomer | None, where: str
) -> str:
    """The event's subject: ``customer`` decides; an explicit subject must agree with it."""
    if customer is None:
        if not subject:
            raise InvalidInputError(
                "an event needs a subject",
                field=f"{where}.subject",
                hint="pass customer=<id, key or principal> or subject=...",
            )
        return str(subject)
    if isinstance(customer, str) or resolved is None:
        if subject and subject != customer:
            raise SubjectMismatchError(
                f"subject {subject!r} is not customer {customer!r}",
                field=f"{where}.subject",
                hint="drop subject= and let customer= decide, or pass only subject=",
            )
        return str(customer)
    if subject and subject not in {resolved.subject, resolved.key}:
        raise SubjectMismatchError(
            f"subject {subject!r} does not belong to the {resolved.scope} whose subject is "
            f"{resolved.subject!r}; usage would be charged to another customer",
            field=f"{where}.subject",
            hint="drop subject= and let customer= decide",
        )
    return resolved.subject
