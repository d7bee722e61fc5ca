"""The HTTP core: headers, retries, backoff, timeouts, error mapping, secrets."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx
from conftest import API_KEY, BASE_URL

from openmeter_billing import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OpenMeterBilling,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitError,
    UnprocessableEntityError,
    __version__,
)
from openmeter_billing._http import parse_retry_after

VALUE_PATH = "/api/v2/customers/acme/entitlements/ai_tokens/value"
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str | None = None, **extra: object) -> httpx.Response:
    body: dict[str, object] = {"type": "about:blank", "title": title, "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return httpx.Response(status, json=body, headers={"content-type": PROBLEM})


async def test_sends_bearer_token_user_agent_and_accept(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.get(VALUE_PATH).respond(200, json={"hasAccess": True})
    await client.entitlements.value("acme", "ai_tokens")
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["user-agent"] == f"openmeter-billing/{__version__}"
    assert "application/json" in request.headers["accept"]


async def test_no_authorization_header_without_a_key(api: respx.MockRouter) -> None:
    route = api.get(VALUE_PATH).respond(200, json={})
    async with OpenMeterBilling(base_url=BASE_URL) as client:
        await client.entitlements.value("acme", "ai_tokens")
    assert "authorization" not in route.calls.last.request.headers


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (412, PreconditionFailedError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (503, InternalServerError),
        (418, APIStatusError),
    ],
)
async def test_status_maps_to_error_class(
    api: respx.MockRouter, client: OpenMeterBilling, status: int, error: type[APIStatusError]
) -> None:
    api.get(VALUE_PATH).mock(return_value=problem(status, "Oops", "it broke"))
    with pytest.raises(error) as caught:
        await client.with_options(max_retries=0).entitlements.value("acme", "ai_tokens")
    assert type(caught.value) is error
    assert caught.value.status_code == status
    assert caught.value.detail == "it broke"
    assert caught.value.response.status_code == status
    assert "it broke" in str(caught.value)


async def test_problem_with_all_fields_is_parsed(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.post("/api/v2/customers/acme/entitlements").mock(
        return_value=problem(
            409,
            "Conflict",
            "entitlement already exists",
            instance="urn:request:req-123",
            extensions={"conflictingEntityId": "01J0000000000000000000000A"},
        )
    )
    with pytest.raises(ConflictError) as caught:
        await client.entitlements.create("acme", {"type": "boolean", "featureKey": "api_access"})
    error = caught.value
    assert error.conflicting_entity_id == "01J0000000000000000000000A"
    assert error.request_id == "req-123"
    assert error.title == "Conflict"
    assert error.problem.type == "about:blank"


async def test_problem_with_validation_errors_lists_them(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.post("/api/v1/customers").mock(
        return_value=problem(
            400,
            "Bad Request",
            "validation error",
            extensions={
                "validationErrors": [
                    {"field": "currency", "message": "invalid currency", "code": "invalid"},
                    "bare string issue",
                ]
            },
        )
    )
    with pytest.raises(BadRequestError) as caught:
        await client.customers.create(name="Acme", key="acme")
    issues = caught.value.validation_errors
    assert [(i.field, i.message, i.code) for i in issues] == [
        ("currency", "invalid currency", "invalid"),
        (None, "bare string issue", None),
    ]
    assert "currency: invalid currency" in str(caught.value)


async def test_problem_without_optional_fields_or_body(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get(VALUE_PATH).mock(return_value=httpx.Response(500))
    with pytest.raises(InternalServerError) as caught:
        await client.with_options(max_retries=0).entitlements.value("acme", "ai_tokens")
    assert caught.value.detail is None
    assert caught.value.problem.title is None
    assert str(caught.value).startswith("500 Internal Server Error")


async def test_non_json_error_body_becomes_detail(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get(VALUE_PATH).mock(return_value=httpx.Response(502, text="upstream gone"))
    with pytest.raises(InternalServerError) as caught:
        await client.with_options(max_retries=0).entitlements.value("acme", "ai_tokens")
    assert caught.value.detail == "upstream gone"


async def test_get_retries_5xx_with_exponential_backoff(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    route = api.get(VALUE_PATH).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(502),
            httpx.Response(200, json={"hasAccess": True}),
        ]
    )
    value = await client.entitlements.value("acme", "ai_tokens")
    assert value.has_access is True
    assert route.call_count == 3
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5  # 0.5 s with up to 25 % jitter
    assert 0.75 <= sleeps[1] <= 1.0


async def test_retries_stop_after_max_retries(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    route = api.get(VALUE_PATH).mock(return_value=httpx.Response(500))
    with pytest.raises(InternalServerError):
        await client.with_options(max_retries=3).entitlements.value("acme", "ai_tokens")
    assert route.call_count == 4
    assert len(sleeps) == 3


async def test_retry_after_header_is_honoured(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    api.get(VALUE_PATH).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json={"hasAccess": False}),
        ]
    )
    await client.entitlements.value("acme", "ai_tokens")
    assert sleeps == [7.0]


def test_retry_after_parsing() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert parse_retry_after(httpx.Headers({"retry-after": "3"})) == 3.0
    assert parse_retry_after(httpx.Headers({"retry-after": "3600"})) is None  # beyond 60 s: backoff
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None
    date = parse_retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert date is None  # in the past


async def test_post_is_not_retried_on_5xx(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    route = api.post("/api/v1/customers").mock(return_value=httpx.Response(503))
    with pytest.raises(InternalServerError):
        await client.customers.create(name="Acme", key="acme")
    assert route.call_count == 1
    assert sleeps == []


async def test_conflict_is_never_retried(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    route = api.put("/api/v1/customers/acme").mock(
        return_value=problem(409, "Conflict", "key taken")
    )
    with pytest.raises(ConflictError):
        await client.customers.update("acme", name="Acme")
    assert route.call_count == 1


async def test_rate_limited_post_is_retried(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    route = api.post("/api/v1/customers").mock(
        side_effect=[httpx.Response(429), httpx.Response(201, json=_customer_json())]
    )
    await client.customers.create(name="Acme", key="acme")
    assert route.call_count == 2


async def test_event_ingest_post_is_retried_with_the_same_event_id(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    route = api.post("/api/v1/events").mock(side_effect=[httpx.Response(500), httpx.Response(204)])
    await client.events.ingest(type="ai-tokens", customer="acme", data={"tokens": 1})
    assert route.call_count == 2
    first, second = (call.request.content for call in route.calls)
    assert first == second


async def test_connection_errors_are_retried_then_raised(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    route = api.get(VALUE_PATH).mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(APIConnectionError) as caught:
        await client.entitlements.value("acme", "ai_tokens")
    assert route.call_count == 3
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_read_timeout_on_post_is_not_retried(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    route = api.post("/api/v1/customers").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(APITimeoutError):
        await client.customers.create(name="Acme", key="acme")
    assert route.call_count == 1


async def test_connect_error_on_post_is_retried_because_nothing_was_sent(
    api: respx.MockRouter, client: OpenMeterBilling, sleeps: list[float]
) -> None:
    route = api.post("/api/v1/customers").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(201, json=_customer_json())]
    )
    await client.customers.create(name="Acme", key="acme")
    assert route.call_count == 2


async def test_per_call_timeout_reaches_httpx(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.get(VALUE_PATH).respond(200, json={})
    await client.with_options(timeout=1.5).entitlements.value("acme", "ai_tokens")
    timeout = route.calls.last.request.extensions["timeout"]
    assert timeout["read"] == 1.5
    await client.entitlements.value("acme", "ai_tokens")
    assert route.calls.last.request.extensions["timeout"]["connect"] == 5.0


async def test_path_parameters_are_percent_encoded(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.get(url__regex=r".*/api/v1/customers/.*").respond(200, json=_customer_json())
    await client.customers.get("team/a b?c")
    assert route.calls.last.request.url.raw_path == b"/api/v1/customers/team%2Fa%20b%3Fc"


def test_api_key_never_sent_over_plain_http_to_remote_host() -> None:
    with pytest.raises(ConfigurationError, match="plain HTTP"):
        OpenMeterBilling(api_key=API_KEY, base_url="http://openmeter.example.com")
    OpenMeterBilling(api_key=API_KEY, base_url="http://127.0.0.1:8888")  # loopback is fine
    OpenMeterBilling(api_key=API_KEY, base_url="http://om.internal", allow_insecure_http=True)
    OpenMeterBilling(base_url="http://openmeter.example.com")  # no key, nothing to leak


def test_cloud_without_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENMETER_TOKEN", raising=False)
    monkeypatch.delenv("OPENMETER_ENDPOINT", raising=False)
    with pytest.raises(ConfigurationError, match="OPENMETER_TOKEN"):
        OpenMeterBilling()


def test_environment_fallbacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENMETER_TOKEN", "env-token")
    monkeypatch.setenv("OPENMETER_ENDPOINT", "https://om.example.com")
    client = OpenMeterBilling()
    assert str(client.base_url) == "https://om.example.com"
    assert client._http.options.api_key is not None
    assert client._http.options.api_key.reveal() == "env-token"
    explicit = OpenMeterBilling(api_key="kw", base_url="https://kw.example.com")
    assert str(explicit.base_url) == "https://kw.example.com"


def test_contradictory_arguments_fail_fast() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        OpenMeterBilling(
            base_url=BASE_URL,
            http_client=httpx.AsyncClient(),
            transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        )
    with pytest.raises(ConfigurationError, match="max_retries"):
        OpenMeterBilling(base_url=BASE_URL, max_retries=-1)
    with pytest.raises(ConfigurationError, match="Authorization"):
        OpenMeterBilling(base_url=BASE_URL, default_headers={"Authorization": "x"})


async def test_secret_absent_from_repr_logs_and_errors(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    api.get(VALUE_PATH).mock(
        side_effect=[httpx.Response(503), problem(401, "Unauthorized", "bad token")]
    )
    caplog.set_level(logging.DEBUG, logger="openmeter_billing")
    client = OpenMeterBilling(api_key=API_KEY, base_url=BASE_URL)
    with pytest.raises(AuthenticationError) as caught:
        await client.entitlements.value("acme", "ai_tokens")
    await client.aclose()
    texts = [
        repr(client),
        repr(client._http),
        repr(client._http.options),
        str(caught.value),
        repr(caught.value),
        caplog.text,
        repr(caught.value.request),
    ]
    assert caplog.text  # something was logged, and it is clean
    for text in texts:
        assert API_KEY not in text


async def test_default_headers_and_with_options_share_the_pool(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    route = api.get(VALUE_PATH).respond(200, json={})
    tuned = client.with_options(default_headers={"X-Trace": "abc"}, max_retries=0)
    await tuned.entitlements.value("acme", "ai_tokens")
    assert route.calls.last.request.headers["x-trace"] == "abc"
    assert tuned._http.runtime is client._http.runtime
    assert tuned.max_retries == 0 and client.max_retries == 2
    assert tuned.entitlements is not client.entitlements


async def test_escape_hatch_request_uses_same_errors_and_parses_json(
    api: respx.MockRouter, client: OpenMeterBilling
) -> None:
    api.get("/api/v1/subjects").respond(200, json=[{"key": "s"}])
    assert await client.request("GET", "/api/v1/subjects") == [{"key": "s"}]
    api.delete("/api/v1/meters/nope").mock(
        return_value=problem(404, "Not Found", "meter not found")
    )
    with pytest.raises(NotFoundError):
        await client.request("DELETE", "/api/v1/meters/nope")


async def test_owned_http_client_is_closed_but_injected_one_is_not() -> None:
    async with OpenMeterBilling(base_url=BASE_URL) as owned:
        pool = owned._http.runtime.http_client()
    assert pool.is_closed
    mine = httpx.AsyncClient()
    async with OpenMeterBilling(base_url=BASE_URL, http_client=mine):
        pass
    assert not mine.is_closed
    await mine.aclose()


def _customer_json() -> dict[str, object]:
    return {
        "id": "01J00000000000000000000001",
        "name": "Acme",
        "key": "acme",
        "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-01-01T00:00:00Z",
        "usageAttribution": {"subjectKeys": ["acme"]},
    }
