"""JSON Schema export and loading catalogs from JSON, TOML, YAML and Python modules."""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from openmeter_billing import InvalidInputError
from openmeter_billing.catalog import Catalog, CatalogError
from openmeter_billing.catalog.loader import load_catalog
from openmeter_billing.catalog.schema import catalog_json_schema

DATA = Path(__file__).parent / "data"

TOML_CATALOG = """
[meters.tokens]
event_type = "tokens"
aggregation = "SUM"
value_property = "$.tokens"

[features.ai_tokens]
type = "metered"
meter = "tokens"

[plans.pro]
name = "Pro"
entitlements = { ai_tokens = { amount = 100000, reset = "month" } }

[plans.pro.prices.monthly]
amount = 2000
currency = "USD"
interval = "month"
"""

YAML_CATALOG = """
meters:
  tokens: {event_type: tokens, aggregation: SUM, value_property: $.tokens}
features:
  ai_tokens: {type: metered, meter: tokens}
plans:
  pro:
    name: Pro
    entitlements:
      ai_tokens: {amount: 100000, reset: month}
    prices:
      monthly: {amount: 2000, currency: USD, interval: month}
"""


def _validator() -> jsonschema.Draft202012Validator:
    schema = catalog_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_accepts_the_plugin_catalog_with_its_shorthands(
    catalog_data: dict[str, Any],
) -> None:
    catalog_data["$schema"] = "./catalog.schema.json"
    assert list(_validator().iter_errors(catalog_data)) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("plans", "pro", "colour"), "blue"),
        (("plans", "pro", "prices", "monthly", "amount"), "20"),
        (("features", "apiAccess", "type"), "toggle"),
        (("plans", "free", "entitlements", "apiAccess"), [True]),
    ],
)
def test_schema_rejects_wrong_shapes(
    catalog_data: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    node = catalog_data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    assert list(_validator().iter_errors(catalog_data))


def test_schema_is_a_fresh_copy_each_call() -> None:
    first = catalog_json_schema()
    first["title"] = "changed"
    assert catalog_json_schema()["title"] == "openmeter-billing catalog"


def _same_as_yaml_fixture(catalog: Catalog) -> None:
    entitlement = catalog.plans["pro"].entitlements["ai_tokens"]
    assert entitlement.type == "metered"
    assert entitlement.amount == 100000
    assert catalog.plans["pro"].prices["monthly"].amount == 2000
    assert catalog.check() is catalog


def test_load_json_file(catalog: Catalog) -> None:
    assert load_catalog(DATA / "plugin_catalog.json") == catalog
    assert load_catalog(str(DATA / "plugin_catalog.json")) == catalog


def test_load_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(TOML_CATALOG)
    _same_as_yaml_fixture(load_catalog(path))


def test_load_yaml_file_with_either_suffix(tmp_path: Path) -> None:
    for suffix in (".yaml", ".yml"):
        path = tmp_path / f"catalog{suffix}"
        path.write_text(YAML_CATALOG)
        _same_as_yaml_fixture(load_catalog(path))


def test_load_from_module_attribute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"billing_{uuid.uuid4().hex}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            f"""
            import json
            from openmeter_billing.catalog import define_catalog
            DATA = json.loads({json.dumps(json.dumps(json.loads((DATA / "plugin_catalog.json").read_text())))})
            catalog = define_catalog(DATA)
            class Holder:
                catalog = catalog
            not_a_catalog = 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = load_catalog(f"{name}:catalog")
    assert loaded.plans["pro"].name == "Pro"
    assert load_catalog(f"{name}:Holder.catalog") is loaded
    assert load_catalog(f"{name}:DATA").plans["pro"].name == "Pro"
    with pytest.raises(InvalidInputError, match="int, not a Catalog"):
        load_catalog(f"{name}:not_a_catalog")
    with pytest.raises(InvalidInputError, match="no attribute"):
        load_catalog(f"{name}:missing")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("does/not/exist.json", "does not exist"),
        ("catalog.xml", "cannot tell the catalog format"),
        ("no_such_module_xyz:catalog", "cannot import module"),
        (":catalog", "not package.module:attribute"),
    ],
)
def test_loader_usage_errors_name_the_source(source: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        load_catalog(source)
    assert info.value.field == "source"
    assert fragment in str(info.value)
    assert info.value.hint


@pytest.mark.parametrize(
    ("suffix", "text"),
    [(".json", "{not json"), (".toml", "[plans\nx ="), (".yaml", "plans: [unclosed")],
)
def test_syntax_errors_are_catalog_errors(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    assert info.value.issues[0].code == "parse_error"
    assert "broken" in info.value.issues[0].message


def test_shape_errors_in_files_list_every_issue(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"plans": {"p": {"prices": {"m": {"amount": "x"}}}}, "extra": 1}))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    paths = {issue.path for issue in info.value.issues}
    assert {"extra", "plans.p.prices.m.amount", "plans.p.prices.m.currency"} <= paths


def test_yaml_without_pyyaml_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(YAML_CATALOG)
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(InvalidInputError) as info:
        load_catalog(path)
    assert "openmeter-billing[yaml]" in str(info.value)


def test_toml_without_tomllib_or_tomli_names_the_backport(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(TOML_CATALOG)
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(InvalidInputError, match="tomli"):
        load_catalog(path)


def test_loading_does_not_check_rules_so_check_can_list_them(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"features": {}, "plans": {}}))
    catalog = load_catalog(path)
    with pytest.raises(CatalogError) as info:
        catalog.check()
    assert [i.path for i in info.value.issues] == ["features", "plans"]


def test_toml_falls_back_to_tomli_when_tomllib_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tomllib = pytest.importorskip("tomllib")

    path = tmp_path / "catalog.toml"
    path.write_text(TOML_CATALOG)
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", tomllib)  # stands in for the 3.10 backport
    _same_as_yaml_fixture(load_catalog(path))
