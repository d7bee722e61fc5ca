"""Fixtures for catalog tests: the plugin's catalog (the golden fixture) as data and as a Catalog."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from openmeter_billing.catalog import Catalog, define_catalog

DATA = Path(__file__).parent / "data"
PLUGIN_CATALOG = DATA / "plugin_catalog.json"


@pytest.fixture
def catalog_data() -> dict[str, Any]:
    """A fresh, mutable copy of the plugin's catalog fixture as plain data."""
    return copy.deepcopy(json.loads(PLUGIN_CATALOG.read_text()))


@pytest.fixture
def catalog(catalog_data: dict[str, Any]) -> Catalog:
    """The plugin's catalog fixture, built and checked."""
    return define_catalog(catalog_data)


GOLDEN = Path(__file__).parent / "golden"


def _assert_golden(name: str, data: Any) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"missing golden file {path}; run with UPDATE_GOLDEN=1 to create it"
    assert json.loads(path.read_text()) == json.loads(text), f"{path.name} differs from the output"


@pytest.fixture
def assert_golden() -> Callable[[str, Any], None]:
    """Compare data with ``golden/<name>.json``; regenerate only with ``UPDATE_GOLDEN=1``."""
    return _assert_golden
