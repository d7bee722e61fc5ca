"""The hot-path benchmark runs end to end with tiny counts and prints every expected row."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "hot_path.py"


@pytest.fixture
def hot_path(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script as a module, loaded by path as `python benchmarks/hot_path.py` would run it."""
    # benchmarks/ is not a package. Dataclasses look their module up in sys.modules, hence the
    # registration (undone after the test).
    spec = importlib.util.spec_from_file_location("hot_path_benchmark", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("server", ["process", "thread"])
def test_table_has_a_row_per_operation_and_mode(
    hot_path: ModuleType, capsys: pytest.CaptureFixture[str], server: str
) -> None:
    argv = ["--calls", "20", "--repeat", "1", "--concurrency", "4", "--server", server]
    assert hot_path.main(argv) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("operation"))
    for column in ("path", "mode", "median ops/s", "median µs/op", "vs bare"):
        assert column in header
    rows = [
        line.split() for line in lines if line.startswith(("entitlement value", "event ingest"))
    ]
    # Columns: operation (two words), method, path, mode, ops/s, µs/op, vs bare.
    found = {(" ".join(row[:2]), row[4]) for row in rows}
    expected = {
        (operation, mode)
        for operation in ("entitlement value", "event ingest")
        for mode in ("client", "bare", "in-process")
    }
    assert found == expected
    paths = {" ".join(row[:2]): " ".join(row[2:4]) for row in rows}
    assert paths == {
        "entitlement value": "GET /api/v2/customers/bench-reader/entitlements/tokens/value",
        "event ingest": "POST /api/v1/events",
    }
    bare_ratios = [row[-1] for row in rows if row[4] == "bare"]
    assert bare_ratios == ["1.00x", "1.00x"]
    assert "wire check (client vs bare requests): identical" in out


def test_json_output_lists_the_same_rows(
    hot_path: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert hot_path.main(["--calls", "20", "--repeat", "1", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["settings"] == {
        "calls": 20,
        "concurrency": 8,
        "repeat": 1,
        "repetitions_run": 1,
        "server": "process",
    }
    assert document["wire_check"] == "identical"
    assert [(row["operation"], row["mode"]) for row in document["rows"]] == [
        (operation, mode)
        for operation in ("entitlement value", "event ingest")
        for mode in ("client", "bare", "in-process")
    ]
    assert all(row["ops_per_s"] > 0 for row in document["rows"])


def test_rejects_non_positive_counts(
    hot_path: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        hot_path.main(["--calls", "0"])
    assert exited.value.code == 2
    assert "--calls must be at least 1, got 0" in capsys.readouterr().err
