"""Matching requests to handlers: OpenMeter's paths, methods, and its 404/405 answers.

Each ``_routes_*`` module registers handlers on a :class:`Router` with the spec's path template; the
emulator dispatches every request here. ``Router.templates()`` lists what is served, which the
contract tests compare with the OpenAPI spec.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from openmeter_billing.local._clock import Clock
from openmeter_billing.local.api.inputs import Query, parse_json
from openmeter_billing.local.api.problems import Problem, bad_request
from openmeter_billing.local.state.ids import IdFactory
from openmeter_billing.local.state.store import State

__all__ = ["Context", "Handler", "Reply", "Router"]

_UNPARSED: Any = object()


@dataclass
class Context:
    """What a handler sees: the state, time, ids, and the parsed request."""

    state: State
    clock: Clock
    ids: IdFactory
    params: dict[str, str]
    query: Query
    body: bytes
    headers: dict[str, str]
    parsed: Any = field(default=_UNPARSED)
    """The body as JSON when validation already parsed it."""

    def json_object(self) -> dict[str, Any]:
        value = self.json()
        if not isinstance(value, dict):
            raise bad_request("request body must be a JSON object", field="body")
        return value

    def json(self) -> Any:
        if self.parsed is _UNPARSED:
            self.parsed = parse_json(self.body)
        return self.parsed

    def new_id(self) -> str:
        return self.ids.new(self.clock.now())


@dataclass
class Reply:
    """A handler's answer; ``body=None`` means no content."""

    status: int
    body: Any = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Context], Reply]


@dataclass(frozen=True)
class _Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{regex}$")


class Router:
    """A list of (method, path template, handler) with OpenMeter's error answers."""

    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(method, template, _compile(template), handler))
            return handler

        return register

    def templates(self) -> list[tuple[str, str]]:
        """Every (method, path template) served, for the contract test against the spec."""
        return [(r.method, r.template) for r in self._routes]

    def template_of(self, method: str, path: str) -> str | None:
        """The template of the route serving ``method path``, or None when none does."""
        for route in self._routes:
            if route.method == method and route.pattern.match(path):
                return route.template
        return None

    def resolve(self, method: str, path: str) -> tuple[Handler, str, dict[str, str]]:
        """The handler, its template and decoded path params; 404 for an unknown path, 405 (with
        ``Allow``) for a method the path does not serve."""
        allowed: list[str] = []
        for route in self._routes:
            match = route.pattern.match(path)
            if match is None:
                continue
            if route.method == method:
                params = {k: unquote(v) for k, v in match.groupdict().items()}
                return route.handler, route.template, params
            allowed.append(route.method)
        if allowed:
            raise Problem(
                405,
                f"method {method} is not allowed on {path}; allowed: {', '.join(sorted(allowed))}",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        raise Problem(404, f"no route for {method} {path}")
