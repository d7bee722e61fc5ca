"""Checking Local OpenMeter's exchanges against OpenMeter's spec, with its quirks made explicit.

The real server departs from its own spec in a few places that clients must tolerate, and Local
OpenMeter reproduces them on purpose. Each departure is normalised here, by name, before the
response is validated; anything else that does not match the spec fails the test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import _spec
import httpx

_VALUE_V2 = re.compile(r"^/api/v2/customers/[^/]+/entitlements/[^/]+/value$")
_ACCESS = re.compile(r"^/api/v1/customers/[^/]+/access$")
_GRANTS = re.compile(r"^/api/v2/(customers/[^/]+/entitlements/[^/]+/)?grants$")


def _has_access_omitted_when_false(path: str, body: Any) -> Any:
    """Quirk 1 and 4: v2 value and customer access drop ``hasAccess`` when it is false."""
    if _VALUE_V2.match(path) and isinstance(body, dict):
        assert body.get("hasAccess") is not False, "false hasAccess must be omitted"
        body.setdefault("hasAccess", False)
    if _ACCESS.match(path) and isinstance(body, dict):
        for value in body.get("entitlements", {}).values():
            assert value.get("hasAccess") is not False, "false hasAccess must be omitted"
            value.setdefault("hasAccess", False)
    return body


def _grant_priority_zero(path: str, body: Any) -> Any:
    """Quirk 5: a grant created without a priority reports priority 0 (the spec's minimum is 1)."""
    if not _GRANTS.match(path) or not isinstance(body, dict):
        return body
    grants = body.get("items", [body]) if "items" in body else [body]
    for grant in grants:
        if grant.get("priority") == 0:
            grant["priority"] = 1
    return body


QUIRKS: list[Callable[[str, Any], Any]] = [_has_access_omitted_when_false, _grant_priority_zero]


def _normalised(request: httpx.Request, response: httpx.Response) -> httpx.Response:
    if not response.content or "json" not in response.headers.get("content-type", ""):
        return response
    path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
    body = json.loads(response.content)
    for quirk in QUIRKS:
        body = quirk(path, body)
    return httpx.Response(
        response.status_code,
        headers={"content-type": response.headers["content-type"]},
        content=json.dumps(body).encode(),
        request=request,
    )


def check_exchange(request: httpx.Request, response: httpx.Response) -> None:
    """Raise when the response (or an accepted request) does not match the spec."""
    if response.status_code == 404 and b"no route for" in response.content:
        return  # unknown routes are not operations of the spec
    if response.status_code == 405:
        return
    if 200 <= response.status_code < 300:
        _spec.validate_request(request)
    _spec.validate_response(request, _normalised(request, response))
