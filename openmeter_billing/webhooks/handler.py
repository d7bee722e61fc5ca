"""``client.webhooks``: verify, map, then apply exactly once per delivery id; say which HTTP
status to answer so the provider retries what failed and only that."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from .._exceptions import (
    APIConnectionError,
    ConfigurationError,
    InternalServerError,
    InvalidInputError,
    NotFoundError,
    OperationInProgressError,
    RateLimitError,
    WebhookVerificationError,
)
from ..billing._ledger_run import run_once
from ..billing.engine import AsyncBilling
from ..billing.events import BillingEvent
from ..billing.ledger import InMemoryLedger, Ledger
from ..billing.topups import AsyncTopups
from ..catalog.dsl import Catalog
from ..providers.base import Headers, MappedEvent, PaymentProvider, ProviderEvent
from .inbox import InboxEntry, WebhookInbox, safe_headers, with_outcome

__all__ = ["AsyncWebhooks", "Outcome", "WebhookResult"]

logger = logging.getLogger("openmeter_billing")

Outcome = Literal["applied", "duplicate", "ignored", "rejected", "invalid", "in_progress", "failed"]
_STATUS: dict[str, int] = {
    "applied": 200,
    "duplicate": 200,
    "ignored": 200,
    "rejected": 422,
    "invalid": 400,
    "in_progress": 409,
    "failed": 503,
}


@dataclass(frozen=True)
class WebhookResult:
    """What `AsyncWebhooks.handle` did, and the HTTP status to answer.

    Attributes:
        outcome: ``applied`` (200), ``duplicate`` (200: done before), ``ignored`` (200: nothing
            to do, ``reason`` says why), ``rejected`` (422: unknown plan or customer; kept for
            replay), ``invalid`` (400: signature, timestamp or body), ``in_progress`` (409:
            another delivery is applying it), ``failed`` (503 or 500: retry later).
        http_status: The status code to send back to the provider.
        reason: A short explanation (never a secret).
        provider: The provider name.
        delivery_id: The provider's delivery id, once known.
        event_type: The provider's event type, once verified.
        results: Per billing event and top-up, what was done (as stored in the ledger).
    """

    outcome: Outcome
    http_status: int
    reason: str
    provider: str
    delivery_id: str | None = None
    event_type: str | None = None
    results: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)


class AsyncWebhooks:
    """One entry point for every provider's webhooks (``client.webhooks``)."""

    def __init__(
        self,
        *,
        providers: Mapping[str, PaymentProvider],
        billing: AsyncBilling,
        topups: AsyncTopups,
        catalog: Catalog | None = None,
        ledger: Ledger | None = None,
        inbox: WebhookInbox | None = None,
    ) -> None:
        self.providers = dict(providers)
        self._billing = billing
        self._topups = topups
        self._catalog = catalog
        # Exactly once needs a ledger: without one configured, this process keeps its own.
        self.ledger: Ledger = ledger if ledger is not None else InMemoryLedger()
        self.inbox = inbox

    async def handle(self, provider: str, *, headers: Headers, body: bytes | str) -> WebhookResult:
        """Verify, map and apply one delivery exactly once; never raises for a bad delivery.

        Pass the exact raw request body (bytes or text), not parsed JSON.
        """
        adapter = self.providers.get(provider)
        if adapter is None:
            known = ", ".join(sorted(self.providers)) or "none configured"
            return _result(
                "rejected",
                f"unknown provider {provider!r} (configured: {known})",
                provider,
                status=404,
            )
        header_map = dict(headers.items() if isinstance(headers, Mapping) else headers)
        raw = body.encode() if isinstance(body, str) else bytes(body)
        received = datetime.now(timezone.utc).isoformat()
        try:
            event = adapter.verify(header_map, raw)
        except WebhookVerificationError as exc:
            logger.warning("%s webhook refused: %s", provider, exc.reason)
            status = 413 if exc.reason == "body_too_large" else 400
            result = _result("invalid", f"{exc.reason}: {exc}", provider, status=status)
            await self._record(
                provider, _guess_id(header_map), received, header_map, b"", exc.reason, result
            )
            return result
        entry = InboxEntry(
            provider,
            event.delivery_id,
            received,
            safe_headers(header_map),
            raw,
            "verified",
            "received",
            0,
            event.type,
            event.occurred_at.isoformat(),
        )
        result = await self._apply(adapter, event)
        if self.inbox is not None:
            await self.inbox.record(with_outcome(entry, result.outcome, result.http_status))
        return result

    async def replay(self, delivery_id: str, *, provider: str | None = None) -> WebhookResult:
        """Apply a recorded, verified delivery again (after fixing what made it fail).

        Raises:
            InvalidInputError: no inbox, no such verified delivery, or several providers have it.
        """
        if self.inbox is None:
            raise InvalidInputError(
                "no inbox is configured",
                field="inbox",
                hint="pass webhook_inbox=InMemoryInbox() or SQLiteInbox(path)",
            )
        found = [e for e in await self.inbox.find(delivery_id, provider) if e.verdict == "verified"]
        if len(found) != 1:
            what = "no verified delivery" if not found else "several providers' deliveries"
            raise InvalidInputError(
                f"{what} with id {delivery_id!r}",
                field="delivery_id",
                hint="pass provider= to choose" if found else None,
            )
        entry = found[0]
        adapter = self.providers[entry.provider]
        occurred = datetime.fromisoformat(entry.occurred_at or entry.received_at)
        event = ProviderEvent(
            entry.provider,
            entry.delivery_id,
            entry.event_type or "",
            occurred,
            json.loads(entry.body),
        )
        result = await self._apply(adapter, event)
        await self.inbox.record(with_outcome(entry, result.outcome, result.http_status))
        return result

    async def handle_billing_state(
        self,
        state: Mapping[str, Any],
        *,
        provider: str = "autumn",
        occurred_at: datetime | None = None,
    ) -> WebhookResult:
        """Apply what Autumn's attach/check flow learned, where no webhook is sent.

        ``state`` is what `Autumn.billing_state_event` takes (``customer_id``, ``plan_id``,
        optional ``type``, ``status``, ``entity_id``, ``event_id``, ``metadata``). The billing
        event is applied exactly once per ``event_id`` through the same ledger as webhooks, so
        calling this after every attach and every check is safe when you pass a stable
        ``event_id`` (without one, each call is a new event).

        Raises:
            ConfigurationError: no Autumn adapter is configured under ``provider``.
            InvalidInputError: no ``customer_id``, or a plan the catalog does not know.
        """
        adapter = self.providers.get(provider)
        build = getattr(adapter, "billing_state_event", None)
        if adapter is None or build is None:
            raise ConfigurationError(
                f"handle_billing_state needs an Autumn adapter named {provider!r}: pass "
                "providers=[Autumn(...)] to OpenMeterBilling"
            )
        billing_event: BillingEvent = build(state, catalog=self._catalog, occurred_at=occurred_at)
        ids = (billing_event.provider_event_id, "billing_state")
        return await self._run(adapter.name, ids, MappedEvent(billing_events=(billing_event,)))

    async def _apply(self, adapter: PaymentProvider, event: ProviderEvent) -> WebhookResult:
        ids = (event.delivery_id, event.type)
        return await self._run(adapter.name, ids, adapter.map(event, catalog=self._catalog))

    async def _run(self, name: str, ids: tuple[str, str], mapped: MappedEvent) -> WebhookResult:
        delivery_id = ids[0]
        if mapped.rejected:
            logger.warning("%s webhook %s rejected: %s", name, delivery_id, mapped.rejected)
            return _result("rejected", mapped.rejected, name, *ids)
        if not (mapped.billing_events or mapped.topups):
            return _result("ignored", mapped.ignored or "nothing to apply", name, *ids)

        async def work(_recovered: bool) -> Mapping[str, Any]:
            done: list[Mapping[str, Any]] = []
            for billing_event in mapped.billing_events:
                applied = await self._billing.apply_event(billing_event)
                done.append({"billing_event": billing_event.type, **applied.to_dict()})
            for purchase in mapped.topups:
                granted = await self._topups.grant(
                    purchase.customer,
                    purchase.topup,
                    idempotency_key=purchase.idempotency_key,
                    payment_id=purchase.payment_id,
                    provider=purchase.provider,
                )
                done.append(
                    {
                        "topup": purchase.topup,
                        "grant_id": granted.grant.id,
                        "created": granted.created,
                    }
                )
            return {"results": done}

        try:
            outcome = await run_once(self.ledger, f"webhook:{name}:{delivery_id}", work, wait=0)
        except OperationInProgressError:
            return _result(
                "in_progress", "another delivery of this event is being applied", name, *ids
            )
        except (APIConnectionError, InternalServerError, RateLimitError, NotFoundError) as exc:
            logger.warning(
                "%s webhook %s failed, provider will retry: %s",
                name,
                delivery_id,
                type(exc).__name__,
            )
            return _result("failed", f"{type(exc).__name__}: retry later", name, *ids)
        except InvalidInputError as exc:
            return _result("rejected", str(exc), name, *ids)
        except Exception as exc:
            logger.exception("%s webhook %s failed", name, delivery_id)
            return _result("failed", f"{type(exc).__name__}", name, *ids, status=500)
        results = tuple(outcome.result.get("results", ()))
        if not outcome.fresh:
            return _result("duplicate", "applied before", name, *ids, results=results)
        return _result("applied", f"{len(results)} change(s) applied", name, *ids, results=results)

    async def _record(
        self,
        provider: str,
        delivery_id: str | None,
        received: str,
        headers: Mapping[str, str],
        body: bytes,
        verdict: str,
        result: WebhookResult,
    ) -> None:
        if self.inbox is not None:
            entry = InboxEntry(
                provider,
                delivery_id or f"unverified:{received}",
                received,
                safe_headers(headers),
                body,
                verdict,
                result.outcome,
                result.http_status,
            )
            await self.inbox.record(entry)

    def asgi_app(self, *, provider: str | None = None) -> Any:
        """A raw ASGI app: POST ``/<provider>`` (or any path with ``provider=``)."""
        from ._apps import asgi_app

        return asgi_app(self, provider)

    def wsgi_app(self, *, provider: str | None = None) -> Any:
        """A raw WSGI app (runs `handle` on a private event loop thread)."""
        from ._apps import wsgi_app

        return wsgi_app(self, provider)


def _guess_id(headers: Mapping[str, str]) -> str | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("webhook-id", "svix-id", "x-razorpay-event-id"):
        if lowered.get(name):
            return lowered[name]
    return None


def _result(
    outcome: Outcome,
    reason: str,
    provider: str,
    delivery_id: str | None = None,
    event_type: str | None = None,
    *,
    status: int | None = None,
    results: tuple[Mapping[str, Any], ...] = (),
) -> WebhookResult:
    return WebhookResult(
        outcome, status or _STATUS[outcome], reason, provider, delivery_id, event_type, results
    )
