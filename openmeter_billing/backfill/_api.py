"""``client.backfill``: bring an existing user base and its subscriptions into OpenMeter."""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import pydantic

from .._exceptions import ConfigurationError, ConflictError, InvalidInputError, NotFoundError
from ..billing.events import ApplyResult, BillingEvent
from ..customer_sync import merge_into
from ..identity import store_get, store_set
from ._report import BackfillReport, Outcome
from ._runner import ItemContext, ProgressCallback, RunSettings, run_backfill
from ._state import StateFile

if TYPE_CHECKING:
    from ..billing.engine import AsyncBilling
    from ..customer_sync import AsyncCustomers
    from ..identity import CustomerIdStore, Identity

__all__ = ["DEFAULT_RATE_LIMIT", "AsyncBackfill"]

#: Requests per second when you pass nothing. OpenMeter Cloud publishes no limit for these
#: endpoints (only 30/s for entitlement value reads); 429s with Retry-After are honoured anyway.
DEFAULT_RATE_LIMIT = 100.0

Checkpointish = StateFile | str | os.PathLike[str] | None


class AsyncBackfill:
    """Bulk, resumable imports (``client.backfill``): customers and subscriptions."""

    def __init__(
        self,
        *,
        customers: AsyncCustomers,
        identity: Identity,
        customer_id_store: CustomerIdStore | None,
        billing: AsyncBilling,
    ) -> None:
        self._customers = customers
        self._identity = identity
        self._store = customer_id_store
        self._billing = billing

    async def customers(
        self,
        principals: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int = 8,
        rate_limit: float | None = DEFAULT_RATE_LIMIT,
        retries: int = 3,
        checkpoint: Checkpointish = None,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
    ) -> BackfillReport:
        """Create or update the customer of every principal; safe to rerun.

        Each principal goes through the identity resolvers like ``customers.sync``. A new
        customer costs one request (create first; a 409 falls back to read, compare and, when
        something changed, replace), so a first import is fast and a rerun creates nothing.

        Args:
            principals: Users, organizations, teams (any object your `Identity` resolves), from
                a list, a generator or an async iterator. Read lazily, never all at once.
            concurrency: How many customers are in flight at once.
            rate_limit: At most this many requests per second (None: no limit).
            retries: Extra tries for a transient failure (network, 408, 429, 5xx).
            checkpoint: A `StateFile` (or its path, resuming if it exists): a rerun skips what
                is done and ``report.skipped`` says how many. The input must come back in the
                same order.
            on_progress: Called with a `BackfillProgress` a few times a second and at the end.
            total: How many principals there are, for progress (``len()`` is used if it exists).

        Returns:
            A `BackfillReport`; items that failed are listed with reasons, never raised.
        """
        settings = _settings(concurrency, rate_limit, retries, checkpoint, on_progress)
        return await run_backfill(
            "customers",
            principals,
            self._customer,
            settings,
            total=_total(principals, total),
            source=_source(checkpoint),
        )

    async def subscriptions(
        self,
        events: Iterable[BillingEvent | Mapping[str, Any]]
        | AsyncIterable[BillingEvent | Mapping[str, Any]],
        *,
        concurrency: int = 4,
        rate_limit: float | None = DEFAULT_RATE_LIMIT / 4,
        retries: int = 3,
        checkpoint: Checkpointish = None,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
    ) -> BackfillReport:
        """Grant entitlements for active subscriptions through ``billing.apply_event``.

        Each item is a `BillingEvent` or a mapping of its fields. Missing fields default to a
        backfill: ``type="subscription.active"``, ``provider_event_id="backfill:<subscription>"``
        and ``occurred_at`` now. With a client ledger every event applies exactly once, so a
        rerun reports them unchanged; without one, reconciliation still converges.

        ``rate_limit`` counts events here, not requests: one event makes about three (read
        entitlements, create each, audit), hence the lower default. Other arguments are as
        for `customers`.
        """
        settings = _settings(concurrency, rate_limit, retries, checkpoint, on_progress)
        return await run_backfill(
            "subscriptions",
            events,
            self._subscription,
            settings,
            total=_total(events, total),
            source=_source(checkpoint),
        )

    async def _customer(self, principal: Any, context: ItemContext) -> Outcome:
        resolved = await self._identity.resolve(principal)
        context.key = resolved.key
        body = resolved.to_create()
        customers = self._customers
        await context.pace()
        try:
            customer = await customers._create(body)
            outcome: Outcome = "created"
        except ConflictError as conflict:
            await context.pace()
            try:
                existing = await customers.get(resolved.key)
            except NotFoundError:
                raise conflict from None  # a subject key belongs to another customer
            merged = merge_into(existing, body)
            customer, outcome = existing, "unchanged"
            if merged is not None:
                await context.pace()
                customer, outcome = await customers._replace(existing.id, merged), "updated"
        store = self._store
        if store is not None and await store_get(store, resolved.key) != customer.id:
            await store_set(store, resolved.key, customer.id, principal)
        return outcome

    async def _subscription(
        self, item: BillingEvent | Mapping[str, Any], context: ItemContext
    ) -> Outcome:
        event = _billing_event(item, context.index)
        context.key = event.idempotency_key
        await context.pace()
        result = await self._billing.apply_event(event)
        return _subscription_outcome(result)


