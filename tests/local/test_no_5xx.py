"""Client input never gets a 5xx: odd bodies, methods, headers and connections get 4xx problem+json."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local._server import LoopbackServer, serve_in_thread

EVENT = {"id": "e1", "source": "s", "specversion": "1.0", "type": "tokens", "subject": "acme"}
SINGLE = {"content-type": "application/cloudevents+json"}


def _problem(response: httpx.Response, status: int, field: str | None = None) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    if field is not None:
        assert field in [e["field"] for e in problem["extensions"]["validationErrors"]]
    return problem


@pytest.fixture
def http() -> httpx.Client:
    local = LocalOpenMeter()
    return httpx.Client(transport=local, base_url=local.base_url)


def test_a_hundred_thousand_brackets_are_a_400(http: httpx.Client) -> None:
    body = b"[" * 100_000
    response = http.post(
        "/api/v1/customers", content=body, headers={"content-type": "application/json"}
    )
    _problem(response, 400, "body")


def test_event_data_nested_50000_levels_is_a_400(http: httpx.Client) -> None:
    deep = '{"a":' * 50_000 + "1" + "}" * 50_000
    body = json.dumps(EVENT)[:-1] + ',"data":' + deep + "}"
    _problem(http.post("/api/v1/events", content=body, headers=SINGLE), 400, "body")


def test_moderate_nesting_is_refused_past_the_limit_but_accepted_below(http: httpx.Client) -> None:
    def nested(levels: int) -> str:
        return '{"a":' * levels + "1" + "}" * levels

    ok = json.dumps(EVENT)[:-1] + ',"data":' + nested(100) + "}"
    assert http.post("/api/v1/events", content=ok, headers=SINGLE).status_code == 204
    deep = json.dumps({**EVENT, "id": "e2"})[:-1] + ',"data":' + nested(600) + "}"
    _problem(http.post("/api/v1/events", content=deep, headers=SINGLE), 400, "body")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_a_400(http: httpx.Client, literal: str) -> None:
    body = json.dumps(EVENT)[:-1] + ',"data":{"v":' + literal + "}}"
    _problem(http.post("/api/v1/events", content=body, headers=SINGLE), 400, "body")
    assert http.get("/api/v1/events").json() == []


def test_an_unknown_cloudevents_version_is_a_400(http: httpx.Client) -> None:
    response = http.post("/api/v1/events", json={**EVENT, "specversion": "0.1"}, headers=SINGLE)
    _problem(response, 400, "event.specversion")
    ok = http.post("/api/v1/events", json={**EVENT, "specversion": "0.3"}, headers=SINGLE)
    assert ok.status_code == 204


def test_a_10_mb_event_is_a_400_and_not_stored(http: httpx.Client) -> None:
    big = {**EVENT, "data": {"blob": "x" * 10_000_000}}
    _problem(http.post("/api/v1/events", json=big, headers=SINGLE), 400, "event")
    assert http.get("/api/v1/events").json() == []


def test_an_unknown_method_is_a_405_with_allow(http: httpx.Client) -> None:
    response = http.request("BREW", "/api/v1/meters")
    _problem(response, 405)
    assert response.headers["allow"] == "GET, POST"


def _raw_exchange(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _raw_problem(raw: bytes, status: int) -> dict[str, object]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
    assert b"Content-Type: application/problem+json" in head
    problem: dict[str, object] = json.loads(body)
    assert problem["status"] == status
    return problem


def test_over_http_an_unknown_method_is_a_405_problem() -> None:
    with serve_in_thread(LocalOpenMeter()) as url, httpx.Client(base_url=url) as client:
        response = client.request("PROPFIND", "/api/v1/customers")
    _problem(response, 405)
    assert response.headers["allow"] == "GET, POST"


def test_over_http_a_100_kb_header_is_a_431_problem() -> None:
    with serve_in_thread(LocalOpenMeter()) as url:
        request = (
            b"GET /api/v1/meters HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
        )
        _raw_problem(_raw_exchange(url, request), 431)


def test_over_http_200_headers_are_a_431_problem() -> None:
    with serve_in_thread(LocalOpenMeter()) as url:
        headers = b"".join(b"X-H%d: v\r\n" % n for n in range(200))
        request = b"GET /api/v1/meters HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n"
        _raw_problem(_raw_exchange(url, request), 431)


def test_over_http_a_garbage_request_line_is_a_400_problem() -> None:
    with serve_in_thread(LocalOpenMeter()) as url:
        _raw_problem(_raw_exchange(url, b"NOT HTTP AT ALL\r\n\r\n"), 400)


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /api/v1/meters HTTP/1.1\r\nHost: x\r\n",
     b"POST /api/v1/customers HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"na"],
)  # fmt: skip
def test_idle_and_half_sent_connections_are_closed(sent: bytes) -> None:
    with LoopbackServer(LocalOpenMeter(), port=0, idle_timeout=0.2) as server:
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(sent)
            started = time.monotonic()
            assert sock.recv(65536) == b""  # the server closed the connection
            assert time.monotonic() - started < 4
