"""client.billing.apply_event against Local OpenMeter: what each event type does."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from billing.test_billing_helpers import CATALOG, START, active_entitlements, event, prepare

from openmeter_billing import ApplyResult, BillingEvent, OpenMeterBilling
from openmeter_billing.billing.ledger import InMemoryLedger
from openmeter_billing.local import LocalOpenMeter

T1, T2, T3 = (START + timedelta(minutes=n) for n in (1, 2, 3))


def audit_events(local: LocalOpenMeter) -> list[dict[str, Any]]:
    return [e for e in local.snapshot()["events"] if e["type"].startswith("openmeter-billing.")]


async def test_subscription_active_creates_the_plans_entitlements(om: OpenMeterBilling) -> None:
    result = await om.billing.apply_event(event("subscription.active", at=START))
    assert result.status == "applied"
    assert sorted(result.created) == ["ai_tokens", "api_access", "support_tier"]
    live = await active_entitlements(om)
    assert sorted(live) == ["ai_tokens", "api_access", "support_tier"]
    assert live["ai_tokens"].metadata["openmeter_billing.subscription"] == "sub_1"
    value = await om.entitlements.value("acme", "ai_tokens")
    assert value.has_access and value.balance == 100_000


@pytest.mark.parametrize("type_", ["subscription.created", "subscription.updated", "invoice.paid"])
async def test_other_granting_types_create_the_same_entitlements(
    om: OpenMeterBilling, type_: str
) -> None:
    result = await om.billing.apply_event(event(type_, at=START))
    assert sorted(result.created) == ["ai_tokens", "api_access", "support_tier"]


async def test_upgrade_overrides_changed_terms_and_creates_new_features(
    om: OpenMeterBilling,
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START, plan="free"))
    result = await om.billing.apply_event(
        event("subscription.updated", at=T1, plan="pro", previous_plan="free")
    )
    assert sorted(result.overridden) == ["ai_tokens", "support_tier"]
    assert result.created == ["api_access"]
    assert (await om.entitlements.value("acme", "ai_tokens")).balance == 100_000
    tier = (await active_entitlements(om))["support_tier"].to_dict()
    assert tier["config"] == '{"tier":"business"}'


async def test_downgrade_deletes_dropped_features_and_carries_topup_balance(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    paid = await om.topups.grant(
        "acme", "token_pack", idempotency_key="cs_1", effective_at=local.clock.now()
    )
    await om.events.ingest(type="tokens", customer="acme", data={"tokens": 120_000})
    local.clock.advance(minutes=2)
    assert (await om.entitlements.value("acme", "ai_tokens")).balance == 30_000
    result = await om.billing.apply_event(
        event("subscription.updated", at=T2, plan="free", previous_plan="pro")
    )
    assert result.deleted == ["api_access"]
    assert sorted(result.overridden) == ["ai_tokens", "support_tier"]
    assert "1 top-up grant(s) carried over" in next(
        c.reason for c in result.changes if c.feature_key == "ai_tokens"
    )
    # Free's 1,000 plus what is left of the top-up; the plan's own allowance is not carried.
    assert (await om.entitlements.value("acme", "ai_tokens")).balance == 31_000
    replay = await om.topups.grant(
        "acme", "token_pack", idempotency_key="cs_1", effective_at=local.clock.now()
    )
    assert not replay.created
    assert replay.grant.metadata == paid.grant.metadata
    assert not await om.entitlements.has("acme", "api_access")


async def test_addon_added_then_removed(om: OpenMeterBilling) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    added = await om.billing.apply_event(
        event("subscription.updated", at=T1, addons={"priority_support": 1})
    )
    assert added.created == ["priority_support"]
    assert await om.entitlements.has("acme", "priority_support")
    removed = await om.billing.apply_event(event("subscription.updated", at=T2))
    assert removed.deleted == ["priority_support"]
    assert not await om.entitlements.has("acme", "priority_support")
    assert {c.action for c in removed.changes if c.feature_key != "priority_support"} == {
        "unchanged"
    }


async def test_renewal_changes_nothing_when_terms_are_the_same(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    first = await om.billing.apply_event(event("subscription.active", at=START))
    await om.events.ingest(type="tokens", customer="acme", data={"tokens": 400})
    local.clock.advance(minutes=2)
    renewed = await om.billing.apply_event(event("subscription.renewed", at=T2))
    assert renewed.status == "applied"
    assert {c.action for c in renewed.changes} == {"unchanged"}
    assert [c.entitlement_id for c in renewed.changes] == [c.entitlement_id for c in first.changes]
    assert (await om.entitlements.value("acme", "ai_tokens")).usage == 400


async def test_renewal_with_changed_terms_overrides(local: LocalOpenMeter) -> None:
    amounts = iter([100, 250])

    def mapper(_: BillingEvent) -> list[dict[str, Any]]:
        amount = next(amounts)
        return [{"type": "metered", "featureKey": "ai_tokens", "issue": {"amount": amount},
                 "usagePeriod": {"interval": "MONTH"}}]  # fmt: skip

    options = _options(map_plan_to_entitlements=mapper)
    async with local.client(catalog=CATALOG, billing_options=options) as om:
        await prepare(om)
        await om.billing.apply_event(event("subscription.active", at=START))
        renewed = await om.billing.apply_event(event("subscription.renewed", at=T1))
        assert renewed.overridden == ["ai_tokens"]
        assert (await om.entitlements.value("acme", "ai_tokens")).balance == 250


async def test_cancel_at_period_end_keeps_access_until_expired(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    end = START + timedelta(days=30)
    canceled = await om.billing.apply_event(
        event("subscription.canceled", at=T1, cancel_at_period_end=True, current_period_end=end)
    )
    assert canceled.status == "scheduled" and canceled.changes == ()
    assert await om.entitlements.has("acme", "api_access")
    local.clock.set(end + timedelta(minutes=1))
    assert await om.entitlements.has("acme", "api_access")  # nothing ends on its own
    expired = await om.billing.apply_event(event("subscription.expired", at=end))
    assert sorted(expired.deleted) == ["ai_tokens", "api_access", "support_tier"]
    assert await active_entitlements(om) == {}
    assert not await om.entitlements.has("acme", "ai_tokens")


async def test_uncancel_after_a_scheduled_cancel_keeps_everything(om: OpenMeterBilling) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    await om.billing.apply_event(event("subscription.canceled", at=T1, cancel_at_period_end=True))
    result = await om.billing.apply_event(event("subscription.uncanceled", at=T2))
    assert {c.action for c in result.changes} == {"unchanged"}


@pytest.mark.parametrize("type_", ["subscription.revoked", "subscription.canceled"])
async def test_revoke_and_immediate_cancel_take_access_away_now(
    om: OpenMeterBilling, type_: str
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    result = await om.billing.apply_event(event(type_, at=T1))
    assert result.status == "applied"
    assert sorted(result.deleted) == ["ai_tokens", "api_access", "support_tier"]
    assert not await om.entitlements.has("acme", "api_access")


async def test_revoke_keeps_bought_topups_on_a_holding_entitlement(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    await om.topups.grant("acme", "token_pack", idempotency_key="cs_9", effective_at=START)
    result = await om.billing.apply_event(event("subscription.revoked", at=T1))
    assert result.overridden == ["ai_tokens"]
    assert sorted(result.deleted) == ["api_access", "support_tier"]
    value = await om.entitlements.value("acme", "ai_tokens")
    assert value.has_access and value.balance == 50_000
    holder = (await active_entitlements(om))["ai_tokens"]
    assert holder.metadata["openmeter_billing.source"] == "topup"


async def test_unmanaged_entitlements_are_never_touched(om: OpenMeterBilling) -> None:
    manual = await om.entitlements.create("acme", {"type": "boolean", "featureKey": "api_access"})
    active = await om.billing.apply_event(event("subscription.active", at=START))
    assert active.skipped == ["api_access"]
    revoked = await om.billing.apply_event(event("subscription.revoked", at=T1))
    assert revoked.skipped == ["api_access"]
    assert sorted(revoked.deleted) == ["ai_tokens", "support_tier"]
    assert (await active_entitlements(om))["api_access"].id == manual.id


async def test_other_subscriptions_entitlements_are_left_alone(om: OpenMeterBilling) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    result = await om.billing.apply_event(
        event("subscription.revoked", at=T1, subscription_id="sub_other")
    )
    assert sorted(result.skipped) == ["ai_tokens", "api_access", "support_tier"]
    assert all("sub_1" in c.reason for c in result.changes)


async def test_an_older_event_is_recorded_and_skipped(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    await om.billing.apply_event(event("subscription.updated", at=T2, plan="free"))
    late = await om.billing.apply_event(event("subscription.updated", at=T1, plan="pro"))
    assert late.status == "stale" and late.changes == ()
    assert (await om.entitlements.value("acme", "ai_tokens")).balance == 1_000
    recorded = [e for e in audit_events(local) if e["data"]["status"] == "stale"]
    assert len(recorded) == 1 and recorded[0]["time"].startswith(T1.strftime("%Y-%m-%dT%H:%M"))


async def test_an_event_older_than_the_end_of_its_subscription_is_skipped(
    om: OpenMeterBilling,
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    await om.billing.apply_event(event("subscription.revoked", at=T2))
    late = await om.billing.apply_event(event("subscription.updated", at=T1))
    assert late.status == "stale" and T2.isoformat() in late.reason
    assert await active_entitlements(om) == {}


@pytest.mark.parametrize("type_", ["invoice.payment_failed", "payment.refunded"])
async def test_payment_events_are_audited_only(
    om: OpenMeterBilling, local: LocalOpenMeter, type_: str
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    result = await om.billing.apply_event(event(type_, at=T1))
    assert result.status == "audited" and result.changes == ()
    assert len(await active_entitlements(om)) == 3
    assert audit_events(local)[-1]["type"] == f"openmeter-billing.billing.{type_}"


async def test_invoice_paid_without_a_plan_keeps_entitlements(om: OpenMeterBilling) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    result = await om.billing.apply_event(event("invoice.paid", at=T1, plan=None))
    assert result.status == "audited" and "no plan" in result.reason
    assert len(await active_entitlements(om)) == 3


async def test_audit_event_id_is_stable_across_retries(
    om: OpenMeterBilling, local: LocalOpenMeter
) -> None:
    delivery = event("subscription.active", at=START, event_id="evt_1")
    results = [await om.billing.apply_event(delivery) for _ in range(3)]
    assert [r.status for r in results] == ["applied", "duplicate", "duplicate"]
    assert results[2].created == results[0].created
    audits = audit_events(local)
    assert len(audits) == 1
    assert audits[0]["id"] == delivery.audit_event_id
    assert audits[0]["type"] == "openmeter-billing.billing.subscription.active"
    assert audits[0]["data"]["provider_event_id"] == "evt_1"


async def test_audit_ids_differ_per_provider_event() -> None:
    one = event("subscription.active", at=START, event_id="evt_1")
    assert one.audit_event_id == event("invoice.paid", at=T1, event_id="evt_1").audit_event_id
    assert (
        one.audit_event_id
        != event("subscription.active", at=START, event_id="evt_2").audit_event_id
    )
    assert one.idempotency_key == "stripe:evt_1"


def _options(**kwargs: Any) -> Any:
    from openmeter_billing import BillingOptions

    return BillingOptions(**kwargs)


async def test_mode_none_only_audits_and_never_calls_the_mapper(local: LocalOpenMeter) -> None:
    def mapper(_: BillingEvent) -> list[dict[str, Any]]:
        raise AssertionError("the mapper must not run in mode 'none'")

    seen: list[ApplyResult] = []
    options = _options(
        entitlement_mode="none",
        map_plan_to_entitlements=mapper,
        after_apply=lambda _event, result: seen.append(result),
    )
    async with local.client(catalog=CATALOG, billing_options=options) as om:
        await prepare(om)
        result = await om.billing.apply_event(event("subscription.active", at=START))
        assert result.status == "audited" and result.changes == ()
        assert await active_entitlements(om) == {}
    assert seen == [result]
    assert len(audit_events(local)) == 1


async def test_async_mapper_replaces_the_catalog(local: LocalOpenMeter) -> None:
    async def mapper(billing_event: BillingEvent) -> list[dict[str, Any]]:
        return [{"type": "boolean", "featureKey": "api_access", "metadata": {"src": "mine"}}]

    async with local.client(
        catalog=CATALOG, billing_options=_options(map_plan_to_entitlements=mapper)
    ) as om:
        await prepare(om)
        result = await om.billing.apply_event(event("subscription.active", at=START))
        assert result.created == ["api_access"]
        live = await active_entitlements(om)
        assert live["api_access"].metadata["src"] == "mine"
        assert live["api_access"].metadata["openmeter_billing.managed"] == "true"


async def test_a_bad_mapper_body_names_its_index(local: LocalOpenMeter) -> None:
    from openmeter_billing import InvalidInputError

    def mapper(_: BillingEvent) -> list[dict[str, Any]]:
        return [{"type": "boolean", "featureKey": "api_access"}, {"type": "metered"}]

    async with local.client(
        catalog=CATALOG, billing_options=_options(map_plan_to_entitlements=mapper)
    ) as om:
        await prepare(om)
        with pytest.raises(InvalidInputError, match=r"map_plan_to_entitlements\[1\]"):
            await om.billing.apply_event(event("subscription.active", at=START))
        assert await active_entitlements(om) == {}


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_hooks_run_before_and_after_once_per_event(local: LocalOpenMeter, style: str) -> None:
    calls: list[tuple[str, object]] = []

    def before(e: BillingEvent) -> None:
        calls.append(("before", e.provider_event_id))

    def after(e: BillingEvent, result: ApplyResult) -> None:
        calls.append(("after", result.status))

    async def abefore(e: BillingEvent) -> None:
        before(e)

    async def aafter(e: BillingEvent, result: ApplyResult) -> None:
        after(e, result)

    hooks = {"before_apply": before, "after_apply": after}
    if style == "async":
        hooks = {"before_apply": abefore, "after_apply": aafter}
    options = _options(**hooks)
    async with local.client(
        catalog=CATALOG, ledger=InMemoryLedger(), billing_options=options
    ) as om:
        await prepare(om)
        delivery = event("subscription.active", at=START, event_id="evt_h")
        await om.billing.apply_event(delivery)
        await om.billing.apply_event(delivery)  # a duplicate runs no hook
    assert calls == [("before", "evt_h"), ("after", "applied")]


async def test_a_failing_before_hook_changes_nothing_and_can_be_retried(
    local: LocalOpenMeter,
) -> None:
    attempts: list[int] = []

    def before(_: BillingEvent) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("database down")

    options = _options(before_apply=before)
    async with local.client(
        catalog=CATALOG, ledger=InMemoryLedger(), billing_options=options
    ) as om:
        await prepare(om)
        delivery = event("subscription.active", at=START)
        with pytest.raises(RuntimeError):
            await om.billing.apply_event(delivery)
        assert await active_entitlements(om) == {}
        assert (await om.billing.apply_event(delivery)).status == "applied"


async def test_apply_event_rejects_a_plain_dict(om: OpenMeterBilling) -> None:
    from openmeter_billing import InvalidInputError

    with pytest.raises(InvalidInputError, match="expected a BillingEvent"):
        await om.billing.apply_event({"type": "subscription.active"})  # type: ignore[arg-type]


async def test_cancel_at_period_end_without_a_known_end_waits_for_expiry(
    om: OpenMeterBilling,
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    result = await om.billing.apply_event(
        event("subscription.canceled", at=T1, cancel_at_period_end=True, current_period_end=None)
    )
    assert result.status == "scheduled" and "expiry event" in result.reason
    assert len(await active_entitlements(om)) == 3


async def test_a_cancellation_reported_after_its_period_ended_revokes_now(
    om: OpenMeterBilling,
) -> None:
    await om.billing.apply_event(event("subscription.active", at=START))
    result = await om.billing.apply_event(
        event(
            "subscription.canceled",
            at=T2,
            cancel_at_period_end=True,
            current_period_start=START - timedelta(days=30),
            current_period_end=T1,
        )
    )
    assert result.status == "applied" and len(result.deleted) == 3
