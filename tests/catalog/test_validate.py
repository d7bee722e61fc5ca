"""Every validation rule: its path, its stable code, its message, the offending value and a hint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from openmeter_billing.catalog import Catalog, CatalogError, define_catalog, validate_catalog

Data = dict[str, Any]


def _set(path: str, value: Any) -> Callable[[Data], None]:
    """A mutation that sets a dotted path in the catalog data."""

    def mutate(data: Data) -> None:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return mutate


def _delete(path: str) -> Callable[[Data], None]:
    def mutate(data: Data) -> None:
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        del node[last]

    return mutate


CASES: list[tuple[str, Callable[[Data], Any], str, str, str, Any]] = [
    # (id, mutation, path, code, message fragment, offending value)
    ("no features", _set("features", {}), "features", "empty", "no features", None),
    ("no plans", _set("plans", {}), "plans", "empty", "no plans", None),
    (
        "bad key",
        _set("plans.pro.key", "Pro-Plan"),
        "plans.pro.key",
        "invalid_key",
        "pattern",
        "Pro-Plan",
    ),
    (
        "long key",
        _set("features.apiAccess.key", "a" * 65),
        "features.apiAccess.key",
        "invalid_key",
        "1-64",
        "a" * 65,
    ),
    (
        "duplicate key",
        _set("features.apiAccess.key", "ai_tokens"),
        "features.apiAccess.key",
        "duplicate_key",
        "features.aiTokens",
        "ai_tokens",
    ),
    (
        "unknown meter",
        _set("features.aiTokens.meter", "nope"),
        "features.aiTokens.meter",
        "unknown_reference",
        "meter",
        "nope",
    ),
    (
        "metered feature without meter",
        _delete("features.aiTokens.meter"),
        "features.aiTokens.meter",
        "missing_meter",
        "needs a meter",
        None,
    ),
    (
        "meter on boolean feature",
        _set("features.apiAccess.meter", "tokens"),
        "features.apiAccess.meter",
        "unexpected_meter",
        "boolean",
        "tokens",
    ),
    (
        "config on boolean feature",
        _set("features.apiAccess.config", {"a": 1}),
        "features.apiAccess.config",
        "unexpected_config",
        "static",
        {"a": 1},
    ),
    (
        "unknown aggregation",
        _set("meters.tokens.aggregation", "median"),
        "meters.tokens.aggregation",
        "unknown_aggregation",
        "aggregation",
        "MEDIAN",
    ),
    (
        "COUNT with value property",
        _set("meters.tokens.aggregation", "COUNT"),
        "meters.tokens.value_property",
        "unexpected_value_property",
        "COUNT",
        "$.tokens",
    ),
    (
        "SUM without value property",
        _delete("meters.tokens.value_property"),
        "meters.tokens.value_property",
        "missing_value_property",
        "SUM meter needs",
        None,
    ),
    (
        "UNIQUE_COUNT without value property",
        lambda d: (
            _set("meters.tokens.aggregation", "UNIQUE_COUNT")(d),
            _delete("meters.tokens.value_property")(d),
        ),
        "meters.tokens.value_property",
        "missing_value_property",
        "UNIQUE_COUNT",
        None,
    ),
    (
        "value property not JSONPath",
        _set("meters.tokens.value_property", "tokens"),
        "meters.tokens.value_property",
        "invalid_value_property",
        "JSONPath",
        "tokens",
    ),
    (
        "feature on AVG meter",
        _set("meters.tokens.aggregation", "AVG"),
        "features.aiTokens.meter",
        "unsupported_aggregation",
        "AVG",
        "tokens",
    ),
    (
        "feature on MAX meter",
        _set("meters.tokens.aggregation", "max"),
        "features.aiTokens.meter",
        "unsupported_aggregation",
        "MAX",
        "tokens",
    ),
    (
        "group-by filter not on meter",
        _set("features.aiTokens.meter_group_by_filters", {"model": "gpt"}),
        "features.aiTokens.meter_group_by_filters.model",
        "unknown_group_by",
        "group_by",
        "model",
    ),
    (
        "plan without entitlements",
        _set("plans.free.entitlements", {}),
        "plans.free.entitlements",
        "empty",
        "grants no entitlements",
        None,
    ),
    (
        "entitlement on unknown feature",
        _set("plans.pro.entitlements.ai_credits", 5),
        "plans.pro.entitlements.ai_credits",
        "unknown_reference",
        "feature",
        "ai_credits",
    ),
    (
        "metered amount on boolean feature",
        _set("plans.pro.entitlements.apiAccess", 100),
        "plans.pro.entitlements.apiAccess",
        "entitlement_type_mismatch",
        "boolean feature",
        100,
    ),
    (
        "metered amount on static feature",
        _set("plans.free.entitlements.supportTier", {"amount": 3}),
        "plans.free.entitlements.supportTier",
        "entitlement_type_mismatch",
        "static feature",
        3,
    ),
    (
        "boolean on metered feature",
        _set("plans.free.entitlements.aiTokens", True),
        "plans.free.entitlements.aiTokens",
        "entitlement_type_mismatch",
        "metered feature",
        True,
    ),
    (
        "negative allowance",
        _set("plans.free.entitlements.aiTokens", -1),
        "plans.free.entitlements.aiTokens.amount",
        "negative_amount",
        "negative",
        -1,
    ),
    (
        "unknown reset",
        _set("plans.pro.entitlements.aiTokens.reset", "fortnight"),
        "plans.pro.entitlements.aiTokens.reset",
        "invalid_interval",
        "reset",
        "fortnight",
    ),
    (
        "rollover",
        _set("plans.pro.entitlements.aiTokens.rollover", {"max_amount": 10}),
        "plans.pro.entitlements.aiTokens.rollover",
        "unsupported_rollover",
        "roll over",
        {"max_amount": 10, "min_amount": 0},
    ),
    (
        "static without config",
        lambda d: d["plans"]["free"]["entitlements"].update(supportTier={"type": "static"}),
        "plans.free.entitlements.supportTier.config",
        "missing_config",
        "config",
        None,
    ),
    (
        "zero price",
        _set("plans.pro.prices.monthly.amount", 0),
        "plans.pro.prices.monthly.amount",
        "non_positive_amount",
        "positive",
        0,
    ),
    (
        "negative price",
        _set("plans.pro.prices.monthly.amount", -5),
        "plans.pro.prices.monthly.amount",
        "non_positive_amount",
        "positive",
        -5,
    ),
    (
        "unknown currency",
        _set("plans.pro.prices.monthly.currency", "usx"),
        "plans.pro.prices.monthly.currency",
        "unknown_currency",
        "ISO 4217",
        "USX",
    ),
    (
        "unknown interval",
        _set("plans.pro.prices.monthly.interval", "quarter"),
        "plans.pro.prices.monthly.interval",
        "invalid_interval",
        "interval",
        "quarter",
    ),
    (
        "zero interval count",
        _set("plans.pro.prices.monthly.interval_count", 0),
        "plans.pro.prices.monthly.interval_count",
        "invalid_count",
        "at least 1",
        0,
    ),
    (
        "negative trial",
        _set("plans.pro.prices.monthly.trial_days", -3),
        "plans.pro.prices.monthly.trial_days",
        "invalid_count",
        "negative",
        -3,
    ),
    (
        "trial on one-time price",
        _set("topups.tokenPack1m.prices.oneTime.trial_days", 7),
        "topups.tokenPack1m.prices.oneTime.trial_days",
        "unexpected_trial",
        "one-time",
        7,
    ),
    (
        "one-time plan price",
        _set("plans.pro.prices.setup", {"amount": 500, "currency": "USD", "interval": "one_time"}),
        "plans.pro.prices.setup.interval",
        "one_time_plan_price",
        "recur",
        "one_time",
    ),
    (
        "duplicate lookup key",
        _set("plans.pro.prices.monthly.lookup_key", "pro-yearly"),
        "plans.pro.prices.yearly.lookup_key",
        "duplicate_lookup_key",
        "plans.pro.prices.monthly",
        "pro-yearly",
    ),
    (
        "add-on without entitlements",
        _set("addons.prioritySupport.entitlements", {}),
        "addons.prioritySupport.entitlements",
        "empty",
        "add-on grants",
        None,
    ),
    (
        "add-on unknown plan",
        _set("addons.prioritySupport.compatible_plans", ["pro", "team"]),
        "addons.prioritySupport.compatible_plans.1",
        "unknown_reference",
        "plan",
        "team",
    ),
    (
        "add-on empty compatible plans",
        _set("addons.prioritySupport.compatible_plans", []),
        "addons.prioritySupport.compatible_plans",
        "empty_compatible_plans",
        "no plan",
        [],
    ),
    (
        "add-on max quantity without multiple",
        _set("addons.prioritySupport.max_quantity", 3),
        "addons.prioritySupport.max_quantity",
        "invalid_quantity",
        "multiple",
        3,
    ),
    (
        "add-on reset differs from plan",
        _set("addons.prioritySupport.entitlements.aiTokens", {"amount": 5, "reset": "year"}),
        "addons.prioritySupport.entitlements.aiTokens.reset",
        "reset_mismatch",
        "month",
        "year",
    ),
    (
        "top-up unknown feature",
        _set("topups.tokenPack1m.feature", "credits"),
        "topups.tokenPack1m.feature",
        "unknown_reference",
        "feature",
        "credits",
    ),
    (
        "top-up on boolean feature",
        _set("topups.tokenPack1m.feature", "apiAccess"),
        "topups.tokenPack1m.feature",
        "topup_not_metered",
        "boolean",
        "apiAccess",
    ),
    (
        "top-up zero amount",
        _set("topups.tokenPack1m.amount", 0),
        "topups.tokenPack1m.amount",
        "non_positive_amount",
        "positive",
        0,
    ),
    (
        "top-up without prices",
        _set("topups.tokenPack1m.prices", {}),
        "topups.tokenPack1m.prices",
        "empty",
        "one-time price",
        None,
    ),
    (
        "recurring top-up price",
        _set("topups.tokenPack1m.prices.oneTime.interval", "month"),
        "topups.tokenPack1m.prices.oneTime.interval",
        "recurring_topup_price",
        "one_time",
        "month",
    ),
    (
        "top-up unknown plan",
        _set("topups.tokenPack1m.compatible_plans", ["gold"]),
        "topups.tokenPack1m.compatible_plans.0",
        "unknown_reference",
        "plan",
        "gold",
    ),
    (
        "grant priority 0",
        _set("topups.tokenPack1m.grant.priority", 0),
        "topups.tokenPack1m.grant.priority",
        "invalid_priority",
        "between 1",
        0,
    ),
    (
        "grant priority 256",
        _set("topups.tokenPack1m.grant.priority", 256),
        "topups.tokenPack1m.grant.priority",
        "invalid_priority",
        "255",
        256,
    ),
    (
        "unknown expiration duration",
        _set("topups.tokenPack1m.grant.expiration.duration", "decade"),
        "topups.tokenPack1m.grant.expiration.duration",
        "invalid_expiration",
        "duration",
        "DECADE",
    ),
    (
        "expiration count 0",
        _set("topups.tokenPack1m.grant.expiration.count", 0),
        "topups.tokenPack1m.grant.expiration.count",
        "invalid_count",
        "1000",
        0,
    ),
    (
        "negative max rollover",
        _set("topups.tokenPack1m.grant.max_rollover_amount", -1),
        "topups.tokenPack1m.grant.max_rollover_amount",
        "negative_amount",
        "negative",
        -1,
    ),
    (
        "min rollover above max",
        _set("topups.tokenPack1m.grant.min_rollover_amount", 2_000_000),
        "topups.tokenPack1m.grant.min_rollover_amount",
        "invalid_rollover",
        "above",
        2_000_000,
    ),
]


@pytest.mark.parametrize(
    ("mutate", "path", "code", "fragment", "value"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_rule_reports_path_code_message_value_and_hint(
    catalog_data: Data,
    mutate: Callable[[Data], Any],
    path: str,
    code: str,
    fragment: str,
    value: Any,
) -> None:
    mutate(catalog_data)
    issues = validate_catalog(define_catalog(catalog_data, check=False))
    matching = [issue for issue in issues if issue.path == path and issue.code == code]
    assert matching, f"no {code} at {path}; got {[(i.path, i.code) for i in issues]}"
    issue = matching[0]
    assert fragment in issue.message
    assert issue.value == value
    assert issue.hint


def test_the_plugin_catalog_is_valid(catalog: Catalog) -> None:
    assert validate_catalog(catalog) == []


def test_every_problem_is_reported_at_once(catalog_data: Data) -> None:
    """The plugin's own multi-error case: several unrelated problems, one report."""
    catalog_data["features"]["aiTokens"]["meter"] = "missing_meter"
    catalog_data["plans"]["pro"]["entitlements"]["apiAccess"] = 100
    catalog_data["plans"]["pro"]["entitlements"]["missingFeature"] = True
    catalog_data["plans"]["pro"]["prices"]["monthly"].update(amount=-1, currency="dollars")
    catalog_data["plans"]["pro"]["prices"]["setup"] = {
        "amount": 100,
        "currency": "USD",
        "interval": "one_time",
    }
    catalog_data["plans"]["empty"] = {"entitlements": {}}
    catalog_data["addons"]["emptyAddon"] = {"key": "empty_addon", "entitlements": {}}
    catalog_data["topups"]["badTopup"] = {
        "key": "bad_topup",
        "feature": "apiAccess",
        "amount": 5,
        "prices": {"monthly": {"amount": 100, "currency": "USD", "interval": "month"}},
    }
    paths = [issue.path for issue in validate_catalog(define_catalog(catalog_data, check=False))]
    expected = [
        "features.aiTokens.meter",
        "plans.pro.entitlements.apiAccess",
        "plans.pro.entitlements.missingFeature",
        "plans.pro.prices.monthly.amount",
        "plans.pro.prices.monthly.currency",
        "plans.pro.prices.setup.interval",
        "plans.empty.entitlements",
        "addons.emptyAddon.entitlements",
        "topups.badTopup.feature",
        "topups.badTopup.prices.monthly.interval",
    ]
    assert paths == expected


