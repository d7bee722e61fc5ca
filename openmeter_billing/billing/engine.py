"""``client.billing.apply_event``: reconcile a customer's entitlements with a billing event.

The target entitlements come from the catalog (plan plus add-ons) or an injected mapper. Only
entitlements this library manages (``openmeter_billing.managed`` in their metadata) are created,
overridden or deleted; anything else is left alone and reported as skipped.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, cast

from .._types import MaybeAwaitable
from ..catalog.compile_openmeter import MANAGED_KEY, compile_openmeter_entitlements
from ..types.entitlements import Entitlement, entitlement_create_adapter
from ._grants import recreate_grants, topup_grants_to_carry
from ._ledger_run import run_once
from .events import BillingEvent

if TYPE_CHECKING:
    from .._client import OpenMeterBilling

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
#: Metadata that records history, not terms: differences here never trigger an override.
_BOOKKEEPING = {EVENT_AT_KEY}

GRANTING = {
    "subscription.created",
    "subscription.active",
    "subscription.updated",
    "subscription.renewed",
    "subscription.uncanceled",
    "invoice.paid",
}
REVOKING = {"subscription.expired", "subscription.revoked"}

EntitlementMapper: TypeAlias = Callable[
    [BillingEvent], MaybeAwaitable[Sequence[Mapping[str, Any]] | None]
]
Hook: TypeAlias = Callable[..., MaybeAwaitable[None]]
Action = Literal["created", "overridden", "deleted", "unchanged", "skipped"]


@dataclass(frozen=True)
class EntitlementChange:
    """One feature's outcome: what happened to its entitlement and why."""

    feature_key: str
    action: Action
    reason: str
    entitlement_id: str | None = None