def _settings(
    concurrency: int,
    rate_limit: float | None,
    retries: int,
    checkpoint: Checkpointish,
    on_progress: ProgressCallback | None,
) -> RunSettings:
    given: object = concurrency  # checked at run time: callers may pass anything
    if isinstance(given, bool) or not isinstance(given, int) or concurrency < 1:
        raise InvalidInputError(
            f"concurrency must be a whole number of at least 1, got {concurrency!r}",
            field="concurrency",
            hint="8 suits most servers; raise it for a remote OpenMeter with high latency",
        )
    if rate_limit is not None and not rate_limit > 0:
        raise InvalidInputError(
            f"rate_limit must be above 0 requests per second, got {rate_limit!r}",
            field="rate_limit",
            hint="pass None for no limit",
        )
    tries: object = retries
    if isinstance(tries, bool) or not isinstance(tries, int) or retries < 0:
        raise InvalidInputError(
            f"retries must be a whole number of at least 0, got {retries!r}", field="retries"
        )
    if checkpoint is not None and not isinstance(checkpoint, (StateFile, str, os.PathLike)):
        raise ConfigurationError(
            f"checkpoint must be a StateFile or a path, got {type(checkpoint).__name__}"
        )
    if checkpoint is None or isinstance(checkpoint, StateFile):
        store = checkpoint
    else:
        store = StateFile(checkpoint)
    return RunSettings(
        concurrency=concurrency,
        rate_limit=rate_limit,
        retries=retries,
        checkpoint=store,
        on_progress=on_progress,
    )


def _total(items: object, given: int | None) -> int | None:
    if given is not None:
        return given
    try:
        return len(items)  # type: ignore[arg-type]
    except TypeError:
        return None


def _source(checkpoint: Checkpointish) -> str | None:
    return None if checkpoint is None else str(getattr(checkpoint, "path", checkpoint))


def _billing_event(item: BillingEvent | Mapping[str, Any], index: int) -> BillingEvent:
    if isinstance(item, BillingEvent):
        return item
    if not isinstance(item, Mapping):
        raise InvalidInputError(
            f"expected a BillingEvent or a mapping, got {type(item).__name__}",
            field=f"events[{index}]",
        )
    fields = dict(item)
    fields.setdefault("type", "subscription.active")
    if "provider_event_id" not in fields and fields.get("subscription_id"):
        fields["provider_event_id"] = f"backfill:{fields['subscription_id']}"
    fields.setdefault("occurred_at", datetime.now(timezone.utc))
    try:
        return BillingEvent.model_validate(fields)
    except pydantic.ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        location = ".".join(str(p) for p in error["loc"])
        raise InvalidInputError(
            f"{error['msg']} (got {error.get('input')!r})",
            field=f"events[{index}].{location}" if location else f"events[{index}]",
            hint="see BillingEvent: provider, subscription_id, customer and plan are needed",
        ) from exc


def _subscription_outcome(result: ApplyResult) -> Outcome:
    if result.status == "duplicate":
        return "unchanged"
    if result.overridden or result.deleted:
        return "updated"
    return "created" if result.created else "unchanged"
