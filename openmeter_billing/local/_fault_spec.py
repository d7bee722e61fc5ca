"""``openmeter-billing local --faults SPEC``: fault rules written on a command line.

A spec is ``KIND[:key=value,key=value...]``; KIND is ``fail``, ``outage``, ``delay``, ``drop`` or
``ratelimit``. ``route=`` takes ``*``, ``ingest``, ``values``, a served template
(``GET /api/v1/meters``) or a glob; several routes are separated by ``|``. ``for=`` is a request
count (``3``) or a duration (``30s``, ``5m``, ``1h``). Examples::

    fail:route=ingest,share=0.1,status=503,retry_after=2
    outage:route=values,for=30s
    delay:seconds=5,share=0.2
    drop:route=ingest,when=after,share=0.05
    ratelimit:per_second=10
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from openmeter_billing._exceptions import InvalidInputError
from openmeter_billing.local.faults import INGEST, VALUE_READS, FaultRule, Faults

__all__ = ["add_fault_spec"]

_ALIASES: dict[str, tuple[str, ...]] = {"ingest": (INGEST,), "values": VALUE_READS}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_KEYS: dict[str, frozenset[str]] = {
    "fail": frozenset({"route", "status", "share", "retry_after", "after", "for"}),
    "outage": frozenset({"route", "status", "retry_after", "for"}),
    "delay": frozenset({"route", "seconds", "share", "after", "for"}),
    "drop": frozenset({"route", "when", "share", "after", "for"}),
    "ratelimit": frozenset({"route", "per_second"}),
}


def _bad(spec: str, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"invalid fault spec {spec!r}: {why}",
        field="faults",
        hint="e.g. fail:route=ingest,share=0.1,status=503 (see docs/local.md)",
    )


def _routes(value: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in value.split("|"):
        out.extend(_ALIASES.get(part.strip(), (part.strip(),)))
    return tuple(out)


def _window(spec: str, value: str) -> int | timedelta:
    if value.isdigit():
        return int(value)
    match = _DURATION.match(value)
    if match is None:
        raise _bad(spec, f"for={value} is neither a count nor a duration like 30s")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def _options(spec: str, kind: str, text: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in _KEYS[kind]:
            raise _bad(spec, f"{item!r} is not one of {', '.join(sorted(_KEYS[kind]))} for {kind}")
        try:
            options.update(_convert(spec, key, value.strip()))
        except ValueError:
            raise _bad(spec, f"{key}={value} is not a number") from None
    return options


def _convert(spec: str, key: str, value: str) -> dict[str, Any]:
    converters: dict[str, Callable[[str], Any]] = {
        "route": _routes,
        "status": int,
        "after": int,
        "per_second": int,
        "share": float,
        "retry_after": float,
        "seconds": float,
        "when": str,
    }
    if key == "for":
        return {"for_": _window(spec, value)}
    return {key: converters[key](value)}


def add_fault_spec(faults: Faults, spec: str) -> FaultRule:
    """Parse one ``--faults`` spec and add its rule to ``faults``."""
    kind, _, rest = spec.strip().partition(":")
    if kind not in _KEYS:
        raise _bad(spec, f"unknown kind {kind!r}; use one of {', '.join(_KEYS)}")
    options = _options(spec, kind, rest)
    route = options.pop("route", VALUE_READS if kind == "ratelimit" else "*")
    if kind == "delay" and "seconds" not in options:
        raise _bad(spec, "delay needs seconds=")
    adders: dict[str, Callable[..., FaultRule]] = {
        "fail": faults.fail,
        "outage": faults.outage,
        "delay": faults.delay,
        "drop": faults.drop,
        "ratelimit": faults.rate_limit,
    }
    return adders[kind](route, **options)
