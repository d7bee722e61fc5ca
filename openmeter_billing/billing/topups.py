"""``client.topups``: turn a paid catalog top-up into exactly one OpenMeter grant."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from .._exceptions import ConflictError, InvalidInputError, NotFoundError
from ..catalog._client_api import require_catalog
from ..catalog.compile_openmeter import (
    IDEMPOTENCY_KEY,
    compile_openmeter_topup_grant,
    topup_feature_key,
)
from ..catalog.dsl import Catalog
from ..identity import CustomerRef
from ..types.grants import EntitlementGrant
from ._grants import find_grant_by_idempotency_key, topup_holder_body
from ._ledger_run import run_once

if TYPE_CHECKING:
    from .._http import ServerClock
    from ..catalog.dsl import Catalog
    from ..resources.entitlements import AsyncEntitlements
    from ..resources.events import AsyncEvents
    from .ledger import Ledger

__all__ = ["AsyncTopups", "TopupResult"]


@dataclass(frozen=True)
class TopupResult:
    """What `AsyncTopups.grant` did.

    Attributes:
        grant: The grant (new, or the existing one on replay).
        created: False when the idempotency key had already produced this grant.
        feature_key: The metered feature the grant adds balance to.
        idempotency_key: The key that guards the grant.
    """

    grant: EntitlementGrant
    created: bool
    feature_key: str
    idempotency_key: str


class AsyncTopups:
    """Top-up grants from the client's catalog, exactly once per idempotency key."""

    def __init__(
        self,
        *,
        entitlements: AsyncEntitlements,
        events: AsyncEvents,
        ledger: Ledger | None,
        catalog: Catalog | None,
        server_clock: ServerClock,
    ) -> None:
        self._entitlements = entitlements
        self._events = events
        self._ledger = ledger
        self._catalog = catalog
        self._server_clock = server_clock

    async def grant(
        self,
        customer: CustomerRef,
        topup: str,
        *,
        idempotency_key: str,
        payment_id: str | None = None,
        provider: str | None = None,
        metadata: Mapping[str, str] | None = None,
        effective_at: datetime | None = None,
        idempotency: Literal["metadata", "none"] = "metadata",
    ) -> TopupResult:
        """Grant a bought top-up (for example ``"token_pack_1m"``) to a customer.

        The idempotency key (for example ``"checkout:cs_123"``) is stored in the grant's metadata.
        With ``idempotency="metadata"`` (the default) every page of the entitlement's grants is
        searched for it first, and a replay returns the existing grant with ``created=False``;
        with a ledger on the client the key is also claimed there, so concurrent deliveries
        cannot both create a grant. ``idempotency="none"`` turns both guards off (your own
        ledger guards the call). When the customer has no entitlement for the feature yet, a
        metered one is created to hold the grant, unless the top-up is limited to
        ``compatible_plans``. An audit event ``openmeter-billing.topup.applied`` with an id
        derived from the key is ingested on every call, so OpenMeter keeps one.

        Args:
            effective_at: When the balance becomes usable; defaults to OpenMeter's now (read from
                the ``Date`` header of its last response).

        Raises:
            InvalidInputError: empty key, unknown top-up, bad metadata or ``idempotency``, or
                a top-up for specific plans and a customer without the feature.
            OperationInProgressError: another delivery holds the ledger claim; retry shortly.
        """
        if not idempotency_key:
            raise InvalidInputError(
                "idempotency_key is required",
                field="idempotency_key",
                hint="use the provider's payment or checkout id, e.g. 'checkout:cs_123'",
            )
        if idempotency not in ("metadata", "none"):
            raise InvalidInputError(
                f"must be 'metadata' or 'none', got {idempotency!r}",
                field="idempotency",
                hint="keep the default 'metadata' unless your own ledger guards this call",
            )
        catalog = require_catalog(self._catalog)
        feature_key = topup_feature_key(catalog, topup)
        body = compile_openmeter_topup_grant(
            catalog,
            topup,
            idempotency_key=idempotency_key,
            effective_at=effective_at or self._server_clock.now(),
            payment_id=payment_id,
            provider=provider,
            metadata=metadata,
        )

        async def work(_recovered: bool) -> dict[str, Any]:
            check = idempotency == "metadata"
            grant, created = await self._grant_once(
                customer, topup, feature_key, body, check, dated_by_server=effective_at is None
            )
            return {"grant": grant.to_dict(), "created": created}

        guard = self._ledger if idempotency == "metadata" else None
        outcome = await run_once(guard, f"topup:{idempotency_key}", work)
        grant = EntitlementGrant.model_validate(outcome.result["grant"])
        created = bool(outcome.result["created"]) and outcome.fresh
        result = TopupResult(grant, created, feature_key, idempotency_key)
        await self._audit(customer, topup, result, provider, payment_id)
        return result

    async def _grant_once(
        self,
        customer: CustomerRef,
        topup: str,
        feature_key: str,
        body: dict[str, Any],
        check: bool,
        *,
        dated_by_server: bool,
    ) -> tuple[EntitlementGrant, bool]:
        listed = False  # a successful grant listing proves the entitlement exists
        if check:
            try:
                existing = await find_grant_by_idempotency_key(
                    self._entitlements, customer, feature_key, body["metadata"][IDEMPOTENCY_KEY]
                )
                listed = True
            except NotFoundError:  # no entitlement yet, so no grant either
                existing = None
            if existing is not None:
                return existing, False
        if not listed:
            await self._ensure_entitlement(customer, topup, feature_key)
        if dated_by_server:
            # Dated now, after at least one exchange with OpenMeter: a client that had not talked
            # to it before would otherwise date the grant by this machine's clock.
            body = {**body, "effectiveAt": self._server_clock.now()}
        grant = await self._entitlements.grants.create(customer, feature_key, body)
        return grant, True

    async def _ensure_entitlement(
        self, customer: CustomerRef, topup: str, feature_key: str
    ) -> None:
        try:
            await self._entitlements.get(customer, feature_key)
            return
        except NotFoundError:
            pass
        plans = _compatible_plans(require_catalog(self._catalog), topup)
        if plans is not None:
            raise InvalidInputError(
                f"customer {customer!r} has no {feature_key!r} entitlement, and top-up "
                f"{topup!r} is only sold with plans {', '.join(plans)}",
                field="customer",
                hint="apply the customer's subscription first (client.billing.apply_event)",
            )
        # A 409 means another request created it meanwhile: one active entitlement is enough.
        with contextlib.suppress(ConflictError):
            await self._entitlements.create(customer, topup_holder_body(feature_key))

    async def _audit(
        self,
        customer: CustomerRef,
        topup: str,
        result: TopupResult,
        provider: str | None,
        payment_id: str | None,
    ) -> None:
        data: dict[str, Any] = {
            "topup": topup,
            "feature": result.feature_key,
            "grant_id": result.grant.id,
            "amount": result.grant.amount,
            "created": result.created,
            "idempotency_key": result.idempotency_key,
        }
        if provider:
            data["provider"] = provider
        if payment_id:
            data["payment_id"] = payment_id
        name = f"openmeter-billing:topup:{result.idempotency_key}"
        await self._events.ingest(
            type="openmeter-billing.topup.applied",
            customer=customer,
            data=data,
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        )


def _compatible_plans(catalog: Catalog, topup: str) -> tuple[str, ...] | None:
    """The plans a top-up is limited to (None: any customer may buy it)."""
    for name, item in catalog.topups.items():
        if topup in (name, item.key):
            return item.compatible_plans or None
    return None
