"""Local OpenMeter refuses what OpenMeter's request validation refuses, naming the field.

The rules the emulator enforces are its own copy (``openmeter_billing/local/api/request_rules.py``);
these tests check the copy matches OpenMeter's spec and then walk the spec's constraints for every
emulated operation, generating requests that break exactly one constraint each: every one must be
a 400 ``application/problem+json`` whose ``validationErrors`` name the parameter or body field.
Without the spec they skip (fail under CI), as every contract test does.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import _spec
import httpx
import pytest

from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local.api import request_rules as committed

from ._spec_rules import extract

ULID = "01JAAAAAAAAAAAAAAAAAAAAAAA"
PATH_VALUES = {
    "customerIdOrKey": "acme",
    "featureId": ULID,
    "grantId": ULID,
    "meterIdOrSlug": "tokens",
    "entitlementIdOrFeatureKey": "tokens",
    "featureKey": "tokens",
    "entitlementId": ULID,
}
EVENT = {"id": "e1", "source": "s", "specversion": "1.0", "type": "tokens", "subject": "acme"}
# One valid body per operation taking JSON; negative cases break one field of it at a time.
BASE_BODIES: dict[str, Any] = {
    "POST /api/v1/customers": {
        "name": "Acme", "key": "acme", "usageAttribution": {"subjectKeys": ["acme"]},
        "billingAddress": {"country": "US", "city": "Springfield"},
    },
    "PUT /api/v1/customers/{customerIdOrKey}": {"name": "Acme", "key": "acme"},
    "POST /api/v1/events": EVENT,
    "POST /api/v1/features": {"key": "tokens", "name": "Tokens", "meterSlug": "tokens"},
    "POST /api/v1/meters": {"slug": "tokens", "eventType": "tokens", "aggregation": "COUNT"},
    "PUT /api/v1/meters/{meterIdOrSlug}": {"name": "Tokens"},
    "POST /api/v1/meters/{meterIdOrSlug}/query": {"windowSize": "DAY"},
    "POST /api/v1/portal/tokens": {"subject": "acme"},
    "POST /api/v1/portal/tokens/invalidate": {"subject": "acme"},
    "POST /api/v2/customers/{customerIdOrKey}/entitlements": {
        "type": "metered", "featureKey": "tokens", "usagePeriod": {"interval": "MONTH"},
        "issue": {"amount": 1, "priority": 1},
    },
    "POST /api/v2/customers/{customerIdOrKey}/entitlements/{entitlementIdOrFeatureKey}/grants": {
        "amount": 10, "effectiveAt": "2025-01-15T10:00:00Z", "priority": 1,
        "recurrence": {"interval": "DAY"}, "expiration": {"duration": "DAY", "count": 1},
    },
    "POST /api/v2/customers/{customerIdOrKey}/entitlements/{entitlementIdOrFeatureKey}/reset": {
        "effectiveAt": "2025-01-15T10:00:00Z",
    },
    "PUT /api/v2/customers/{customerIdOrKey}/entitlements/{entitlementIdOrFeatureKey}/override": {
        "type": "boolean", "featureKey": "tokens", "usagePeriod": {"interval": "MONTH"},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def rules() -> tuple[dict[str, Any], dict[str, Any]]:
    return extract(_spec.document(), LocalOpenMeter.routes())


def test_the_emulators_rules_match_the_spec(rules: tuple[dict[str, Any], dict[str, Any]]) -> None:
    operations, schemas = rules
    assert operations == committed.OPERATIONS, "regenerate: python tests/local/_spec_rules.py"
    assert schemas == committed.SCHEMAS, "regenerate: python tests/local/_spec_rules.py"
    assert set(BASE_BODIES) == {k for k, v in operations.items() if v["bodies"]}


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema or ("allOf" in schema and len(schema["allOf"]) == 1):
        schema = schemas[schema["$ref"]] if "$ref" in schema else schema["allOf"][0]
    return schema


def _bad_scalars(schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(what, value) pairs that break one constraint of a scalar schema."""
    kind = schema.get("type")
    if kind == "integer":
        yield "not an integer", "1.5x"
        if "minimum" in schema:
            yield "below minimum", schema["minimum"] - 1
        if "maximum" in schema:
            yield "above maximum", schema["maximum"] + 1
    if kind == "number":
        yield "not a number", "many"
        if "minimum" in schema:
            yield "below minimum", schema["minimum"] - 1
    if kind == "boolean":
        yield "not a boolean", "maybe"
    if "enum" in schema:
        yield "outside the enum", "NOT_IN_ENUM"
    if kind == "string":
        if schema.get("minLength", 0) >= 1:
            yield "too short", ""
        if "maxLength" in schema:
            yield "too long", "a" * (schema["maxLength"] + 1)
        if "pattern" in schema and not re.search(schema["pattern"], "Not Valid!"):
            yield "pattern", "Not Valid!"
        if schema.get("format") == "date-time":
            yield "not a date-time", "yesterday"


def _param_cases(
    operations: dict[str, Any], schemas: dict[str, Any]
) -> Iterator[tuple[str, str, str, str]]:
    for key, op in operations.items():
        for param in op["params"]:
            if param["style"] == "deepObject" or param["in"] not in ("query", "path"):
                continue
            schema = _resolve(param["schema"], schemas)
            if schema.get("type") == "array":
                if "maxItems" in schema:
                    yield key, param["name"], "too many items", "__many__"
                schema = _resolve(schema.get("items", {}), schemas)
            for what, value in _bad_scalars(schema):
                if param["in"] == "path" and value == "":
                    continue  # an empty segment is another route
                yield (
                    key,
                    param["name"],
                    what,
                    json.dumps(value) if not isinstance(value, str) else value,
                )


