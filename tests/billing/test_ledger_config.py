"""Ledger settings are checked at construction, with errors that name the argument and the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openmeter_billing import ConfigurationError
from openmeter_billing.billing.ledger import InMemoryLedger, PostgresLedger, SQLiteLedger


def build(kind: str, tmp_path: Path, **options: Any) -> Any:
    if kind == "memory":
        return InMemoryLedger(**options)
    if kind == "sqlite":
        return SQLiteLedger(tmp_path / "l.sqlite3", **options)
    return PostgresLedger("postgresql://127.0.0.1:1/never-contacted", **options)


KINDS = ["memory", "sqlite", "postgres"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("lease", [0, -5, float("nan"), float("inf"), "300", True, None])
def test_lease_must_be_a_positive_number_of_seconds(kind: str, lease: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"lease: must be a positive number") as info:
        build(kind, tmp_path, lease=lease)
    assert repr(lease) in str(info.value)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("retention", [0, -1, float("nan"), "1d"])
def test_retention_must_be_positive_or_none(kind: str, retention: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"retention: .*or None to keep results forever"):
        build(kind, tmp_path, retention=retention)


@pytest.mark.parametrize("kind", KINDS)
def test_settings_are_kept_as_given(kind: str, tmp_path: Path) -> None:
    ledger = build(kind, tmp_path, lease=12, retention=3600)
    assert (ledger.lease, ledger.retention) == (12.0, 3600.0)
    assert build(kind, tmp_path).lease == 300.0
    assert build(kind, tmp_path).retention is None


@pytest.mark.parametrize("kind", KINDS)
def test_clock_must_be_callable(kind: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="now: must be a callable"):
        build(kind, tmp_path, now=1_700_000_000.0)


@pytest.mark.parametrize("table", ["my-table", "a.b", "drop table x;"])
def test_sqlite_table_must_be_a_plain_identifier(table: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="table"):
        SQLiteLedger(tmp_path / "l.sqlite3", table=table)


@pytest.mark.parametrize("busy_timeout", [0, -1, "30"])
def test_sqlite_busy_timeout_must_be_positive(busy_timeout: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="busy_timeout"):
        SQLiteLedger(tmp_path / "l.sqlite3", busy_timeout=busy_timeout)


def test_sqlite_path_must_be_a_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="path"):
        SQLiteLedger(42)  # type: ignore[arg-type]
