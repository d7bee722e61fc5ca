"""client.topups.grant against Local OpenMeter: one grant per idempotency key."""

from __future__ import annotations

from typing import Any

import pytest
from billing.test_billing_helpers import CATALOG, START, event, prepare

from openmeter_billing import InvalidInputError, OpenMeterBilling
from openmeter_billing.catalog import Price, TopUp
from openmeter_billing.local import LocalOpenMeter


def grants_with_key(local: LocalOpenMeter, key: str) -> list[dict[str, Any]]:
    return [
        g
        for g in local.snapshot()["grants"]
        if (g.get("metadata") or {}).get("openmeter_billing.idempotency_key") == key
    ]


async def test_replay_returns_the_existing_grant_with_created_false(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    first = await om.topups.grant("acme", "token_pack", idempotency_key="cs_1", effective_at=START)
    again = await om.topups.grant("acme", "token_pack", idempotency_key="cs_1", effective_at=START)
    assert first.created and not again.created
    assert again.grant.id == first.grant.id
    assert again.feature_key == "ai_tokens" and again.idempotency_key == "cs_1"
    assert len(grants_with_key(local, "cs_1")) == 1
    assert (await om.entitlements.value("acme", "ai_tokens")).balance == 50_000


async def test_replay_is_found_without_a_ledger(local: LocalOpenMeter) -> None:
    async with local.client(catalog=CATALOG) as om:
        await prepare(om)
        first = await om.topups.grant("acme", "token_pack", idempotency_key="k", effective_at=START)
        again = await om.topups.grant("acme", "token_pack", idempotency_key="k", effective_at=START)
    assert (first.created, again.created) == (True, False)
    assert again.grant.id == first.grant.id


async def test_grant_carries_catalog_terms_and_payment_metadata(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    result = await om.topups.grant(
        "acme",
        "token_pack",
        idempotency_key="checkout:cs_7",
        payment_id="pi_7",
        provider="stripe",
        metadata={"campaign": "spring"},
        effective_at=START,
    )
    grant = result.grant
    assert grant.amount == 50_000 and grant.priority == 10
    assert grant.metadata == {
        "campaign": "spring",
        "openmeter_billing.managed": "true",
        "openmeter_billing.topup": "token_pack",
        "openmeter_billing.feature": "ai_tokens",
        "openmeter_billing.idempotency_key": "checkout:cs_7",
        "openmeter_billing.payment_id": "pi_7",
        "openmeter_billing.provider": "stripe",
    }
    assert grant.expires_at is not None and grant.expires_at.year == START.year + 1


async def test_topup_adds_to_the_plan_allowance(om: OpenMeterBilling) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    await om.topups.grant("acme", "token_pack", idempotency_key="cs_2", effective_at=START)
    value = await om.entitlements.value("acme", "ai_tokens")
    assert value.balance == 150_000
    entitlements = [e async for e in om.entitlements.list("acme")]
    assert [e.feature_key for e in entitlements].count("ai_tokens") == 1


async def test_without_an_entitlement_one_is_created_to_hold_the_grant(
    om: OpenMeterBilling,
) -> None:
    await om.topups.grant("acme", "token_pack", idempotency_key="cs_3", effective_at=START)
    holder = await om.entitlements.get("acme", "ai_tokens")
    assert holder.metadata == {
        "openmeter_billing.managed": "true",
        "openmeter_billing.source": "topup",
    }
    assert (await om.entitlements.value("acme", "ai_tokens")).balance == 50_000
    # A later plan takes the holder over and keeps the bought balance.
    result = await om.billing.apply_event(event("subscription.active", at=START))
    assert "ai_tokens" in result.overridden
    assert (await om.entitlements.value("acme", "ai_tokens")).balance == 150_000


async def test_a_topup_for_specific_plans_needs_the_feature_first(local: LocalOpenMeter) -> None:
    catalog = CATALOG.model_copy(
        update={
            "topups": {
                "pro_pack": TopUp(
                    key="pro_pack",
                    feature="ai_tokens",
                    amount=10,
                    compatible_plans=("pro",),
                    prices={"once": Price(amount=100, currency="USD", interval="one_time")},
                )
            }
        }
    )
    async with local.client(catalog=catalog) as om:
        await prepare(om)
        with pytest.raises(InvalidInputError, match="only sold with plans pro") as caught:
            await om.topups.grant("acme", "pro_pack", idempotency_key="k", effective_at=START)
        assert caught.value.field == "customer"
        await om.billing.apply_event(event("subscription.active", at=START))
        result = await om.topups.grant("acme", "pro_pack", idempotency_key="k", effective_at=START)
        assert result.created


async def test_idempotency_none_creates_a_grant_per_call(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    for _ in range(2):
        result = await om.topups.grant(
            "acme", "token_pack", idempotency_key="own", idempotency="none", effective_at=START
        )
        assert result.created
    assert len(grants_with_key(local, "own")) == 2


async def test_audit_event_is_ingested_once_per_key(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    for _ in range(3):
        await om.topups.grant(
            "acme", "token_pack", idempotency_key="cs_4", provider="polar", effective_at=START
        )
    audits = [
        e for e in local.snapshot()["events"] if e["type"] == "openmeter-billing.topup.applied"
    ]
    assert len(audits) == 1
    assert audits[0]["data"]["created"] is True
    assert audits[0]["data"]["provider"] == "polar"
    assert audits[0]["data"]["amount"] == 50_000


async def test_replay_finds_the_grant_beyond_the_first_page(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    for n in range(105):  # the plan's grant plus these fill more than one page of 100
        await om.entitlements.grants.create(
            "acme", "ai_tokens", {"amount": 1, "effectiveAt": START, "metadata": {"n": str(n)}}
        )
    first = await om.topups.grant("acme", "token_pack", idempotency_key="late", effective_at=START)
    page_one = await om.entitlements.grants.list("acme", "ai_tokens")
    assert first.grant.id not in {g.id for g in page_one.items}
    async with local.client(catalog=CATALOG) as other:  # no ledger: only the lookup decides
        again = await other.topups.grant(
            "acme", "token_pack", idempotency_key="late", effective_at=START
        )
    assert not again.created and again.grant.id == first.grant.id


async def test_bad_arguments_fail_before_any_request(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    before = local.snapshot()
    with pytest.raises(InvalidInputError) as missing:
        await om.topups.grant("acme", "token_pack", idempotency_key="")
    assert missing.value.field == "idempotency_key"
    with pytest.raises(InvalidInputError) as unknown:
        await om.topups.grant("acme", "nope", idempotency_key="k")
    assert unknown.value.field == "topup_key" and "token_pack" in str(unknown.value)
    with pytest.raises(InvalidInputError) as mode:
        await om.topups.grant(
            "acme",
            "token_pack",
            idempotency_key="k",
            idempotency="ledger",  # type: ignore[arg-type]
        )
    assert mode.value.field == "idempotency"
    assert local.snapshot() == before
