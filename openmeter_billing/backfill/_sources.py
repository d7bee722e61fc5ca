"""Where the command line's items come from: a JSON Lines file or ``module:callable``."""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import AsyncIterable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .._exceptions import ConfigurationError, InvalidInputError
from ..identity import Organization, Scope, Team, User
from ._runner import Unreadable

__all__ = [
    "PRINCIPALS",
    "count_lines",
    "is_callable_ref",
    "json_lines",
    "load_callable",
    "principal",
]

PRINCIPALS: dict[str, type[Any]] = {"user": User, "organization": Organization, "team": Team}


def is_callable_ref(source: str) -> bool:
    """``package.module:callable`` rather than a file path (a path that exists wins)."""
    return ":" in source and not Path(source).exists() and "/" not in source.split(":", 1)[0]


def load_callable(ref: str, what: str) -> Any:
    """Import ``module:attr`` and return the attribute (called if callable)."""
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
        target = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"{what} {ref!r} cannot be loaded ({exc}); write package.module:name and make the "
            "module importable (run from its directory or set PYTHONPATH)"
        ) from exc
    return target() if callable(target) else target


def count_lines(path: Path) -> int:
    """How many non-blank lines ``path`` has (for progress); cheap even for 100,000 lines."""
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def json_lines(path: Path) -> Iterator[tuple[int, Any] | Unreadable]:
    """``(line number, value)`` for each non-blank line; a line that is not JSON is `Unreadable`."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as exc:
                error = InvalidInputError(
                    f"not JSON ({exc})",
                    field=f"line {number}",
                    hint="write one JSON object a line",
                )
                yield Unreadable(f"line {number}", error)


def principal(number: int, row: Any, scope: Scope, unknown: set[str]) -> Any:
    """Build a `User`, `Organization` or `Team` from one row; collects ignored column names."""
    if not isinstance(row, dict):
        raise InvalidInputError(
            f"a JSON {type(row).__name__}, not an object",
            field=f"line {number}",
            hint='write one object a line, for example {"id": "42", "email": "ada@example.com"}',
        )
    cls = PRINCIPALS[scope]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown.update(set(row) - names)
    if row.get("id") in (None, ""):
        raise InvalidInputError("no id", field=f"line {number}.id", hint="every row needs an id")
    values = {k: v for k, v in row.items() if k in names and v is not None}
    values["id"] = str(values["id"])
    metadata = values.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidInputError(
                "metadata must be an object of strings",
                field=f"line {number}.metadata",
            )
        values["metadata"] = {str(k): str(v) for k, v in metadata.items()}
    return cls(**values)


def callable_items(ref: str) -> Iterable[Any] | AsyncIterable[Any]:
    """The iterable (or async iterable) that ``module:callable`` returns."""
    items = load_callable(ref, "--from")
    if not isinstance(items, (Iterable, AsyncIterable)) or isinstance(items, (str, bytes, dict)):
        raise ConfigurationError(
            f"--from {ref} gave a {type(items).__name__}; it must return an iterable of items "
            "(a list, a generator or an async generator)"
        )
    return items
