"""The contract checks themselves: they find the spec, and they can fail."""

from __future__ import annotations

import _spec
import httpx
import pytest
from openapi_core.validation.request.exceptions import RequestValidationError


def test_spec_is_found() -> None:
    path = _spec.require_spec_file()  # skips outside CI with a reason, fails under CI
    assert path.name == "openapi.yaml"


def test_a_valid_request_passes() -> None:
    _spec.require_spec_file()
    _spec.validate_request(
        httpx.Request("POST", "https://x/api/v1/customers", json={"name": "Acme", "key": "acme"})
    )


@pytest.mark.parametrize(
    "request_",
    [
        httpx.Request("POST", "https://x/api/v1/customers", json={"key": 1}),
        httpx.Request("GET", "https://x/api/v1/customers", params={"pageSize": "5000"}),
        httpx.Request(
            "POST",
            "https://x/api/v2/customers/c/entitlements/f/grants",
            json={
                "amount": 1,
                "effectiveAt": "2025-01-01T00:00:00Z",
                "expiration": {"duration": "FORTNIGHT", "count": 1},
            },
        ),
        httpx.Request(
            "POST",
            "https://x/api/v1/events",
            content=b'[{"id":"1","source":"s","specversion":"1.0","type":"t"}]',
            headers={"content-type": "application/cloudevents-batch+json"},
        ),
    ],
    ids=[
        "customer-key-not-string",
        "page-size-too-big",
        "bad-expiration-enum",
        "event-without-subject",
    ],
)
def test_an_invalid_request_is_caught(request_: httpx.Request) -> None:
    _spec.require_spec_file()
    with pytest.raises(RequestValidationError):
        _spec.validate_request(request_)


def test_unknown_path_is_caught() -> None:
    _spec.require_spec_file()
    from openapi_core.templating.paths.exceptions import PathNotFound

    with pytest.raises(PathNotFound):
        _spec.validate_request(httpx.Request("GET", "https://x/api/v1/customer/acme"))
