"""``client.topups``: turn a paid catalog top-up into exactly one OpenMeter grant."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from .._exceptions import InvalidInputError, NotFoundError
from ..catalog.compile_openmeter import (
    MANAGED_KEY,
    compile_openmeter_topup_grant,
    topup_feature_key,
)
from ..identity import CustomerRef
from ..types.grants import EntitlementGrant
from ._grants import find_grant_by_idempotency_key
from ._ledger_run import run_once

if TYPE_CHECKING:
    from .._client import OpenMeterBilling

__all__ = ["AsyncTopups", "TopupResult"]

#: ``"openmeter_billing.source": "topup"`` marks an entitlement created only to hold top-ups.
SOURCE_KEY = "openmeter_billing.source"


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

    def __init__(self, client: OpenMeterBilling) -> None:
        self._client = client

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

        The idempotency key (for example ``"checkout:cs_123"``) is stored in the grant's metadata;
        a replay returns the existing grant with ``created=False``. With a ledger configured the
        claim is taken there first, so concurrent deliveries cannot both create a grant; after a
        crash the metadata lookup over every page decides. ``idempotency="none"`` skips the
        lookup (your own ledger guards it). When the customer has no entitlement for the feature
        yet, a metered one is created to hold the grant. An audit event
        ``openmeter-billing.topup.applied`` with a stable id is ingested.
        """
        if not idempotency_key:
            raise InvalidInputError(
                "idempotency_key is required",
                field="idempotency_key",
                hint="use the provider's payment or checkout id, e.g. 'checkout:cs_123'",
            )
        catalog = self._client.catalog.definition
        feature_key = topup_feature_key(catalog, topup)
        body = compile_openmeter_topup_grant(
            catalog,
            topup,
            idempotency_key=idempotency_key,
            effective_at=effective_at or datetime.now(timezone.utc),
            payment_id=payment_id,
            provider=provider,
            metadata=metadata,
        )

        async def work(recovered: bool) -> dict[str, Any]:
            result = await self._grant_once(
                customer,
                feature_key,
                body,
                idempotency_key,
                check=idempotency == "metadata" or recovered,
            )
            return {"grant": result.grant.to_dict(), "created": result.created}

        outcome = await run_once(self._client.ledger, f"topup:{idempotency_key}", work)
        grant = EntitlementGrant.model_validate(outcome.result["grant"])
        created = bool(outcome.result["created"]) and outcome.fresh
        await self._audit(customer, topup, feature_key, grant, created, idempotency_key, provider)
        return TopupResult(grant, created, feature_key, idempotency_key)

    async def _grant_once(
        self,
        customer: CustomerRef,
        feature_key: str,
        body: dict[str, Any],
        idempotency_key: str,
        *,
        check: bool,
    ) -> TopupResult:
        if check:
            try:
                existing = await find_grant_by_idempotency_key(
                    self._client, customer, feature_key, idempotency_key
                )
            except NotFoundError:
                existing = None
            if existing is not None:
                return TopupResult(existing, False, feature_key, idempotency_key)
        await self._ensure_entitlement(customer, feature_key)
        grant = await self._client.entitlements.grants.create(customer, feature_key, body)
        return TopupResult(grant, True, feature_key, idempotency_key)

    async def _ensure_entitlement(self, customer: CustomerRef, feature_key: str) -> None:
        try:
            await self._client.entitlements.get(customer, feature_key)
        except NotFoundError:
            await self._client.entitlements.create(
                customer,
                {
                    "type": "metered",
                    "featureKey": feature_key,
                    "usagePeriod": {"interval": "MONTH"},
                    "metadata": {MANAGED_KEY: "true", SOURCE_KEY: "topup"},
                },
            )

    async def _audit(
        self,
        customer: CustomerRef,
        topup: str,
        feature_key: str,
        grant: EntitlementGrant,
        created: bool,
        idempotency_key: str,
        provider: str | None,
    ) -> None:
        data: dict[str, Any] = {
            "topup": topup,
            "feature": feature_key,
            "grant_id": grant.id,
            "amount": grant.amount,
            "created": created,
            "idempotency_key": idempotency_key,
        }
        if provider:
            data["provider"] = provider
        event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"openmeter-billing:topup:{idempotency_key}")
        await self._client.events.ingest(
            type="openmeter-billing.topup.applied", customer=customer, data=data, id=str(event_id)
        )
