"""``openmeter-billing catalog ...`` through a parser built with `register`: output and exit codes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
import respx

from openmeter_billing.catalog._cli import register
from openmeter_billing.catalog.schema import catalog_json_schema

DATA = Path(__file__).parent / "data"
FIXTURE = str(DATA / "plugin_catalog.json")


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="openmeter-billing")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


@pytest.fixture
def broken(tmp_path: Path, catalog_data: dict[str, Any]) -> str:
    catalog_data["plans"]["pro"]["entitlements"]["apiAccess"] = 100
    catalog_data["plans"]["pro"]["prices"]["monthly"]["currency"] = "XYZ"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(catalog_data))
    return str(path)


def test_check_valid_catalog_exits_0_with_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("catalog", "check", FIXTURE) == 0
    out = capsys.readouterr().out
    assert out.strip() == "catalog OK: meters: 1, features: 4, plans: 2, addons: 1, topups: 1"


def test_check_invalid_catalog_exits_1_listing_path_code_value_and_fix(
    broken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("catalog", "check", broken) == 1
    out = capsys.readouterr().out
    assert "catalog invalid: 2 problems" in out
    assert "plans.pro.entitlements.apiAccess [entitlement_type_mismatch]" in out
    assert "value: 'XYZ'" in out
    assert "fix: use a three-letter code" in out


def test_check_json_output_is_machine_readable(
    broken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("catalog", "check", broken, "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    assert [(i["path"], i["code"], i["value"]) for i in data["issues"]] == [
        ("plans.pro.entitlements.apiAccess", "entitlement_type_mismatch", 100),
        ("plans.pro.prices.monthly.currency", "unknown_currency", "XYZ"),
    ]
    assert run("catalog", "check", FIXTURE, "--json") == 0
    assert json.loads(capsys.readouterr().out)["counts"]["plans"] == 2


def test_missing_source_is_a_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("catalog", "check", "nowhere/catalog.json") == 2
    assert "does not exist" in capsys.readouterr().err


def test_compile_provider_prints_products_prices_and_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run("catalog", "compile", FIXTURE, "--provider", "razorpay") == 0
    out = capsys.readouterr().out
    assert "razorpay: 4 products, 4 prices" in out
    assert "product topup token_pack_1m: manual_charge (new)" in out
    assert "price pro:monthly: 2000 USD/month subscription_plan (new)" in out
    assert "warning topups.tokenPack1m [topup_custom_flow]" in out


def test_compile_provider_strict_exits_1_on_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("catalog", "compile", FIXTURE, "--provider", "razorpay", "--strict") == 1
    assert "recurring_addon_unsupported" in capsys.readouterr().out
    assert run("catalog", "compile", FIXTURE, "--provider", "stripe", "--strict") == 0


def test_compile_provider_json_matches_the_library(
    capsys: pytest.CaptureFixture[str], assert_golden: Any
) -> None:
    assert run("catalog", "compile", FIXTURE, "--provider", "stripe", "--json") == 0
    assert_golden("provider_stripe", json.loads(capsys.readouterr().out))


def test_compile_openmeter_plan_with_addons(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["catalog", "compile", FIXTURE, "--openmeter", "--plan", "pro", "--json"]
    assert run(*argv, "--addon", "priority_support_addon") == 0
    bodies = json.loads(capsys.readouterr().out)["entitlements"]
    assert [b["featureKey"] for b in bodies] == [
        "ai_tokens",
        "api_access",
        "support_tier",
        "priority_support",
    ]
    assert run(*argv[:-1]) == 0
    assert capsys.readouterr().out.startswith("entitlements:\n  {")


def test_compile_openmeter_without_plan_prints_meters_and_features(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run("catalog", "compile", FIXTURE, "--openmeter", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["slug"] for m in data["meters"]] == ["tokens"]
    assert len(data["features"]) == 4


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--openmeter", "--plan", "gold"], "unknown plan 'gold'"),
        (["--openmeter", "--plan", "pro", "--addon", "priority_support_addon=two"], "whole number"),
        (["--openmeter", "--plan", "pro", "--addon", "priority_support_addon=2"], "at most 1"),
        (["--openmeter", "--addon", "x"], "--addon needs --plan"),
        (["--openmeter", "--strict"], "--strict goes with --provider"),
        (["--provider", "stripe", "--plan", "pro"], "--plan and --addon go with --openmeter"),
    ],
)
def test_compile_usage_errors_exit_2(
    extra: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("catalog", "compile", FIXTURE, *extra) == 2
    assert fragment in capsys.readouterr().err


def test_compile_invalid_catalog_exits_1(broken: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("catalog", "compile", broken, "--provider", "stripe") == 1
    assert "catalog invalid" in capsys.readouterr().out


def test_compile_needs_a_target() -> None:
    with pytest.raises(SystemExit) as info:
        run("catalog", "compile", FIXTURE)
    assert info.value.code == 2


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("catalog", "schema") == 0
    assert json.loads(capsys.readouterr().out) == catalog_json_schema()


def test_catalog_without_subcommand_prints_help_and_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run("catalog") == 2
    assert "check" in capsys.readouterr().out


def test_push_dry_run_prints_the_plan(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api.get("/api/v1/meters").respond(200, json=[])
    api.get("/api/v1/features").respond(
        200, json={"items": [], "page": 1, "pageSize": 100, "totalCount": 0}
    )
    monkeypatch.setenv("OPENMETER_TOKEN", "om_test")
    assert run("catalog", "push", FIXTURE, "--dry-run", "--base-url", "https://openmeter.test") == 0
    out = capsys.readouterr().out
    assert "+ meter tokens: create" in out
    assert "dry run: nothing applied" in out
    assert all(call.request.method == "GET" for call in api.calls)


def test_push_conflict_exits_1_with_json_plan(
    api: respx.MockRouter, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = {
        "id": "01J00000000000000000000000",
        "slug": "tokens",
        "aggregation": "COUNT",
        "eventType": "tokens",
        "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-01-01T00:00:00Z",
    }
    api.get("/api/v1/meters").respond(200, json=[remote])
    api.get("/api/v1/features").respond(
        200, json={"items": [], "page": 1, "pageSize": 100, "totalCount": 0}
    )
    monkeypatch.setenv("OPENMETER_TOKEN", "om_test")
    assert run("catalog", "push", FIXTURE, "--json", "--base-url", "https://openmeter.test") == 1
    plan = json.loads(capsys.readouterr().out)
    assert plan["applied"] is False
    assert plan["actions"][0]["action"] == "conflict"


def test_push_invalid_catalog_exits_1_without_network(
    broken: str, api: respx.MockRouter, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("catalog", "push", broken, "--base-url", "https://openmeter.test") == 1
    assert api.calls.call_count == 0


def test_registered_through_the_main_cli() -> None:
    from openmeter_billing.cli import build_parser

    args = build_parser().parse_args(["catalog", "check", FIXTURE])
    assert args.func(args) == 0
