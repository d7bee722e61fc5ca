"""Local OpenMeter's packages import in one direction: api -> state -> engine/meters, never back."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import openmeter_billing.local as local

ROOT = Path(local.__file__).parent
SHARED = {"_time", "_windows"}  # pure calendar helpers every layer may use
ALLOWED = {
    "engine": {"engine"} | SHARED,
    "meters": {"meters"} | SHARED,
    "state": {"state", "engine", "meters"} | SHARED,
    "api": {"api", "state", "engine", "meters", "_clock"} | SHARED,  # handlers read the clock
}


def _local_imports(path: Path) -> set[str]:
    """First component under ``openmeter_billing.local`` of every import in ``path``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module == "openmeter_billing.local":
                names = [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("openmeter_billing.local."):
                found.add(name.split(".")[2])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_its_layer_and_below(package: str) -> None:
    for path in sorted((ROOT / package).glob("*.py")):
        wrong = _local_imports(path) - ALLOWED[package]
        assert not wrong, f"{path.name} imports {sorted(wrong)}"


@pytest.mark.parametrize("package", ["engine", "meters"])
def test_engine_and_meters_are_pure(package: str) -> None:
    for path in sorted((ROOT / package).glob("*.py")):
        text = path.read_text()
        for banned in ("import httpx", "import threading", "from openmeter_billing.local.state"):
            assert banned not in text, f"{path.name}: {banned}"


def test_public_names_still_import() -> None:
    from openmeter_billing.local import Clock, Faults, LocalOpenMeter, Observer
    from openmeter_billing.local._server import LoopbackServer, serve_in_thread
    from openmeter_billing.local.balance import ResetRecord, compute_balance
    from openmeter_billing.local.engine import balance

    assert compute_balance is balance.compute_balance
    assert ResetRecord is balance.ResetRecord
    assert all((Clock, Faults, LocalOpenMeter, Observer, LoopbackServer, serve_in_thread))
