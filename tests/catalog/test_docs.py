"""docs/catalog.md stays true: its Python and TOML catalogs build, agree, and behave as shown."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from openmeter_billing.catalog import (
    Catalog,
    compile_openmeter_entitlements,
    compile_payment_catalog,
    load_catalog,
)
from openmeter_billing.catalog.push import push_catalog

DOC = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"


def _need_toml() -> None:
    """TOML needs tomllib (3.11+) or the tomli backport (3.10)."""
    try:
        import tomllib  # noqa: F401
    except ImportError:
        pytest.importorskip("tomli")


def _block(language: str) -> str:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)[0]


@pytest.fixture
def python_catalog() -> Catalog:
    namespace: dict[str, Any] = {}
    exec(_block("python"), namespace)
    catalog = namespace["catalog"]
    assert isinstance(catalog, Catalog)
    return catalog


def test_python_and_toml_examples_define_the_same_catalog(
    python_catalog: Catalog, tmp_path: Path
) -> None:
    _need_toml()
    path = tmp_path / "catalog.toml"
    path.write_text(_block("toml"))
    assert load_catalog(path).check() == python_catalog


def test_documented_entitlement_order_and_markers(python_catalog: Catalog) -> None:
    bodies = compile_openmeter_entitlements(python_catalog, "pro", ["priority_support"])
    assert [b["featureKey"] for b in bodies] == ["ai_tokens", "support_tier", "priority_support"]
    assert bodies[1]["config"] == '{"tier":"business"}'
    assert bodies[2]["metadata"]["openmeter_billing.addons"] == "priority_support:1"


def test_documented_strategy_table_matches_the_compiler(python_catalog: Catalog) -> None:
    text = DOC.read_text()
    rows = {
        "plan": 0,
        "add-on, recurring price": 1,
        "top-up": 2,
    }
    for row, index in rows.items():
        line = next(line for line in text.splitlines() if line.startswith(f"| {row} |"))
        cells = [c.strip().rstrip(" ⚠") for c in line.strip("|").split("|")[1:]]
        for provider, cell in zip(
            ("stripe", "polar", "razorpay", "creem", "dodo", "autumn"), cells, strict=True
        ):
            products = compile_payment_catalog(python_catalog, provider).products
            assert products[index].strategy == cell, (row, provider)


class _EmptyOpenMeter:
    class meters:
        @staticmethod
        async def list() -> list[Any]:
            return []

    class features:
        @staticmethod
        async def _items() -> Any:
            for item in ():
                yield item

        @classmethod
        def list(cls, *, include_archived: bool | None = None) -> Any:
            return cls._items()


async def test_documented_dry_run_output(python_catalog: Catalog) -> None:
    plan = await push_catalog(_EmptyOpenMeter(), python_catalog, dry_run=True)  # type: ignore[arg-type]
    text = DOC.read_text()
    for line in plan.render().splitlines():
        assert line in text


def test_documented_check_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from openmeter_billing.catalog._cli import register

    _need_toml()
    path = tmp_path / "catalog.toml"
    path.write_text(_block("toml"))
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["catalog", "check", str(path)])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() in DOC.read_text()
