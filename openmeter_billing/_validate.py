"""Checks on values sent to OpenMeter: bad input fails with `InvalidInputError` before the network.

JSON has no NaN or infinity: the encoder would send ``null`` (usage silently lost) or the invalid
token ``Infinity``. OpenMeter reads numbers as 64-bit floats, so an int beyond that range cannot
mean what its writer meant. Each check names the field at fault and says what to pass instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, NoReturn
from uuid import UUID

from ._exceptions import InvalidInputError, safe_repr

__all__ = ["check_amount", "check_json_value"]

#: Leaf types the JSON encoder writes as strings (pydantic's JSON mode does the same).
_STRING_LIKE = (str, datetime, date, UUID)
#: Leaves that are always fine (bool before int: a bool is an int too).
_FINE_LEAVES = (bool, *_STRING_LIKE)


def check_amount(value: object, field: str, *, allow_zero: bool = False) -> float:
    """``value`` as a finite number above zero (or at least zero); a typed error otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise InvalidInputError(
            f"must be a number, got {type(value).__name__} {safe_repr(value)}",
            field=field,
            hint="pass an int or a float, for example 100",
        )
    number = _finite(value, field)
    if number < 0 or (number == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "positive"
        raise InvalidInputError(f"must be {bound}, got {number:g}", field=field)
    return number


def check_json_value(value: Any, field: str) -> None:
    """Refuse what JSON cannot carry faithfully: NaN, infinity, ints beyond a float's range,
    non-string keys and objects with no JSON form. ``field`` is the path reported on failure."""
    kind = type(value)
    if kind is str or value is None or kind is bool:  # the common leaves, without isinstance
        return
    if kind is dict or kind is list:  # plain containers: recurse without the ABC checks
        items = value.items() if kind is dict else enumerate(value)
        for key, item in items:
            if kind is dict and not isinstance(key, str):
                _bad_key(key, field)
            if type(item) is str or item is None:
                continue
            check_json_value(item, f"{field}.{key}" if kind is dict else f"{field}[{key}]")
        return
    if isinstance(value, _FINE_LEAVES):
        return
    if isinstance(value, (int, float, Decimal)):
        _finite(value, field)
    elif isinstance(value, Enum):
        check_json_value(value.value, field)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                _bad_key(key, field)
            check_json_value(item, f"{field}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json_value(item, f"{field}[{index}]")
    else:
        raise InvalidInputError(
            f"{type(value).__name__} has no JSON form",
            field=field,
            hint="send strings, numbers, booleans, None, lists and dicts (convert other objects)",
        )


def _bad_key(key: object, field: str) -> NoReturn:
    raise InvalidInputError(
        f"object keys must be strings, got {type(key).__name__} {safe_repr(key)}",
        field=field,
        hint="convert the key with str() before sending",
    )


def _finite(value: int | float | Decimal, field: str) -> float:
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        shown = "an int too large for a 64-bit float" if isinstance(value, int) else repr(value)
        raise InvalidInputError(
            f"must be a finite number, got {shown}",
            field=field,
            hint="JSON has no NaN or infinity; check the computation that produced it",
        )
    return number
