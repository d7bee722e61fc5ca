"""``client.events``: ingest usage events (CloudEvents) and list what OpenMeter stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pydantic

from .._exceptions import InvalidInputError, SubjectMismatchError
from .._validate import check_json_value
from ..identity import CustomerRef
from ..types.events import CloudEvent, IngestedEvent
from ._base import AsyncResource, iso, parse_with

__all__ = ["AsyncEvents"]

EVENTS = "/api/v1/events"
SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
_ingested_list: pydantic.TypeAdapter[list[IngestedEvent]] = pydantic.TypeAdapter(
    list[IngestedEvent]
)


class AsyncEvents(AsyncResource):
    """Usage events. Every event gets an id up front, so retries never count usage twice."""

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
        if customer is None:
            if not subject:
                raise InvalidInputError(
                    "an event needs a subject",
                    field=f"{where}.subject",
                    hint="pass customer=<id, key or principal> or subject=...",
                )
            return str(subject)
        if isinstance(customer, str):
            if subject and subject != customer:
                raise SubjectMismatchError(
                    f"subject {subject!r} is not customer {customer!r}",
                    field=f"{where}.subject",
                    hint="drop subject= and let customer= decide, or pass only subject=",
                )
            return customer
        resolved = await self._deps.identity.resolve(customer)
        if subject and subject not in {resolved.subject, resolved.key}:
            raise SubjectMismatchError(
                f"subject {subject!r} does not belong to the {resolved.scope} whose subject is "
                f"{resolved.subject!r}; usage would be charged to another customer",
                field=f"{where}.subject",
                hint="drop subject= and let customer= decide",
            )
        return resolved.subject

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