def test_define_catalog_raises_catalog_error_listing_every_issue(catalog_data: Data) -> None:
    catalog_data["plans"]["pro"]["entitlements"]["apiAccess"] = 100
    catalog_data["plans"]["pro"]["prices"]["monthly"]["currency"] = "XXY"
    with pytest.raises(CatalogError) as info:
        define_catalog(catalog_data)
    assert [i.code for i in info.value.issues] == ["entitlement_type_mismatch", "unknown_currency"]
    text = str(info.value)
    assert "plans.pro.entitlements.apiAccess" in text
    assert "'XXY'" in text


def test_empty_catalog_is_two_issues_not_a_crash() -> None:
    issues = validate_catalog(Catalog())
    assert [(i.path, i.code) for i in issues] == [("features", "empty"), ("plans", "empty")]


def test_invalid_key_hint_suggests_a_valid_key(catalog_data: Data) -> None:
    catalog_data["features"]["apiAccess"]["key"] = "apiAccess"
    issues = validate_catalog(define_catalog(catalog_data, check=False))
    assert issues[0].hint is not None
    assert "'api_access'" in issues[0].hint


def test_add_on_shared_metered_feature_with_same_reset_is_valid(catalog_data: Data) -> None:
    catalog_data["addons"]["prioritySupport"]["entitlements"]["aiTokens"] = 5000
    assert validate_catalog(define_catalog(catalog_data, check=False)) == []
