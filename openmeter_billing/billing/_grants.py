"""Grant helpers shared by top-ups and reconciliation: lookups and carrying top-ups over.

OpenMeter's override and delete end an entitlement, and its grants end with it. Paid top-ups must
survive a plan change, so reconciliation reads them first (`live_topup_grants`), replaces the
entitlement, then re-issues what is left on the new one (`carry_topup_grants`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..catalog.compile_openmeter import IDEMPOTENCY_KEY, MANAGED_KEY, TOPUP_KEY
from ..identity import CustomerRef
from ..types.grants import EntitlementGrant

if TYPE_CHECKING:
    from ..resources.entitlements import AsyncEntitlements

logger = logging.getLogger("openmeter_billing")

#: ``"openmeter_billing.source": "topup"`` marks an entitlement that exists only to hold top-ups.
SOURCE_KEY = "openmeter_billing.source"
#: OpenMeter's relative expirations allow at most 1000 of a unit.
_MAX_COUNT = 1000


@dataclass(frozen=True)
class LiveTopup:
    """A top-up grant with balance left: what must move to a replacement entitlement."""

    grant: EntitlementGrant
    remaining: float


async def find_grant_by_idempotency_key(
    entitlements: AsyncEntitlements, customer: CustomerRef, feature_key: str, idempotency_key: str
) -> EntitlementGrant | None:
    """The grant carrying ``idempotency_key`` in its metadata, searching every page.

    The seed plugin looked at the first page only, so a customer with many grants got a second
    grant on replay; the paginator walks them all.
    """
    async for grant in entitlements.grants.list(customer, feature_key):
        if (grant.metadata or {}).get(IDEMPOTENCY_KEY) == idempotency_key:
            return grant
    return None


def topup_holder_body(feature_key: str, interval: str = "MONTH") -> dict[str, Any]:
    """A metered entitlement with no allowance of its own: it only holds bought top-ups."""
    return {
        "type": "metered",
        "featureKey": feature_key,
        "usagePeriod": {"interval": interval},
        "metadata": {MANAGED_KEY: "true", SOURCE_KEY: "topup"},
    }


async def live_topup_grants(
    entitlements: AsyncEntitlements, customer: CustomerRef, feature_key: str
) -> list[LiveTopup]:
    """The active entitlement's top-up grants that still have balance (read before replacing it)."""
    value = await entitlements.value(customer, feature_key)
    balances = value.grant_balances or {}
    live: list[LiveTopup] = []
    async for grant in entitlements.grants.list(customer, feature_key):
        remaining = balances.get(grant.id, 0.0)
        if TOPUP_KEY in (grant.metadata or {}) and grant.voided_at is None and remaining > 0:
            live.append(LiveTopup(grant, remaining))
    return live


def carried_grant_body(topup: LiveTopup, now: datetime) -> dict[str, Any] | None:
    """The create body re-issuing ``topup``'s remaining balance from ``now`` (None if expired).

    ``now`` must be the server's time (the replacement entitlement's ``createdAt``): OpenMeter
    refuses grants before the current usage period, and this machine's clock may differ.
    The metadata is kept whole, so the idempotency key still finds the grant on replay.
    """
    grant = topup.grant
    body: dict[str, Any] = {
        "amount": topup.remaining,
        "effectiveAt": now,
        "metadata": dict(grant.metadata or {}),
        "maxRolloverAmount": topup.remaining,
    }
    if grant.priority:  # OpenMeter reports an omitted priority as 0, which it refuses on create
        body["priority"] = grant.priority
    if grant.expires_at is not None:
        hours = math.ceil((grant.expires_at - now).total_seconds() / 3600)
        if hours <= 0:
            return None
        # Expiry is relative in OpenMeter: hours keep it within an hour of the original, days
        # (for longer grants) within a day.
        if hours <= _MAX_COUNT:
            body["expiration"] = {"duration": "HOUR", "count": hours}
        else:
            body["expiration"] = {
                "duration": "DAY",
                "count": min(math.ceil(hours / 24), _MAX_COUNT),
            }
    return body


async def carry_topup_grants(
    entitlements: AsyncEntitlements,
    customer: CustomerRef,
    feature_key: str,
    topups: list[LiveTopup],
    now: datetime,
) -> int:
    """Re-create ``topups`` on the feature's (new) entitlement; returns how many were carried."""
    carried = 0
    for topup in topups:
        body = carried_grant_body(topup, now)
        if body is None:
            continue
        await entitlements.grants.create(customer, feature_key, body)
        carried += 1
        logger.info(
            "carried top-up grant %s (%s left) over to the new %s entitlement",
            body["metadata"].get(IDEMPOTENCY_KEY),
            topup.remaining,
            feature_key,
        )
    return carried
