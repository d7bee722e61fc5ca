"""Reading request bodies and query strings the way OpenMeter validates them.

Every reader raises a 400 :class:`~._problems.Problem` whose detail names the field, the bad value
and what is expected, so a test failing on Local OpenMeter explains itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from openmeter_billing.local.api.problems import bad_request

__all__ = [
    "KEY_PATTERN",
    "ULID",
    "Fields",
    "Query",
    "parse_datetime",
    "parse_json_object",
    "parse_time_zone",
]

KEY_PATTERN = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")
_MISSING: Any = object()


def parse_datetime(value: object, field: str) -> datetime:
    """An RFC 3339 date-time with an offset, returned in UTC."""
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None and "T" in value.upper():
            return parsed.astimezone(timezone.utc)
    raise bad_request(
        f"{field}: {value!r} is not an RFC 3339 date-time (example: 2025-01-01T00:00:00Z)",
        field=field,
    )


def parse_time_zone(name: str | None) -> tzinfo:
    """An IANA time zone for ``windowTimeZone`` (UTC when omitted).

    UTC needs no time zone database; other zones come from the system's or the ``tzdata``
    package.
    """
    if not name or name.upper() in ("UTC", "ETC/UTC", "Z"):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_request(
            f"windowTimeZone: unknown time zone {name!r} (example: Europe/Budapest; on a machine "
            "without a time zone database, pip install tzdata)",
            field="windowTimeZone",
        ) from None


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object (400 when it is not one)."""
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise bad_request("request body must be a JSON object")
    return value


MAX_JSON_DEPTH = 512
"""Deepest nesting accepted in a JSON body (OpenMeter's Go decoder allows 10,000; Python's
recursive one gives out near 1,000, and deeper documents are never real requests)."""


def _refuse_constant(name: str) -> Any:
    # Python reads NaN, Infinity and -Infinity; JSON (and Go's decoder) does not.
    raise ValueError(f"invalid literal {name} (JSON has no NaN or Infinity)")


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth + 1) for child in node)
    return False


def parse_json(raw: bytes) -> Any:
    """The request body as JSON (400 when it is empty, malformed, NaN-bearing or too deep)."""
    if not raw:
        raise bad_request("request body is empty; send a JSON document", field="body")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body is not valid JSON: {exc}", field="body") from None
    except RecursionError:
        value = None
    else:
        # Counting brackets is cheap; walking the document only when it could be too deep.
        if raw.count(b"[") + raw.count(b"{") <= MAX_JSON_DEPTH:
            return value
        if not _depth_exceeds(value, MAX_JSON_DEPTH):
            return value
    raise bad_request(
        f"request body is nested deeper than {MAX_JSON_DEPTH} levels", field="body"
    ) from None


class Fields:
    """Typed reads of one JSON object, with error paths like ``usagePeriod.interval``."""

    def __init__(self, data: Mapping[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def path(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _fail(self, name: str, message: str) -> Exception:
        return bad_request(f"{self.path(name)}: {message}", field=self.path(name))

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        min_len: int = 0,
        max_len: int | None = None,
        pattern: re.Pattern[str] | None = None,
    ) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self._fail(name, "is required")
            return None
        if not isinstance(value, str):
            raise self._fail(name, f"{value!r} is not a string")
        if len(value) < min_len:
            raise self._fail(name, f"{value!r} is shorter than {min_len} characters")
        if max_len is not None and len(value) > max_len:
            raise self._fail(name, f"is longer than {max_len} characters")
        if pattern is not None and not pattern.match(value):
            raise self._fail(name, f"{value!r} does not match {pattern.pattern}")
        return value

    def required_string(self, name: str, **kwargs: Any) -> str:
        value = self.string(name, required=True, **kwargs)
        assert value is not None
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._fail(name, f"{value!r} is not a boolean")
        return value

    def number(self, name: str, *, minimum: float | None = None) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(name, f"{value!r} is not a number")
        if minimum is not None and value < minimum:
            raise self._fail(name, f"{value!r} is below the minimum {minimum:g}")
        return float(value)

    def integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(name, f"{value!r} is not an integer")
        if not minimum <= value <= maximum:
            raise self._fail(name, f"{value} is outside {minimum}..{maximum}")
        return value

    def datetime(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self._fail(name, "is required")
            return None
        return parse_datetime(value, self.path(name))

    def string_map(self, name: str) -> dict[str, str] | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self._fail(name, "must be an object of string values")
        return dict(value)

    def obj(self, name: str, *, required: bool = False) -> Fields | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self._fail(name, "is required")
            return None
        if not isinstance(value, dict):
            raise self._fail(name, f"{value!r} is not an object")
        return Fields(value, f"{self.path(name)}.")

    def enum(self, name: str, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and value not in allowed:
            raise self._fail(name, f"{value!r} is not one of {', '.join(allowed)}")
        return value


class Query:
    """Query-string parameters (repeated keys are lists, as OpenMeter's form style sends them)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[-1] if values else None

    def list(self, name: str) -> list[str]:
        return list(self._values.get(name, []))

    def prefixed(self, prefix: str) -> dict[str, str]:
        """deepObject parameters: ``filterGroupBy[model]=gpt`` -> ``{"model": "gpt"}``."""
        found = {}
        for key, values in self._values.items():
            if key.startswith(prefix + "[") and key.endswith("]") and values:
                found[key[len(prefix) + 1 : -1]] = values[-1]
        return found

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.get(name)
        if value is None:
            return default
        if value.lower() in ("true", "1"):
            return True
        if value.lower() in ("false", "0"):
            return False
        raise bad_request(f"{name}: {value!r} is not a boolean (true or false)", field=name)

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise bad_request(f"{name}: {value!r} is not an integer", field=name) from None
        if not minimum <= number <= maximum:
            raise bad_request(f"{name}: {number} is outside {minimum}..{maximum}", field=name)
        return number

    def descending(self) -> bool:
        """``order=DESC`` (lists default to ascending)."""
        return self.enum("order", ("ASC", "DESC")) == "DESC"

    def datetime(self, name: str) -> datetime | None:
        value = self.get(name)
        return None if value is None else parse_datetime(value, name)

    def enum(self, name: str, allowed: tuple[str, ...]) -> str | None:
        value = self.get(name)
        if value is not None and value not in allowed:
            raise bad_request(f"{name}: {value!r} is not one of {', '.join(allowed)}", field=name)
        return value
