"""Validation of requests and responses against OpenMeter's own OpenAPI spec.

The spec lives outside this repository (``../shared/openmeter/openapi.yaml``, or wherever
``OPENMETER_OPENAPI_SPEC`` points). Outside CI a missing file skips the contract checks with a
clear reason; under CI (``CI=true``) a missing file fails them, so they can never silently stop.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "openmeter" / "openapi.yaml"
JSON_MEDIA_TYPES = (
    "application/problem+json",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
)


def spec_path() -> Path:
    """Where the spec is expected: ``OPENMETER_OPENAPI_SPEC`` or ``../shared`` beside the repo."""
    override = os.environ.get("OPENMETER_OPENAPI_SPEC")
    return Path(override) if override else DEFAULT_SPEC


def require_spec_file() -> Path:
    """Return the spec path, or skip (outside CI) / fail (under CI) when it is absent."""
    path = spec_path()
    if path.is_file():
        return path
    reason = (
        f"OpenMeter OpenAPI spec not found at {path}; set OPENMETER_OPENAPI_SPEC "
        "or place the shared/ folder beside the repository"
    )
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"contract checks cannot run under CI: {reason}")
    pytest.skip(reason)


@functools.cache
def _document(path: str) -> Any:
    import yaml

    with open(path, "rb") as handle:
        spec_dict = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    _explode_deep_objects(spec_dict)
    return spec_dict


def document() -> Any:
    """The spec as a plain dict (cached), for tests that inspect paths or schemas."""
    return _document(str(require_spec_file()))


@functools.cache
def _load(path: str) -> Any:
    from openapi_core import Config, OpenAPI

    spec_dict = _document(path)
    deserializers = dict.fromkeys(JSON_MEDIA_TYPES, _json_loads)
    return OpenAPI.from_dict(
        spec_dict,
        config=Config(extra_media_type_deserializers=deserializers, spec_validator_cls=None),
    )


def _explode_deep_objects(node: Any) -> None:
    """Mark ``deepObject`` parameters ``explode: true``, the only form OpenAPI defines for them.

    The spec leaves ``explode`` unset; openapi-core then refuses to read the parameter at all
    ("not available"), even when the request does not send it.
    """
    if isinstance(node, dict):
        if node.get("style") == "deepObject":
            node.setdefault("explode", True)
        for value in node.values():
            _explode_deep_objects(value)
    elif isinstance(node, list):
        for value in node:
            _explode_deep_objects(value)


def _json_loads(data: bytes | str, **_: Any) -> Any:
    return json.loads(data)


def openapi() -> Any:
    """The loaded spec (cached for the whole session)."""
    return _load(str(require_spec_file()))


class _Request:
    """The minimal request protocol openapi-core needs, built from an `httpx.Request`."""

    def __init__(self, request: httpx.Request) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict  # openapi-core dependency

        self.host_url = "https://127.0.0.1"
        # The raw (still percent-encoded) path, so a key containing "/" stays one segment.
        self.path = request.url.raw_path.split(b"?", 1)[0].decode("ascii")
        self.full_url_pattern = self.host_url + self.path
        self.method = request.method.lower()
        pairs = [(k, v) for k, v in request.url.params.multi_items()]
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(pairs),
            header=Headers(dict(request.headers)),
            cookie=ImmutableMultiDict(),
        )
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("content-type", "")


class _Response:
    def __init__(self, response: httpx.Response) -> None:
        from werkzeug.datastructures import Headers

        self.status_code = response.status_code
        self.data = response.content
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))


def validate_request(request: httpx.Request) -> None:
    """Raise if ``request`` does not match an operation of the spec (path, query, body)."""
    openapi().validate_request(_Request(request))


def validate_response(request: httpx.Request, response: httpx.Response) -> None:
    """Raise if ``response`` does not match the spec for ``request``'s operation."""
    openapi().validate_response(_Request(request), _Response(response))