def _url(key: str, op: dict[str, Any], name: str, value: str, schemas: dict[str, Any]) -> str:
    path = key.split(" ", 1)[1]
    for param in op["params"]:
        if param["in"] == "path":
            raw = value if param["name"] == name else PATH_VALUES[param["name"]]
            path = path.replace("{" + param["name"] + "}", quote(raw, safe=""))
    if any(p["in"] == "path" and p["name"] == name for p in op["params"]):
        return path
    param = next(p for p in op["params"] if p["name"] == name)
    if value == "__many__":
        limit = _resolve(param["schema"], schemas)["maxItems"]
        return path + "?" + "&".join(f"{name}={ULID}" for _ in range(limit + 1))
    return f"{path}?{name}={quote(value, safe='')}"


def _assert_names(response: httpx.Response, field: str, case: str) -> None:
    assert response.status_code == 400, f"{case}: {response.status_code} {response.text}"
    assert response.headers["content-type"] == "application/problem+json"
    names = [issue.get("field") for issue in response.json()["extensions"]["validationErrors"]]
    assert field in names, f"{case}: {response.json()}"


def test_every_constrained_parameter_is_enforced(
    rules: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    operations, schemas = rules
    cases = list(_param_cases(operations, schemas))
    assert len(cases) > 100
    local = LocalOpenMeter()
    with httpx.Client(transport=local, base_url=local.base_url) as http:
        for key, name, what, value in cases:
            method = key.split(" ", 1)[0]
            body = BASE_BODIES.get(key)
            headers = {"content-type": "application/cloudevents+json"} if "events" in key else {}
            url = _url(key, operations[key], name, value, schemas)
            response = http.request(method, url, json=body, headers=headers)
            _assert_names(response, name, f"{key} {name} {what}")


def _body_cases(
    schema: dict[str, Any], schemas: dict[str, Any], base: dict[str, Any], prefix: str = ""
) -> Iterator[tuple[str, str, Any]]:
    """(field path, what, broken body) for each property constraint of an object schema."""
    schema = _resolve(schema, schemas)
    if "discriminator" in schema:
        schema = schemas[schema["discriminator"]["mapping"][base["type"]]]
    for name in schema.get("required", ()):
        broken = {k: v for k, v in base.items() if k != name}
        yield prefix + name, "missing", broken
    for name, prop in schema.get("properties", {}).items():
        resolved = _resolve(prop, schemas)
        if name == "type" and "discriminator" in schema:
            continue
        kind = resolved.get("type")
        if kind in ("string", "integer", "number", "boolean"):
            wrong = {"string": 12, "integer": "one", "number": "one", "boolean": "yes"}[kind]
            yield prefix + name, "wrong type", {**base, name: wrong}
            for what, value in _bad_scalars(resolved):
                if not isinstance(value, str) or kind == "string":
                    yield prefix + name, what, {**base, name: value}
        elif kind == "object" and "properties" in resolved and not prefix:
            yield prefix + name, "wrong type", {**base, name: "not an object"}
            if name not in base:
                continue  # nested constraints are walked where the base body has the object
            inner = copy.deepcopy(base[name])
            for field, what, broken in _body_cases(resolved, schemas, inner, f"{name}."):
                if isinstance(broken, dict):
                    yield field, what, {**base, name: broken}
        elif kind == "array":
            yield prefix + name, "wrong type", {**base, name: "not an array"}


@pytest.mark.parametrize("key", sorted(BASE_BODIES))
def test_every_body_constraint_is_enforced(
    key: str, rules: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    operations, schemas = rules
    op = operations[key]
    media = next(iter(op["bodies"]))
    schema = op["bodies"][media]
    if "anyOf" in _resolve(schema, schemas):  # the ingest body: a single event or a batch
        schema = {"$ref": "Event"}
    cases = list(_body_cases(schema, schemas, BASE_BODIES[key]))
    assert cases, key
    method, path = key.split(" ", 1)
    for name, value in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value)
    local = LocalOpenMeter()
    with httpx.Client(transport=local, base_url=local.base_url) as http:
        for field, what, body in cases:
            response = http.request(method, path, json=body, headers={"content-type": media})
            _assert_names(response, field, f"{key} {field} {what}")


def test_a_missing_required_body_is_refused() -> None:
    local = LocalOpenMeter()
    with httpx.Client(transport=local, base_url=local.base_url) as http:
        response = http.post("/api/v1/portal/tokens/invalidate")
    _assert_names(response, "body", "invalidate without a body")


def test_a_customer_with_a_malformed_address_is_not_stored() -> None:
    local = LocalOpenMeter()
    body = {"name": "Acme", "key": "acme", "billingAddress": {"phoneNumber": {"n": 1}}}
    with httpx.Client(transport=local, base_url=local.base_url) as http:
        response = http.post("/api/v1/customers", json=body)
        _assert_names(response, "billingAddress.phoneNumber", "phone number object")
        assert http.get("/api/v1/customers").json()["items"] == []


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/v1/meters?pageSize=1001", "pageSize"),
        ("/api/v2/entitlements?offset=-1", "offset"),
        ("/api/v2/grants?offset=-1", "offset"),
        ("/api/v1/features?limit=", "limit"),
        ("/api/v1/events?clientId=" + "c" * 37, "clientId"),
    ],
)
def test_the_issues_examples_are_refused(url: str, field: str) -> None:
    local = LocalOpenMeter()
    with httpx.Client(transport=local, base_url=local.base_url) as http:
        _assert_names(http.get(url), field, url)
