"""``client.billing.apply_event``: reconcile a customer's entitlements with a billing event.

The target entitlements come from the catalog (plan plus add-ons) or an injected mapper. Only
entitlements this library manages (``openmeter_billing.managed`` in their metadata) are created,
overridden or deleted; anything else is left alone and reported as skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .._exceptions import InvalidInputError
from .._types import MaybeAwaitable, maybe_await
from ..catalog._client_api import require_catalog
from ..catalog.compile_openmeter import (
    ADDONS_KEY,
    MANAGED_KEY,
    PLAN_KEY,
    compile_openmeter_entitlements,
)
from ..resources._base import validate_with
from ..types.entitlements import Entitlement, entitlement_create_adapter
from ._grants import (
    SOURCE_KEY,
    LiveTopup,
    carry_topup_grants,
    live_topup_grants,
    topup_holder_body,
)
from ._ledger_run import WAIT_FOR_OWNER, run_once
from ._ordering import OrderedLocks
from .events import ApplyResult, BillingEvent, EntitlementChange

if TYPE_CHECKING:
    from ..catalog.dsl import Catalog
    from ..resources.entitlements import AsyncEntitlements
    from ..resources.events import AsyncEvents
    from .ledger import Ledger

__all__ = [
    "ApplyResult",
    "AsyncBilling",
    "BillingOptions",
    "EntitlementChange",
    "EntitlementMapper",
    "Hook",
]

logger = logging.getLogger("openmeter_billing")

SUBSCRIPTION_KEY = "openmeter_billing.subscription"
EVENT_AT_KEY = "openmeter_billing.event_at"
#: Metadata that records history, not terms: differences here never trigger an override (an
#: override starts a new entitlement, which would hand out a fresh allowance mid-period).
_BOOKKEEPING = {EVENT_AT_KEY, PLAN_KEY, ADDONS_KEY}

GRANTING = {
    "subscription.created",
    "subscription.active",
    "subscription.updated",
    "subscription.renewed",
    "subscription.uncanceled",
    "invoice.paid",
}
REVOKING = {"subscription.expired", "subscription.revoked"}
#: Where the newest applied event time lives in a subscription's lock data.
NEWEST_KEY = "newest_event_at"

EntitlementMapper: TypeAlias = Callable[
    [BillingEvent], MaybeAwaitable[Sequence[Mapping[str, Any]] | None]
]
Hook: TypeAlias = Callable[..., MaybeAwaitable[None]]


@dataclass(frozen=True)
class BillingOptions:
    """How billing events become entitlements (``OpenMeterBilling(billing_options=...)``).

    Attributes:
        entitlement_mode: ``"sync"`` reconciles entitlements; ``"none"`` only audits and runs
            hooks, and no mapper runs at all.
        map_plan_to_entitlements: ``event -> [entitlement create body, ...]`` used instead of
            the catalog (sync or async).
        before_apply: ``hook(event)`` before anything changes (sync or async).
        after_apply: ``hook(event, result)`` after the changes (sync or async).
    """

    entitlement_mode: Literal["sync", "none"] = "sync"
    map_plan_to_entitlements: EntitlementMapper | None = None
    before_apply: Hook | None = None
    after_apply: Hook | None = None


class AsyncBilling:
    """Billing events to entitlements (``client.billing``)."""

    def __init__(
        self,
        *,
        entitlements: AsyncEntitlements,
        events: AsyncEvents,
        ledger: Ledger | None,
        catalog: Catalog | None,
        options: BillingOptions,
    ) -> None:
        self._entitlements = entitlements
        self._events = events
        self._ledger = ledger
        self._catalog = catalog
        self._options = options
        self._order = OrderedLocks()

    @property
    def options(self) -> BillingOptions:
        """The client's `BillingOptions`."""
        return self._options

    async def apply_event(self, event: BillingEvent) -> ApplyResult:
        """Apply a billing event exactly once (with a ledger) and audit it in OpenMeter.

        Cancellation at period end changes nothing until the period ends (the provider's expiry
        event revokes); revoke and expire take effect now; renewals change nothing unless terms
        changed. An event older than the last one applied to the same subscription is skipped.

        Events of one subscription are applied one at a time (a lock in the ledger, shared by
        every worker, or in this process without a ledger), and the newest applied event time
        is remembered even when nothing changed, so the final state is the one the events give
        in time order, whatever order and concurrency they arrive in.
        Every delivery, duplicates included, ingests the audit event under one stable id, so
        OpenMeter keeps exactly one.

        Raises:
            OperationInProgressError: another delivery of this event holds the ledger claim;
                answer the webhook with a retryable status.
            NotFoundError: the customer does not exist in OpenMeter (sync it first).
            InvalidInputError: not a `BillingEvent`, an unknown plan or add-on, or a mapper
                body that is not a valid entitlement.
        """
        if not isinstance(event, BillingEvent):
            raise InvalidInputError(
                f"expected a BillingEvent, got {type(event).__name__}",
                field="event",
                hint="build one with BillingEvent(type=..., provider=..., ...)",
            )

        async def work(_recovered: bool) -> Mapping[str, Any]:
            # Reconciliation converges on the target state, so a recovered claim needs no
            # special care: entitlements already created are found and left unchanged.
            await _call(self.options.before_apply, event)
            result = await self._apply(event)
            await _call(self.options.after_apply, event, result)
            return result.to_dict()

        outcome = await run_once(self._ledger, f"billing:{event.idempotency_key}", work)
        result = ApplyResult.from_dict(outcome.result, None if outcome.fresh else "duplicate")
        await self._audit(event, result)
        return result

    async def _apply(self, event: BillingEvent) -> ApplyResult:
        if self.options.entitlement_mode == "none":
            return ApplyResult("audited", "entitlement_mode is 'none'")
        if event.type not in GRANTING | REVOKING | {"subscription.canceled"}:
            return ApplyResult("audited", f"{event.type} does not change entitlements")
        name = _order_lock_name(event)
        if name is None:
            return await self._apply_in_order(event, {})
        return await self._order.run(
            self._ledger,
            name,
            lambda memory: self._apply_in_order(event, memory),
            wait=WAIT_FOR_OWNER,
        )

    async def _apply_in_order(self, event: BillingEvent, memory: dict[str, Any]) -> ApplyResult:
        """Apply ``event`` while holding its subscription's lock; ``memory`` is the lock's data."""
        current = [e async for e in self._entitlements.list(event.customer, include_deleted=True)]
        stale = _stale_reason(event, current, memory)
        if stale is not None:
            return ApplyResult("stale", stale)
        if event.type == "subscription.canceled" and _ends_later(event):
            end = event.current_period_end
            until = end.isoformat() if end else "the provider's expiry event"
            return ApplyResult("scheduled", f"canceled at period end; access continues to {until}")
        targets = await self._targets(event) if event.type in GRANTING else []
        if targets is None:
            return ApplyResult("audited", f"{event.type} names no plan; entitlements kept")
        live = [e for e in current if e.deleted_at is None]
        changes = await self._reconcile(event, live, targets)
        # This event decided the subscription's state (a plan, or no access): remember its
        # time even if nothing changed, so an older event arriving later cannot undo it.
        memory[NEWEST_KEY] = _stamp(event.occurred_at)
        return ApplyResult("applied", f"{event.type} reconciled", tuple(changes))

    async def _targets(self, event: BillingEvent) -> list[dict[str, Any]] | None:
        """Create bodies for what ``event`` grants; None when it says nothing about that."""
        mapper = self.options.map_plan_to_entitlements
        if mapper is not None:
            bodies = await maybe_await(mapper(event))
        elif event.plan is None:
            bodies = None  # for example invoice.paid without a plan: nothing to reconcile
        else:
            catalog = require_catalog(self._catalog)
            bodies = compile_openmeter_entitlements(catalog, event.plan, dict(event.addons))
        if bodies is None:
            return None
        stamped = []
        for index, body in enumerate(bodies):
            model = validate_with(
                entitlement_create_adapter, dict(body), f"map_plan_to_entitlements[{index}]"
            ).to_body()
            metadata = dict(model.get("metadata") or {})
            metadata[MANAGED_KEY] = "true"
            metadata[EVENT_AT_KEY] = _stamp(event.occurred_at)
            if event.subscription_id:
                metadata[SUBSCRIPTION_KEY] = event.subscription_id
            model["metadata"] = metadata
            stamped.append(model)
        return stamped

    async def _reconcile(
        self, event: BillingEvent, active: list[Entitlement], targets: list[dict[str, Any]]
    ) -> list[EntitlementChange]:
        by_feature = {e.feature_key: e for e in active}
        wanted = {t["featureKey"]: t for t in targets}
        changes = [
            await self._converge(event, key, by_feature.get(key), body)
            for key, body in wanted.items()
        ]
        for key, entitlement in by_feature.items():
            if key not in wanted:
                changes.append(await self._remove(event, entitlement))
        return changes

    async def _converge(
        self, event: BillingEvent, key: str, existing: Entitlement | None, body: dict[str, Any]
    ) -> EntitlementChange:
        if existing is None:
            created = await self._entitlements.create(event.customer, body)
            return EntitlementChange(key, "created", "granted by the plan", created.id)
        if not _managed(existing):
            return EntitlementChange(
                key,
                "skipped",
                "an entitlement not managed by openmeter-billing exists",
                existing.id,
            )
        if _terms(existing.to_dict()) == _terms(body):
            return EntitlementChange(key, "unchanged", "terms unchanged", existing.id)
        replaced, carried = await self._override(event, existing, body)
        reason = "terms changed" + (f"; {carried} top-up grant(s) carried over" if carried else "")
        return EntitlementChange(key, "overridden", reason, replaced.id)

    async def _remove(self, event: BillingEvent, entitlement: Entitlement) -> EntitlementChange:
        key, metadata = entitlement.feature_key, entitlement.metadata or {}
        if not _managed(entitlement):
            return EntitlementChange(
                key, "skipped", "not managed by openmeter-billing", entitlement.id
            )
        if metadata.get(SOURCE_KEY) == "topup":
            return EntitlementChange(key, "skipped", "holds bought top-ups", entitlement.id)
        owner = metadata.get(SUBSCRIPTION_KEY)
        if event.subscription_id is not None and owner not in (None, event.subscription_id):
            return EntitlementChange(
                key, "skipped", f"belongs to subscription {owner}", entitlement.id
            )
        if entitlement.type == "metered":
            topups = await live_topup_grants(self._entitlements, event.customer, key)
            if topups:
                interval = entitlement.to_dict().get("usagePeriod", {}).get("interval", "MONTH")
                holder = topup_holder_body(key, str(interval))
                replaced, carried = await self._override(event, entitlement, holder, topups)
                reason = f"no longer granted; kept to hold {carried} top-up grant(s)"
                return EntitlementChange(key, "overridden", reason, replaced.id)
        await self._entitlements.delete(event.customer, entitlement.id)
        return EntitlementChange(key, "deleted", "no longer granted", entitlement.id)

    async def _override(
        self,
        event: BillingEvent,
        existing: Entitlement,
        body: dict[str, Any],
        topups: list[LiveTopup] | None = None,
    ) -> tuple[Entitlement, int]:
        """Override ``existing`` with ``body``, carrying its top-up balance when both are metered.

        Returns the new entitlement and how many top-up grants moved to it.
        """
        entitlements, key = self._entitlements, existing.feature_key
        if topups is None:
            both_metered = existing.type == "metered" and body.get("type") == "metered"
            topups = (
                await live_topup_grants(entitlements, event.customer, key) if both_metered else []
            )
        replaced = await entitlements.override(event.customer, existing.id, body)
        # The new entitlement's creation time is the server's "now" (this machine may differ).
        carried = await carry_topup_grants(
            entitlements, event.customer, key, topups, replaced.created_at
        )
        return replaced, carried

    async def _audit(self, event: BillingEvent, result: ApplyResult) -> None:
        data: dict[str, Any] = {
            "provider": event.provider,
            "provider_event_id": event.provider_event_id,
            "plan": event.plan,
            "previous_plan": event.previous_plan,
            "addons": dict(event.addons),
            "subscription_id": event.subscription_id,
            "subscription_status": event.status,
            "customer_scope": event.customer_scope,
            "status": result.status,
            "reason": result.reason,
            "changes": [c.__dict__ for c in result.changes],
            "metadata": dict(event.metadata),
        }
        customer = event.customer if event.subject is None else None
        await self._events.ingest(
            type=f"openmeter-billing.billing.{event.type}",
            customer=customer,
            subject=event.subject,
            id=event.audit_event_id,
            time=event.occurred_at,
            data={k: v for k, v in data.items() if v is not None},
        )


