"""Request validation against OpenMeter's own rules, before any handler runs.

OpenMeter's router checks every request against its OpenAPI document first and answers 400 naming
the field. Local OpenMeter does the same from its copy of those rules (:mod:`._request_rules`):
path and query parameters (types, enums, bounds, lengths, patterns, item counts) and JSON bodies
(required fields, types, formats, nested objects, anyOf/oneOf/allOf). Handlers then apply the
domain rules the spec cannot express.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from openmeter_billing.local.api.problems import Problem, bad_request
from openmeter_billing.local.api.request_rules import OPERATIONS, SCHEMAS

__all__ = ["check_body", "check_params", "operation"]

_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "object": (dict,),
    "array": (list,),
    "boolean": (bool,),
}


@functools.cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def operation(method: str, template: str) -> Mapping[str, Any] | None:
    """The rules of one served operation (None for routes outside the spec)."""
    rules: Mapping[str, Any] | None = OPERATIONS.get(f"{method} {template}")
    return rules


class _Invalid(Exception):
    """Internal: a value breaks a rule. Cheap to raise, as anyOf/oneOf try every branch; it
    becomes OpenMeter's 400 problem only when it escapes validation (:func:`_problem`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field or "body"
        self.message = message


def _fail(field: str, message: str) -> _Invalid:
    return _Invalid(field, message)


def _problem(invalid: _Invalid) -> Problem:
    return bad_request(f"{invalid.field}: {invalid.message}", field=invalid.field)


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _JSON_TYPES.get(kind, (object,)))


def validate(value: Any, schema: Mapping[str, Any], field: str) -> None:
    """Raise a 400 naming ``field`` (a dotted path) when ``value`` breaks ``schema``."""
    try:
        _check(value, schema, field)
    except _Invalid as invalid:
        raise _problem(invalid) from None


def _check(value: Any, schema: Mapping[str, Any], field: str) -> None:
    if "$ref" in schema:
        _check(value, SCHEMAS[schema["$ref"]], field)
        return
    if value is None and schema.get("nullable"):
        return
    kind = schema.get("type")
    if kind is not None and not _type_ok(value, kind):
        raise _fail(field, f"must be of type {kind}")
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"])
        raise _fail(field, f"must be one of {allowed}")
    _combinators(value, schema, field)
    if isinstance(value, str):
        _string(value, schema, field)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        _number(value, schema, field)
    elif isinstance(value, list):
        _array(value, schema, field)
    elif isinstance(value, dict):
        _object(value, schema, field)


def _matches(value: Any, schema: Mapping[str, Any], field: str) -> bool:
    try:
        _check(value, schema, field)
    except _Invalid:
        return False
    return True


def _combinators(value: Any, schema: Mapping[str, Any], field: str) -> None:
    for part in schema.get("allOf", ()):
        _check(value, part, field)
    if "anyOf" in schema and not any(_matches(value, s, field) for s in schema["anyOf"]):
        raise _fail(field, "does not match any of the allowed forms")
    if "oneOf" not in schema:
        return
    discriminator = schema.get("discriminator")
    if discriminator is not None and isinstance(value, dict):
        name = discriminator["propertyName"]
        target = discriminator["mapping"].get(value.get(name))
        if target is None:
            allowed = ", ".join(discriminator["mapping"])
            raise _fail(f"{field}.{name}" if field else name, f"must be one of {allowed}")
        _check(value, SCHEMAS[target], field)
        return
    if sum(_matches(value, s, field) for s in schema["oneOf"]) != 1:
        raise _fail(field, "must match exactly one of the allowed forms")


def _string(value: str, schema: Mapping[str, Any], field: str) -> None:
    if "minLength" in schema and len(value) < schema["minLength"]:
        raise _fail(field, f"must be at least {schema['minLength']} characters long")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise _fail(field, f"must be at most {schema['maxLength']} characters long")
    if "pattern" in schema and not _regex(schema["pattern"]).search(value):
        raise _fail(field, f"must match the pattern {schema['pattern']}")
    if schema.get("format") == "date-time" and not _DATE_TIME.match(value):
        raise _fail(field, "must be an RFC 3339 date-time (example: 2025-01-01T00:00:00Z)")