@dataclass(frozen=True)
class ApplyResult:
    """What `AsyncBilling.apply_event` did.

    ``status``: ``applied`` (entitlements reconciled), ``audited`` (nothing to change for this
    type or mode), ``scheduled`` (a cancellation that takes effect at period end), ``stale`` (an
    older event than one already applied; skipped) or ``duplicate`` (this event was applied
    before; the stored result is returned).
    """

    status: Literal["applied", "audited", "scheduled", "stale", "duplicate"]
    reason: str
    changes: tuple[EntitlementChange, ...] = field(default_factory=tuple)

    def _of(self, action: Action) -> list[str]:
        return [c.feature_key for c in self.changes if c.action == action]

    @property
    def created(self) -> list[str]:
        """Feature keys whose entitlement was created."""
        return self._of("created")

    @property
    def overridden(self) -> list[str]:
        """Feature keys whose entitlement got new terms."""
        return self._of("overridden")

    @property
    def deleted(self) -> list[str]:
        """Feature keys whose entitlement was removed."""
        return self._of("deleted")

    @property
    def skipped(self) -> list[str]:
        """Feature keys left alone (for example an entitlement this library does not manage)."""
        return self._of("skipped")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the ledger)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "changes": [c.__dict__ for c in self.changes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], status: str | None = None) -> ApplyResult:
        """Rebuild a stored result."""
        changes = tuple(EntitlementChange(**c) for c in data.get("changes", []))
        return cls(
            status=cast(Any, status or data["status"]), reason=str(data["reason"]), changes=changes
        )


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

    def __init__(self, client: OpenMeterBilling) -> None:
        self._client = client

    @property
    def options(self) -> BillingOptions:
        """The client's `BillingOptions`."""
        return self._client.billing_options

    async def apply_event(self, event: BillingEvent) -> ApplyResult:
        """Apply a billing event exactly once (with a ledger) and audit it in OpenMeter.

        Cancellation at period end changes nothing until the period ends (the provider's expiry
        event revokes); revoke and expire take effect now; renewals change nothing unless terms
        changed. An event older than the last one applied to the same subscription is skipped.
        """

        async def work(_recovered: bool) -> Mapping[str, Any]:
            # Reconciliation converges on the target state, so a recovered claim needs no
            # special care: entitlements already created are found and left unchanged.
            await _call(self.options.before_apply, event)
            result = await self._apply(event)
            await _call(self.options.after_apply, event, result)
            return result.to_dict()

        outcome = await run_once(self._client.ledger, f"billing:{event.idempotency_key}", work)
        result = ApplyResult.from_dict(outcome.result, None if outcome.fresh else "duplicate")
        await self._audit(event, result)
        return result

    async def _apply(self, event: BillingEvent) -> ApplyResult:
        if self.options.entitlement_mode == "none":
            return ApplyResult("audited", "entitlement_mode is 'none'")
        if event.type not in GRANTING | REVOKING | {"subscription.canceled"}:
            return ApplyResult("audited", f"{event.type} does not change entitlements")
        current = [
            e async for e in self._client.entitlements.list(event.customer, include_deleted=True)
        ]
        newest = _newest_applied(current, event.subscription_id)
        if newest is not None and newest > event.occurred_at:
            return ApplyResult("stale", f"an event from {newest.isoformat()} was applied already")
        if event.type == "subscription.canceled" and _ends_later(event):
            return ApplyResult("scheduled", "canceled at period end; access continues until then")
        targets = await self._targets(event) if event.type in GRANTING else []
        changes = await self._reconcile(
            event, [e for e in current if e.deleted_at is None], targets
        )
        return ApplyResult("applied", f"{event.type} reconciled", tuple(changes))

    async def _targets(self, event: BillingEvent) -> list[dict[str, Any]]:
        mapper = self.options.map_plan_to_entitlements
        if mapper is not None:
            bodies = await _maybe_await(mapper(event)) or []
        elif event.plan is None:
            bodies = []
        else:
            catalog = self._client.catalog.definition
            bodies = compile_openmeter_entitlements(catalog, event.plan, dict(event.addons))
        stamped = []
        for body in bodies:
            model = entitlement_create_adapter.validate_python(dict(body)).to_body()
            metadata = dict(model.get("metadata") or {})
            metadata[MANAGED_KEY] = "true"
            metadata[EVENT_AT_KEY] = event.occurred_at.astimezone(timezone.utc).isoformat()
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
            if key in wanted:
                continue
            if not _managed(entitlement):
                changes.append(
                    EntitlementChange(
                        key, "skipped", "not managed by openmeter-billing", entitlement.id
                    )
                )
                continue
            await self._client.entitlements.delete(event.customer, entitlement.id)
            changes.append(EntitlementChange(key, "deleted", "no longer granted", entitlement.id))
        return changes

    async def _converge(
        self, event: BillingEvent, key: str, existing: Entitlement | None, body: dict[str, Any]
    ) -> EntitlementChange:
        client = self._client
        if existing is None:
            created = await client.entitlements.create(event.customer, body)
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
        carried = (
            await topup_grants_to_carry(client, event.customer, key, datetime.now(timezone.utc))
            if existing.type == "metered" and body.get("type") == "metered"
            else []
        )
        replaced = await client.entitlements.override(event.customer, existing.id, body)
        await recreate_grants(client, event.customer, key, carried)
        return EntitlementChange(key, "overridden", "terms changed", replaced.id)

    async def _audit(self, event: BillingEvent, result: ApplyResult) -> None:
        data: dict[str, Any] = {
            "provider": event.provider,
            "provider_event_id": event.provider_event_id,
            "plan": event.plan,
            "previous_plan": event.previous_plan,
            "addons": dict(event.addons),
            "subscription_id": event.subscription_id,
            "status": result.status,
            "reason": result.reason,
            "changes": [c.__dict__ for c in result.changes],
            "metadata": dict(event.metadata),
        }
        customer = event.customer if event.subject is None else None
        await self._client.events.ingest(
            type=f"openmeter-billing.billing.{event.type}",
            customer=customer,
            subject=event.subject,
            id=event.audit_event_id,
            time=event.occurred_at,
            data={k: v for k, v in data.items() if v is not None},
        )


def _managed(entitlement: Entitlement) -> bool:
    return (entitlement.metadata or {}).get(MANAGED_KEY) == "true"


def _newest_applied(
    entitlements: list[Entitlement], subscription_id: str | None
) -> datetime | None:
    if subscription_id is None:
        return None
    stamps = [
        datetime.fromisoformat(e.metadata[EVENT_AT_KEY])
        for e in entitlements
        if e.metadata
        and e.metadata.get(SUBSCRIPTION_KEY) == subscription_id
        and EVENT_AT_KEY in e.metadata
    ]
    return max(stamps, default=None)


def _ends_later(event: BillingEvent) -> bool:
    end = event.current_period_end
    return event.cancel_at_period_end and end is not None and end > datetime.now(timezone.utc)


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


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def _call(hook: Hook | None, *args: Any) -> None:
    if hook is not None:
        result = hook(*args)
        if inspect.isawaitable(result):
            await cast(Awaitable[Any], result)
