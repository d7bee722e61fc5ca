"""Compilation to OpenMeter bodies: exact shapes, merge rules, markers, and the spec's approval."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import _spec
import httpx
import pytest

from openmeter_billing import InvalidInputError
from openmeter_billing.catalog import Catalog, CatalogError, define_catalog
from openmeter_billing.catalog.compile_openmeter import (
    compile_openmeter_entitlements,
    compile_openmeter_features,
    compile_openmeter_meters,
    compile_openmeter_topup_grant,
    topup_feature_key,
)
from openmeter_billing.catalog.dsl import DEFAULT_TOPUP_PRIORITY

ENTITLEMENTS_URL = "http://x/api/v2/customers/c/entitlements"
WHEN = datetime(2025, 3, 1, 12, 30, tzinfo=timezone.utc)


def _validate(url: str, body: dict[str, Any]) -> None:
    _spec.validate_request(httpx.Request("POST", url, json=body))


def test_pro_plan_compiles_to_exact_v2_bodies(catalog: Catalog) -> None:
    bodies = compile_openmeter_entitlements(catalog, "pro")
    assert bodies == [
        {
            "type": "metered",
            "featureKey": "ai_tokens",
            "usagePeriod": {"interval": "MONTH"},
            "isSoftLimit": False,
            "preserveOverageAtReset": False,
            "issue": {"amount": 100000},
            "metadata": {
                "unit": "tokens",
                "openmeter_billing.managed": "true",
                "openmeter_billing.plan": "pro",
            },
        },
        {
            "type": "boolean",
            "featureKey": "api_access",
            "metadata": {"openmeter_billing.managed": "true", "openmeter_billing.plan": "pro"},
        },
        {
            "type": "static",
            "featureKey": "support_tier",
            "config": '{"value":"priority"}',
            "metadata": {"openmeter_billing.managed": "true", "openmeter_billing.plan": "pro"},
        },
    ]


def test_plan_with_addon_matches_golden_and_every_body_passes_the_spec(
    catalog: Catalog, assert_golden: Callable[[str, Any], None]
) -> None:
    bodies = compile_openmeter_entitlements(catalog, "pro", ["priority_support_addon"])
    assert_golden("openmeter_entitlements_pro_priority_support", bodies)
    for body in bodies:
        _validate(ENTITLEMENTS_URL, body)
        if body["type"] == "static":
            assert isinstance(json.loads(body["config"]), dict)
    assert bodies[-1]["metadata"]["openmeter_billing.addons"] == "priority_support_addon:1"


def test_every_plan_of_the_fixture_passes_the_spec(catalog: Catalog) -> None:
    for plan in catalog.plans:
        for body in compile_openmeter_entitlements(catalog, plan):
            _validate(ENTITLEMENTS_URL, body)


def test_spec_check_is_live_and_rejects_a_metered_body_without_usage_period() -> None:
    with pytest.raises(Exception):  # noqa: B017 - openapi-core raises its own error types
        _validate(ENTITLEMENTS_URL, {"type": "metered", "featureKey": "ai_tokens"})


def test_meters_and_features_match_golden_and_pass_the_spec(
    catalog: Catalog, assert_golden: Callable[[str, Any], None]
) -> None:
    meters = compile_openmeter_meters(catalog)
    features = compile_openmeter_features(catalog)
    assert_golden("openmeter_meters_features", {"meters": meters, "features": features})
    for body in meters:
        _validate("http://x/api/v1/meters", body)
    for body in features:
        _validate("http://x/api/v1/features", body)
    assert features[0]["meterSlug"] == "tokens"
    assert "meterSlug" not in features[1]


def _boost_catalog(**addon: Any) -> Catalog:
    return define_catalog(
        {
            "meters": {"m": {"event_type": "e", "aggregation": "COUNT"}},
            "features": {
                "calls": {"type": "metered", "meter": "m"},
                "sso": {"type": "boolean"},
                "tier": {"type": "static", "config": {"tier": "basic"}},
            },
            "plans": {
                "pro": {"entitlements": {"calls": 1000, "sso": False, "tier": {"type": "static"}}},
                "team": {"entitlements": {"calls": {"amount": 5, "soft_limit": True}}},
            },
            "addons": {
                "boost": {
                    "entitlements": {
                        "calls": 250,
                        "sso": True,
                        "tier": {"config": {"tier": "gold"}},
                    },
                    "multiple": True,
                    "max_quantity": 4,
                    **addon,
                },
            },
        }
    )


def test_metered_amounts_add_up_with_quantities_boolean_ors_and_static_last_wins() -> None:
    catalog = _boost_catalog()
    bodies = {
        b["featureKey"]: b for b in compile_openmeter_entitlements(catalog, "pro", {"boost": 3})
    }
    assert bodies["calls"]["issue"] == {"amount": 1000 + 3 * 250}
    assert bodies["calls"]["metadata"]["openmeter_billing.addons"] == "boost:3"
    assert bodies["sso"]["type"] == "boolean"
    assert json.loads(bodies["tier"]["config"]) == {"tier": "gold"}
    for body in bodies.values():
        _validate(ENTITLEMENTS_URL, body)


def test_disabled_boolean_creates_no_entitlement_and_static_defaults_to_feature_config() -> None:
    bodies = {b["featureKey"]: b for b in compile_openmeter_entitlements(_boost_catalog(), "pro")}
    assert "sso" not in bodies
    assert json.loads(bodies["tier"]["config"]) == {"tier": "basic"}
    assert "openmeter_billing.addons" not in bodies["calls"]["metadata"]


def test_soft_limit_is_on_when_any_contributor_turns_it_on() -> None:
    bodies = compile_openmeter_entitlements(_boost_catalog(), "team", ["boost"])
    calls = next(b for b in bodies if b["featureKey"] == "calls")
    assert calls["isSoftLimit"] is True
    assert calls["issue"] == {"amount": 255}


def test_zero_allowance_omits_issue() -> None:
    catalog = define_catalog(
        {
            "meters": {"m": {"event_type": "e", "aggregation": "COUNT"}},
            "features": {"calls": {"type": "metered", "meter": "m"}},
            "plans": {"payg": {"entitlements": {"calls": {"amount": 0, "soft_limit": True}}}},
        }
    )
    [body] = compile_openmeter_entitlements(catalog, "payg")
    assert "issue" not in body
    _validate(ENTITLEMENTS_URL, body)


@pytest.mark.parametrize(
    ("plan", "addons", "field", "fragment"),
    [
        ("gold", (), "plan_key", "unknown plan 'gold'"),
        ("pro", ["nope"], "addons", "unknown add-on 'nope'"),
        ("free", ["priority_support_addon"], "addons.priority_support_addon", "cannot be bought"),
        ("pro", {"priority_support_addon": 2}, "addons.priority_support_addon", "at most 1"),
        ("pro", {"priority_support_addon": 0}, "addons.priority_support_addon", "positive"),
    ],
)
def test_bad_plan_or_addon_arguments_raise_invalid_input(
    catalog: Catalog, plan: str, addons: Any, field: str, fragment: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        compile_openmeter_entitlements(catalog, plan, addons)
    assert info.value.field == field
    assert fragment in str(info.value)


def test_addon_quantity_above_max_quantity_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="at most 4"):
        compile_openmeter_entitlements(_boost_catalog(), "pro", {"boost": 5})


def test_compiling_an_invalid_catalog_raises_catalog_error(catalog_data: dict[str, Any]) -> None:
    catalog_data["plans"]["pro"]["entitlements"]["apiAccess"] = 5
    catalog = define_catalog(catalog_data, check=False)
    with pytest.raises(CatalogError):
        compile_openmeter_entitlements(catalog, "pro")
    with pytest.raises(CatalogError):
        compile_openmeter_meters(catalog)


def test_topup_grant_body_is_exact_and_passes_the_spec(catalog: Catalog) -> None:
    body = compile_openmeter_topup_grant(
        catalog,
        "token_pack_1m",
        idempotency_key="pi_123",
        effective_at=WHEN,
        payment_id="pi_123",
        provider="stripe",
        metadata={"order": "o_9"},
    )
    assert body == {
        "amount": 1000000,
        "effectiveAt": "2025-03-01T12:30:00Z",
        "priority": 1,
        "expiration": {"duration": "YEAR", "count": 1},
        "maxRolloverAmount": 1000000,
        "metadata": {
            "source": "checkout",
            "order": "o_9",
            "openmeter_billing.managed": "true",
            "openmeter_billing.topup": "token_pack_1m",
            "openmeter_billing.feature": "ai_tokens",
            "openmeter_billing.idempotency_key": "pi_123",
            "openmeter_billing.payment_id": "pi_123",
            "openmeter_billing.provider": "stripe",
        },
    }
    _validate("http://x/api/v2/customers/c/entitlements/ai_tokens/grants", body)
    assert topup_feature_key(catalog, "tokenPack1m") == "ai_tokens"


def test_reserved_grant_metadata_keys_win_over_caller_metadata(
    catalog: Catalog, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="openmeter_billing"):
        body = compile_openmeter_topup_grant(
            catalog,
            "token_pack_1m",
            idempotency_key="evt_1",
            effective_at=WHEN,
            metadata={
                "openmeter_billing.topup": "free_money",
                "openmeter_billing.idempotency_key": "evt_other",
                "openmeter_billing.payment_id": "forged",
            },
        )
    metadata = body["metadata"]
    assert metadata["openmeter_billing.topup"] == "token_pack_1m"
    assert metadata["openmeter_billing.idempotency_key"] == "evt_1"
    assert "openmeter_billing.payment_id" not in metadata
    assert "reserved" in caplog.text


def test_expiration_duration_is_upper_cased_and_times_are_utc_z() -> None:
    catalog = define_catalog(
        {
            "meters": {"m": {"event_type": "e", "aggregation": "COUNT"}},
            "features": {"calls": {"type": "metered", "meter": "m"}},
            "plans": {"p": {"entitlements": {"calls": 1}}},
            "topups": {
                "pack": {
                    "feature": "calls",
                    "amount": 10,
                    "grant": {"expiration": {"duration": "month", "count": 3}},
                    "prices": {"once": {"amount": 100, "currency": "EUR", "interval": "one_time"}},
                }
            },
        }
    )
    local = datetime(2025, 3, 1, 14, 30, 0, 250000, tzinfo=timezone(timedelta(hours=2)))
    body = compile_openmeter_topup_grant(catalog, "pack", idempotency_key="k", effective_at=local)
    assert body["expiration"] == {"duration": "MONTH", "count": 3}
    assert body["effectiveAt"] == "2025-03-01T12:30:00.250Z"
    assert body["priority"] == DEFAULT_TOPUP_PRIORITY  # never omitted: OpenMeter would store 0
    _validate("http://x/api/v2/customers/c/entitlements/calls/grants", body)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"idempotency_key": "", "effective_at": WHEN}, "idempotency_key"),
        ({"idempotency_key": "k", "effective_at": datetime(2025, 1, 1)}, "effective_at"),
        ({"idempotency_key": "k", "effective_at": WHEN, "metadata": {"n": 1}}, "metadata.n"),
    ],
)
def test_bad_topup_grant_arguments_raise_invalid_input(
    catalog: Catalog, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        compile_openmeter_topup_grant(catalog, "token_pack_1m", **kwargs)
    assert info.value.field == field


def test_unknown_topup_names_the_known_ones(catalog: Catalog) -> None:
    with pytest.raises(InvalidInputError, match="tokenPack1m"):
        compile_openmeter_topup_grant(catalog, "pack", idempotency_key="k", effective_at=WHEN)


def test_addons_alone_with_different_resets_cannot_be_combined() -> None:
    catalog = define_catalog(
        {
            "meters": {"m": {"event_type": "e", "aggregation": "COUNT"}},
            "features": {"calls": {"type": "metered", "meter": "m"}, "sso": {"type": "boolean"}},
            "plans": {"basic": {"entitlements": {"sso": True}}},
            "addons": {
                "daily": {"entitlements": {"calls": {"amount": 10, "reset": "day"}}},
                "monthly": {"entitlements": {"calls": {"amount": 300, "reset": "month"}}},
            },
        }
    )
    assert compile_openmeter_entitlements(catalog, "basic", ["daily"])[1]["usagePeriod"] == {
        "interval": "DAY"
    }
    with pytest.raises(InvalidInputError, match="different periods: day, month"):
        compile_openmeter_entitlements(catalog, "basic", ["daily", "monthly"])
