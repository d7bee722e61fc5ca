"""`BillingEvent`: what a payment provider told us, in one provider-neutral shape; `ApplyResult`:
what applying it did."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeAlias, cast

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from .._exceptions import InvalidInputError, safe_repr

__all__ = ["ApplyResult", "BillingEvent", "BillingEventType", "EntitlementChange"]

BillingEventType: TypeAlias = Literal[
    "subscription.created",
    "subscription.active",
    "subscription.updated",
    "subscription.renewed",
    "subscription.canceled",
    "subscription.expired",
    "subscription.revoked",
    "subscription.uncanceled",
    "invoice.paid",
    "invoice.payment_failed",
    "payment.refunded",
]


_HINTS = {
    "addons": "give each add-on key a whole quantity from 1; leave an add-on out to remove it",
    "occurred_at": "pass a timezone-aware datetime, e.g. datetime.now(timezone.utc)",
}


class BillingEvent(BaseModel):
    """A subscription or payment fact, as `client.billing.apply_event` consumes it.

    Provider adapters build these from webhooks; you can build them yourself too::

        BillingEvent(
            type="subscription.active", provider="stripe", provider_event_id="evt_123",
            occurred_at=datetime.now(timezone.utc), customer=org, plan="pro",
            subscription_id="sub_42", addons={"priority_support": 1},
        )

    Attributes:
        type: What happened.
        provider: Which payment provider said so (``stripe``, ``polar``, ...).
        provider_event_id: The provider's id of the event; retries of one event share it.
        occurred_at: When it happened at the provider (orders events of one subscription).
        customer: The OpenMeter customer: an id, a key or a principal object.
        subject: Usage subject for the audit event (defaults to the customer's).
        customer_scope: Whether the customer is a user, an organization or a team.
        plan: The catalog plan key now in effect.
        previous_plan: The plan before this event (upgrades and downgrades).
        addons: Catalog add-on keys with quantities.
        subscription_id: The provider's subscription id.
        status: The provider's subscription status, verbatim.
        current_period_start: Start of the paid period.
        current_period_end: End of the paid period (when a cancellation takes effect).
        cancel_at_period_end: The subscription ends at ``current_period_end``.
        metadata: Free-form string metadata, copied into the audit event.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    type: BillingEventType
    provider: str = Field(min_length=1)
    provider_event_id: str = Field(min_length=1)
    occurred_at: AwareDatetime
    customer: Any
    subject: str | None = None
    customer_scope: Literal["user", "organization", "team"] | None = None
    plan: str | None = None
    previous_plan: str | None = None
    addons: Mapping[str, Annotated[StrictInt, Field(ge=1, le=10_000)]] = Field(default_factory=dict)
    subscription_id: str | None = None
    status: str | None = None
    current_period_start: AwareDatetime | None = None
    current_period_end: AwareDatetime | None = None
    cancel_at_period_end: bool = False
    metadata: Mapping[str, str] = Field(default_factory=dict)

    def __init__(self, **data: Any) -> None:
        # Built by hand in webhook handlers: a typed error naming the field, not pydantic's.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            location = ".".join(str(part) for part in error["loc"]) or None
            raise InvalidInputError(
                f"{error['msg']} (got {safe_repr(error.get('input'))})",
                field=location,
                hint=_HINTS.get(str(error["loc"][:1] and error["loc"][0]), "see BillingEvent"),
            ) from exc

    @field_validator("customer")
    @classmethod
    def _customer_given(cls, value: Any) -> Any:
        # `Any` admits principals (User, Organization, ...); None or "" would only fail later,
        # deep inside a request, so refuse them here.
        if value is None or value == "":
            raise ValueError("customer is required: an OpenMeter customer id, key or principal")
        return value

    @model_validator(mode="after")
    def _period_in_order(self) -> Self:
        start, end = self.current_period_start, self.current_period_end
        if start is not None and end is not None and end < start:
            raise ValueError(
                f"current_period_end ({end.isoformat()}) is before current_period_start "
                f"({start.isoformat()}); pass the provider's period bounds unchanged"
            )
        return self

    @property
    def idempotency_key(self) -> str:
        """``<provider>:<provider_event_id>``: the same for every delivery of this event."""
        return f"{self.provider}:{self.provider_event_id}"

    @property
    def audit_event_id(self) -> str:
        """A stable CloudEvents id, so OpenMeter drops repeated audit events."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"openmeter-billing:{self.idempotency_key}"))


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
