"""The small JSONPath subset OpenMeter meters use to read values out of an event's ``data``.

A meter's ``valueProperty`` and ``groupBy`` entries are JSONPath expressions such as ``$.tokens``
or ``$.model.name``. Local OpenMeter only needs to *read one value* with them, so it supports the
child-access subset: dotted names, bracketed quoted names (``$['a b']``) and array indexes
(``$.items[0]``, negative indexes count from the end). Wildcards, slices, filters and recursive
descent select many values, which a meter cannot aggregate, so they are refused with a clear error.

Example::

    >>> parse_json_path("$.usage['input tokens']").find({"usage": {"input tokens": 12}})
    12
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["MISSING", "JsonPath", "JsonPathError", "json_value_text", "parse_json_path"]


class _Missing:
    """The type of :data:`MISSING`; a singleton distinct from ``None`` (JSON ``null``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final[object] = _Missing()
"""Returned by :meth:`JsonPath.find` when the path does not resolve (absent key, bad index).

It is not ``None`` because ``{"a": null}`` *does* resolve ``$.a`` (to ``None``).
"""

_EXAMPLE = "valid paths look like $.tokens, $.usage.input, $['model name'] or $.items[0]"

# One step after "$": ".name", "['quoted']", '["quoted"]' or "[index]".
_DOT_NAME = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_ESCAPE = re.compile(r"\\(.)")

Step = str | int


class JsonPathError(ValueError):
    """A JSONPath expression that Local OpenMeter cannot evaluate; the message shows valid ones."""

    def __init__(self, expr: str, problem: str) -> None:
        self.expr = expr
        self.problem = problem
        super().__init__(f"invalid JSONPath {expr!r}: {problem}; {_EXAMPLE}")


@dataclass(frozen=True)
class JsonPath:
    """A parsed JSONPath: the original text and the key/index steps it walks.

    Build it with :func:`parse_json_path`; the steps are already validated, so :meth:`find`
    never raises.
    """

    expr: str
    steps: tuple[Step, ...]

    def find(self, data: object) -> object:
        """The value at this path in ``data``, or :data:`MISSING` when it does not resolve.

        A name step only matches a JSON object (``Mapping``) key, an index step only a JSON array
        (``list``/``tuple``); anything else means the path does not resolve rather than an error,
        because event payloads are user data and a meter has to survive odd ones.
        """
        current = data
        for step in self.steps:
            current = _step(current, step)
            if current is MISSING:
                return MISSING
        return current


def _step(current: object, step: Step) -> object:
    """Apply one step; MISSING when the container has no such key or index."""
    if isinstance(step, str):
        if isinstance(current, Mapping) and step in current:
            return current[step]
        return MISSING
    if isinstance(current, (list, tuple)) and -len(current) <= step < len(current):
        return current[step]
    return MISSING


def _match_step(expr: str, pos: int) -> tuple[Step, int]:
    """The step starting at ``expr[pos]`` and the position after it."""
    for pattern in (_DOT_NAME, _QUOTED, _INDEX):
        match = pattern.match(expr, pos)
        if match is None:
            continue
        if pattern is _INDEX:
            return int(match.group(1)), match.end()
        raw = next(g for g in match.groups() if g is not None)
        return _ESCAPE.sub(r"\1", raw), match.end()
    rest = expr[pos:]
    if rest.startswith(("..", "[*]", ".*", "[?")) or ":" in rest.split("]")[0]:
        problem = f"{rest!r} selects several values; a meter needs exactly one"
    else:
        problem = f"cannot parse {rest!r} at position {pos}"
    raise JsonPathError(expr, problem)


def parse_json_path(expr: str) -> JsonPath:
    """Parse ``expr`` into a :class:`JsonPath` that selects exactly one value.

    ``"$"`` alone is refused: it names the whole ``data`` object, which is never a meter value.

    Raises:
        JsonPathError: (a ``ValueError``) when ``expr`` is not a string, does not start with
            ``$``, selects nothing or several values, or has a syntax error.
    """
    if not isinstance(expr, str):
        raise JsonPathError(repr(expr), f"expected a string, got {type(expr).__name__}")
    text = expr
    if not text.startswith("$"):
        raise JsonPathError(expr, "it must start with '$' (the event's data object)")
    if text == "$":
        raise JsonPathError(expr, "'$' is the whole data object, not a value inside it")
    steps: list[Step] = []
    pos = 1
    while pos < len(text):
        step, pos = _match_step(text, pos)
        steps.append(step)
    return JsonPath(expr=expr, steps=tuple(steps))


def json_value_text(value: object) -> str | None:
    """The text OpenMeter's store reads for a scalar JSON value, or None for objects and arrays.

    OpenMeter groups and counts distinct values through ClickHouse's ``JSON_VALUE``, which yields
    strings unquoted and other scalars as their JSON text, so ``"7"`` and ``7`` are the same group.
    Objects and arrays have no scalar text (ClickHouse yields an empty string for them).

    Example: ``json_value_text(True) == "true"``, ``json_value_text(None) == "null"``.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr is the shortest text that reads back as the same float, like JSON writers emit.
        return repr(value)
    return None
