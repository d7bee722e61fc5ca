"""The issue collector shared by the validation modules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._exceptions import CatalogIssue

__all__ = ["Issues", "names"]


class Issues:
    """Collects issues in catalog order."""

    def __init__(self) -> None:
        self.items: list[CatalogIssue] = []

    def add(
        self, path: str, code: str, message: str, value: Any = None, hint: str | None = None
    ) -> None:
        """Record one issue."""
        self.items.append(CatalogIssue(path, message, value=value, hint=hint, code=code))


def names(items: Mapping[str, Any]) -> str:
    """The catalog names of a section, for hints."""
    return ", ".join(items) if items else "(none defined)"
