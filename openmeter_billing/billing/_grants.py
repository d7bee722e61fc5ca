"""Grant helpers shared by top-ups and reconciliation: lookups and carrying grants over."""

from __future__ import annotations

import logging
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..catalog.compile_openmeter import IDEMPOTENCY_KEY, TOPUP_KEY
from ..identity import CustomerRef
from ..types.grants import EntitlementGrant

if TYPE_CHECKING:
    from .._client import OpenMeterBilling

logger = logging.getLogger("openmeter_billing")


async def find_grant_by_idempotency_key(
    client: OpenMeterBilling, customer: CustomerRef, feature_key: str, idempotency_key: str
) -> EntitlementGrant | None:
    """The grant carrying ``idempotency_key`` in its metadata, searching every page."""
    async for grant in client.entitlements.grants.list(customer, feature_key):
        if (grant.metadata or {}).get(IDEMPOTENCY_KEY) == idempotency_key:
            return grant
    return None


async def topup_grants_to_carry(
    client: OpenMeterBilling, customer: CustomerRef, feature_key: str, now: datetime
) -> list[dict[str, Any]]:
    """Create bodies that re-issue the remaining balance of the active top-up grants.

    OpenMeter's override replaces an entitlement and its grants stay with the old one, so paid
    top-ups would vanish on every plan change. These bodies carry them to the new entitlement
    with the same metadata (the idempotency key keeps replays finding them) and expiry.
    """
    value = await client.entitlements.value(customer, feature_key)
    balances = value.grant_balances or {}
    bodies: list[dict[str, Any]] = []
    async for grant in client.entitlements.grants.list(customer, feature_key):
        metadata = grant.metadata or {}
        remaining = balances.get(grant.id, 0.0)
        if TOPUP_KEY not in metadata or grant.voided_at is not None or remaining <= 0:
            continue
        body: dict[str, Any] = {
            "amount": remaining,
            "effectiveAt": now.isoformat().replace("+00:00", "Z"),
            "metadata": dict(metadata),
            "maxRolloverAmount": remaining,
        }
        if grant.priority is not None:
            body["priority"] = grant.priority
        if grant.expires_at is not None:
            hours = math.ceil((grant.expires_at - now).total_seconds() / 3600)
            if hours <= 0:
                continue
            # Expiry is relative in OpenMeter; hours keep it within an hour of the original.
            body["expiration"] = {"duration": "HOUR", "count": min(hours, 1000)}
            if hours > 1000:
                days = math.ceil(hours / 24)
                body["expiration"] = {"duration": "DAY", "count": min(days, 1000)}
        bodies.append(body)
    return bodies


async def recreate_grants(
    client: OpenMeterBilling, customer: CustomerRef, feature_key: str, bodies: list[dict[str, Any]]
) -> None:
    """Create the carried-over grants on the (new) entitlement."""
    for body in bodies:
        await client.entitlements.grants.create(customer, feature_key, body)
        logger.info(
            "carried top-up grant %s (%s left) over to the new %s entitlement",
            body["metadata"].get(IDEMPOTENCY_KEY),
            body["amount"],
            feature_key,
        )