def _managed(entitlement: Entitlement) -> bool:
    return (entitlement.metadata or {}).get(MANAGED_KEY) == "true"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat()


def _order_lock_name(event: BillingEvent) -> str | None:
    """The lock that orders ``event`` among its subscription's events (per customer without one)."""
    if event.subscription_id is not None:
        return f"lock:billing-subscription:{event.provider}:{event.subscription_id}"
    if isinstance(event.customer, str):
        return f"lock:billing-customer:{event.customer}"
    return None


def _stale_reason(
    event: BillingEvent, current: list[Entitlement], memory: Mapping[str, Any]
) -> str | None:
    """Why ``event`` is older than what was applied to its subscription, or None.

    Two witnesses: the stamps on the subscription's entitlements (deleted ones included) and
    the lock's memory, which also knows events that changed nothing or removed everything.
    """
    if event.subscription_id is None:
        return None
    newest = _newest_applied(current, event.subscription_id)
    remembered = memory.get(NEWEST_KEY)
    if isinstance(remembered, str):
        at = datetime.fromisoformat(remembered)
        newest = at if newest is None else max(newest, at)
    if newest is not None and newest > event.occurred_at:
        return f"an event from {newest.isoformat()} was applied already"
    return None


def _newest_applied(
    entitlements: list[Entitlement], subscription_id: str | None
) -> datetime | None:
    """The newest event stamp on the subscription's entitlements, deleted ones included."""
    if subscription_id is None:
        return None
    stamps = []
    for entitlement in entitlements:
        metadata = entitlement.metadata or {}
        if metadata.get(SUBSCRIPTION_KEY) == subscription_id and EVENT_AT_KEY in metadata:
            try:
                stamps.append(datetime.fromisoformat(metadata[EVENT_AT_KEY]))
            except ValueError:  # edited by hand: ignore rather than fail every event
                logger.warning("ignoring unreadable %s on %s", EVENT_AT_KEY, entitlement.id)
    return max(stamps, default=None)


def _ends_later(event: BillingEvent) -> bool:
    """Whether a cancellation waits for the period end (the provider's expiry event ends it).

    Compared with the event's own time, not this machine's clock: the provider decided at
    ``occurred_at`` that access runs to ``current_period_end``. Without a known end, waiting is
    the safe side: the customer paid for the period and the expiry event will come.
    """
    end = event.current_period_end
    return event.cancel_at_period_end and (end is None or end > event.occurred_at)


def _terms(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of an entitlement that matter for access, comparable between body and response."""
    usage_period = body.get("usagePeriod") or {}
    issue = body.get("issue") or {}
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k not in _BOOKKEEPING}
    return {
        "type": body.get("type"),
        "interval": str(usage_period.get("interval", "")).upper() or None,
        "issue": (issue.get("amount"), issue.get("priority") or 1) if issue else None,
        "soft": bool(body.get("isSoftLimit", False)),
        "preserve": bool(body.get("preserveOverageAtReset", False)),
        "config": body.get("config"),
        "metadata": metadata,
    }


async def _call(hook: Hook | None, *args: Any) -> None:
    if hook is not None:
        await maybe_await(hook(*args))
