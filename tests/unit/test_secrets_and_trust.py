"""Secrets and trust: the plain-HTTP guard parses hosts, errors pickle without the key, and a
PostgreSQL ledger keeps its password out of repr, vars and pickles."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
import respx
from conftest import API_KEY, BASE_URL

from openmeter_billing import (
    APIConnectionError,
    APIStatusError,
    ConfigurationError,
    NotFoundError,
    OpenMeterBilling,
    RateLimitError,
)
from openmeter_billing.billing.ledger import PostgresLedger

pytest.importorskip("psycopg")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.evil.example",
        "http://127.0.0.1.nip.io",
        "http://localhost.evil.example",
        "http://[::ffff:8.8.8.8]",
        "http://1.1.1.1",
    ],
)
def test_plain_http_to_a_host_that_only_looks_local_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="plain HTTP"):
        OpenMeterBilling(api_key=API_KEY, base_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8888",
        "http://LOCALHOST",
        "http://127.0.0.1",
        "http://127.8.9.10:1",
        "http://[::1]:8888",
    ],
)
def test_plain_http_to_loopback_is_allowed(url: str) -> None:
    OpenMeterBilling(api_key=API_KEY, base_url=url)


def _round_trip(error: Exception) -> Any:
    data = pickle.dumps(error)
    assert API_KEY.encode() not in data
    assert b"Bearer" not in data
    return pickle.loads(data)


@pytest.mark.parametrize(
    ("status", "cls"), [(404, NotFoundError), (429, RateLimitError), (418, APIStatusError)]
)
async def test_status_errors_pickle_without_the_key(
    client: OpenMeterBilling, api: respx.MockRouter, status: int, cls: type[APIStatusError]
) -> None:
    body = {"type": "about:blank", "title": "Nope", "status": status, "detail": "gone"}
    api.get("/api/v1/meters/m").respond(status, json=body, headers={"Retry-After": "0"})
    with pytest.raises(cls) as caught:
        await client.with_options(max_retries=0).meters.get("m")
    assert caught.value.request.headers["authorization"] == f"Bearer {API_KEY}"
    again = _round_trip(caught.value)
    assert type(again) is cls
    assert str(again) == str(caught.value)
    assert again.status_code == status
    assert again.detail == "gone"
    assert again.body == body
    assert again.response.json() == body
    assert again.request.url == caught.value.request.url
    assert "authorization" not in again.request.headers
    assert "authorization" not in again.response.request.headers
    # The live error keeps its request intact: pickling must not strip the original.
    assert caught.value.request.headers["authorization"] == f"Bearer {API_KEY}"


async def test_connection_errors_pickle_without_the_key(api: respx.MockRouter) -> None:
    import httpx

    api.get("/api/v1/meters/m").mock(side_effect=httpx.ConnectError("refused"))
    async with OpenMeterBilling(api_key=API_KEY, base_url=BASE_URL, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.meters.get("m")
    again = _round_trip(caught.value)
    assert type(again) is APIConnectionError
    assert again.message == caught.value.message
    assert str(again.request.url) == f"{BASE_URL}/api/v1/meters/m"


DSN = "postgresql://billing:hunter2-very-secret@127.0.0.1:1/app"


def test_postgres_ledger_keeps_the_password_out_of_repr_vars_and_pickle() -> None:
    ledger = PostgresLedger(DSN)
    assert "hunter2" not in repr(ledger)
    assert "hunter2" not in repr(vars(ledger))
    assert all("hunter2" not in repr(value) for value in vars(ledger).values())
    with pytest.raises(TypeError, match="cannot be pickled") as caught:
        pickle.dumps(ledger)
    assert "hunter2" not in str(caught.value)