def _number(value: float, schema: Mapping[str, Any], field: str) -> None:
    if "minimum" in schema:
        low = schema["minimum"]
        if value < low or (schema.get("exclusiveMinimum") is True and value == low):
            raise _fail(field, f"must be at least {low}")
    if "maximum" in schema:
        high = schema["maximum"]
        if value > high or (schema.get("exclusiveMaximum") is True and value == high):
            raise _fail(field, f"must be at most {high}")


def _array(value: list[Any], schema: Mapping[str, Any], field: str) -> None:
    if "minItems" in schema and len(value) < schema["minItems"]:
        raise _fail(field, f"must have at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise _fail(field, f"must have at most {schema['maxItems']} items")
    items = schema.get("items")
    if items is not None:
        for index, item in enumerate(value):
            _check(item, items, f"{field}[{index}]")


def _object(value: dict[str, Any], schema: Mapping[str, Any], field: str) -> None:
    prefix = f"{field}." if field else ""
    for name in schema.get("required", ()):
        if name not in value:
            raise _fail(f"{prefix}{name}", "is required")
    properties: Mapping[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties")
    for name, item in value.items():
        if name in properties:
            _check(item, properties[name], f"{prefix}{name}")
        elif extra is False:
            raise _fail(f"{prefix}{name}", "is not an allowed property")
        elif isinstance(extra, dict):
            _check(item, extra, f"{prefix}{name}")


def _scalar(raw: str, schema: Mapping[str, Any], field: str) -> Any:
    """A query or path string as the JSON value the schema expects."""
    if "$ref" in schema:
        return _scalar(raw, SCHEMAS[schema["$ref"]], field)
    kind = schema.get("type")
    if kind == "integer":
        if not _INTEGER.match(raw):
            raise _fail(field, f"{raw!r} is not an integer")
        return int(raw)
    if kind == "number":
        if not _NUMBER.match(raw):
            raise _fail(field, f"{raw!r} is not a number")
        return float(raw)
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise _fail(field, f"{raw!r} is not a boolean (true or false)")
        return raw == "true"
    return raw


def check_params(
    rules: Mapping[str, Any], path: Mapping[str, str], query: Sequence[tuple[str, str]]
) -> None:
    """Validate the path and query parameters of a request against its operation's rules."""
    try:
        _check_params(rules, path, query)
    except _Invalid as invalid:
        raise _problem(invalid) from None


def _check_params(
    rules: Mapping[str, Any], path: Mapping[str, str], query: Sequence[tuple[str, str]]
) -> None:
    for param in rules["params"]:
        name, schema = param["name"], param["schema"]
        if param["in"] == "path":
            if name in path:
                _check(_scalar(path[name], schema, name), schema, name)
            continue
        if param["in"] != "query" or param["style"] == "deepObject":
            continue
        values = [v for k, v in query if k == name]
        if not values:
            if param["required"]:
                raise _fail(name, "query parameter is required")
            continue
        resolved = SCHEMAS.get(schema.get("$ref", ""), schema)
        if resolved.get("type") == "array":
            items = resolved.get("items", {})
            for value in values:
                _check(_scalar(value, items, name), items, name)
            _check(values, {k: v for k, v in resolved.items() if k != "items"}, name)
        else:
            _check(_scalar(values[-1], schema, name), schema, name)


def check_body(rules: Mapping[str, Any], content_type: str, body: Any) -> None:
    """Validate a parsed JSON body against the schema for its media type."""
    bodies: Mapping[str, Any] = rules["bodies"] or {}
    schema = bodies.get(content_type)
    if schema is None and len(bodies) == 1:
        schema = next(iter(bodies.values()))
    if schema is not None:
        # Only event batches are JSON arrays: name their items events[0], events[1], ...
        validate(body, schema, "events" if isinstance(body, list) else "")
