"""The loopback server: any httpx transport served over real HTTP/1.1 on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import anyio
import httpx
import pytest

from openmeter_billing.local import _server
from openmeter_billing.local._server import LoopbackServer, serve_in_thread


def _echo(request: httpx.Request) -> httpx.Response:
    """Answers with everything that arrived, so tests can compare it with what was sent."""
    return httpx.Response(
        200,
        json={
            "method": request.method,
            "raw_path": request.url.raw_path.decode("ascii"),
            "query": [list(pair) for pair in request.url.params.multi_items()],
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.headers.raw],
            "body": request.content.decode("utf-8"),
        },
    )


def _header(echoed: dict[str, object], name: str) -> list[str]:
    pairs = echoed["headers"]
    assert isinstance(pairs, list)
    return [value for key, value in pairs if key.lower() == name]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(httpx.MockTransport(_echo), port=0) as running:
        yield running


def _raw_exchange(url: str, request: bytes) -> bytes:
    """Send bytes on a fresh socket, half-close it and read until the server closes."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)  # EOF after the request: a short body ends here
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
    return b"".join(chunks)


NON_ASCII = {"name": "Zoë Ångström", "emoji": "☃ 🚀", "note": "naïve"}
TARGET = "/api/v1/events?tag=a&tag=b&q=x%20y&empty="


def _assert_intact(echoed: dict[str, object], method: str) -> None:
    assert echoed["method"] == method
    assert echoed["raw_path"] == TARGET
    assert echoed["query"] == [["tag", "a"], ["tag", "b"], ["q", "x y"], ["empty", ""]]
    assert _header(echoed, "x-custom") == ["one", "two"]
    assert _header(echoed, "content-type") == ["application/json"]
    assert json.loads(str(echoed["body"])) == NON_ASCII


def test_sync_client_request_arrives_intact(server: LoopbackServer) -> None:
    body = json.dumps(NON_ASCII, ensure_ascii=False).encode()
    headers = [("X-Custom", "one"), ("X-Custom", "two"), ("Content-Type", "application/json")]
    with httpx.Client(base_url=server.url) as client:
        response = client.post(TARGET, content=body, headers=headers)
    assert response.status_code == 200
    echoed = response.json()
    _assert_intact(echoed, "POST")
    assert echoed["body"].encode() == body
    assert _header(echoed, "content-length") == [str(len(body))]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
async def test_async_client_request_arrives_intact(server: LoopbackServer, method: str) -> None:
    body = json.dumps(NON_ASCII, ensure_ascii=False).encode()
    headers = [("X-Custom", "one"), ("X-Custom", "two"), ("Content-Type", "application/json")]
    async with httpx.AsyncClient(base_url=server.url) as client:
        response = await client.request(method, TARGET, content=body, headers=headers)
    assert response.status_code == 200
    _assert_intact(response.json(), method)


def test_get_without_body_reaches_transport_with_empty_body(server: LoopbackServer) -> None:
    response = httpx.get(server.url + "/api/v1/meters?x=1")
    echoed = response.json()
    assert (echoed["method"], echoed["raw_path"], echoed["body"]) == (
        "GET",
        "/api/v1/meters?x=1",
        "",
    )


def test_absolute_form_target_keeps_path_and_query(server: LoopbackServer) -> None:
    raw = _raw_exchange(
        server.url,
        b"GET http://example.com/abs?x=1&x=2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    )
    echoed = json.loads(raw.partition(b"\r\n\r\n")[2])
    assert (echoed["raw_path"], echoed["query"]) == ("/abs?x=1&x=2", [["x", "1"], ["x", "2"]])


def test_chunked_request_body_is_reassembled(server: LoopbackServer) -> None:
    def parts() -> Iterator[bytes]:
        yield b'{"a":'
        yield '"é"}'.encode()

    with httpx.Client(base_url=server.url) as client:
        echoed = client.post("/chunked", content=parts()).json()
    assert json.loads(echoed["body"]) == {"a": "é"}
    assert _header(echoed, "transfer-encoding") == []
    assert _header(echoed, "content-length") == [str(len('{"a":"é"}'.encode()))]


def test_keep_alive_reuses_one_connection(server: LoopbackServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        paths = [client.get(f"/n/{i}").json()["raw_path"] for i in range(25)]
    assert paths == [f"/n/{i}" for i in range(25)]
    assert server.connections_accepted == 1


def test_connection_close_is_honoured(server: LoopbackServer) -> None:
    raw = _raw_exchange(server.url, b"GET /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nConnection: close" in head
    assert json.loads(body)["raw_path"] == "/x"


async def test_fifty_concurrent_async_requests_each_get_their_own_answer(
    server: LoopbackServer,
) -> None:
    results: dict[int, dict[str, object]] = {}

    async def one(client: httpx.AsyncClient, i: int) -> None:
        response = await client.post(f"/c/{i}", json={"i": i})
        results[i] = response.json()

    limits = httpx.Limits(max_connections=50)
    async with (
        httpx.AsyncClient(base_url=server.url, limits=limits) as client,
        anyio.create_task_group() as tg,
    ):
        for i in range(50):
            tg.start_soon(one, client, i)
    assert sorted(results) == list(range(50))
    for i, echoed in results.items():
        assert echoed["raw_path"] == f"/c/{i}"
        assert json.loads(str(echoed["body"])) == {"i": i}
    assert 1 <= server.connections_accepted <= 50


def test_raising_transport_answers_500_problem_and_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/boom":
            raise RuntimeError("transport bug")
        return httpx.Response(200, text="fine")

    caplog.set_level(logging.ERROR, logger="openmeter_billing")
    with serve_in_thread(httpx.MockTransport(flaky)) as url, httpx.Client(base_url=url) as client:
        failed = client.get("/boom")
        assert failed.status_code == 500
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.json() == {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
        }
        assert client.get("/ok").text == "fine"  # same connection, still served
    messages = [r.getMessage() for r in caplog.records if r.name == "openmeter_billing"]
    assert any("GET /boom" in m for m in messages)
    assert any(r.exc_info and "transport bug" in str(r.exc_info[1]) for r in caplog.records)


def test_no_content_response_has_no_body_and_no_content_length() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(204, headers={"X-Id": "7"}))
    with serve_in_thread(transport) as url:
        raw = _raw_exchange(url, b"DELETE /x HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        head, _, body = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 204 ")
        assert b"content-length" not in head.lower()
        assert b"X-Id: 7" in head
        assert body == b""
        with httpx.Client(base_url=url) as client:
            responses = [client.delete("/x") for _ in range(3)]  # framing stays in sync
    assert [(r.status_code, r.content) for r in responses] == [(204, b"")] * 3


def test_hop_by_hop_headers_are_dropped_and_content_length_is_set() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"Connection": "close", "Keep-Alive": "timeout=1", "Content-Length": "999"}
        return httpx.Response(201, headers={**headers, "X-Kept": "yes"}, content=b"hello")

    with serve_in_thread(httpx.MockTransport(answer)) as url:
        raw = _raw_exchange(
            url, b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0].startswith(b"http/1.1 201 ")
    assert b"content-length: 5" in lines
    assert b"content-length: 999" not in lines
    assert b"keep-alive: timeout=1" not in lines
    assert b"x-kept: yes" in lines
    assert body == b"hello"


def test_head_response_keeps_content_length_but_sends_no_body() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=b"twelve bytes"))
    with serve_in_thread(transport) as url, httpx.Client(base_url=url) as client:
        head = client.head("/x")
        after = client.get("/x")  # would be garbled if the HEAD body had been sent
    assert (head.headers["content-length"], head.content) == ("12", b"")
    assert after.content == b"twelve bytes"


def test_gzip_body_is_forwarded_as_produced() -> None:
    import gzip

    packed = gzip.compress(b'{"ok":true}')
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=packed)
    )
    with serve_in_thread(transport) as url:
        response = httpx.get(url + "/x")
    assert response.headers["content-length"] == str(len(packed))
    assert response.json() == {"ok": True}


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: nope\r\n\r\n", b"400"),
        (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: -3\r\n\r\n", b"400"),
        (b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", b"411"),
        (b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400"),
        (b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", b"400"),
        (b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nshort", b"400"),
    ],
)
def test_unreadable_request_bodies_get_a_client_error(
    server: LoopbackServer, request_bytes: bytes, status: bytes
) -> None:
    raw = _raw_exchange(server.url, request_bytes)
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == status
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["status"] == int(status)
    assert httpx.get(server.url + "/after").status_code == 200  # the server survived


def test_shutdown_releases_the_port_for_a_new_server() -> None:
    first = LoopbackServer(httpx.MockTransport(_echo), port=0)
    with first, httpx.Client(base_url=first.url) as client:
        assert client.get("/a").status_code == 200  # leaves an idle keep-alive connection
    port = int(first.url.rsplit(":", 1)[1])
    with pytest.raises(httpx.ConnectError):
        httpx.get(first.url + "/gone")
    with LoopbackServer(httpx.MockTransport(_echo), port=port) as second:
        assert second.url == first.url
        assert httpx.get(second.url + "/b").json()["raw_path"] == "/b"


def test_shutdown_without_serving_returns_and_is_idempotent() -> None:
    server = LoopbackServer(httpx.MockTransport(_echo), port=0)
    server.shutdown()
    server.shutdown()
    server.serve_forever()  # returns at once: the server was stopped
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/x")


def test_quiet_by_default_and_one_line_per_request_when_asked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="openmeter_billing")
    transport = httpx.MockTransport(_echo)
    with serve_in_thread(transport) as url:
        httpx.get(url + "/quiet")
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
    with LoopbackServer(transport, port=0, log_requests=True) as server:
        httpx.get(server.url + "/loud?x=1")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(lines) == 1
    assert "GET /loud?x=1 HTTP/1.1" in lines[0]
    assert "200" in lines[0]


def test_non_loopback_host_warns_about_missing_auth(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend 127.0.0.1 is public, so the test never listens beyond loopback.
    monkeypatch.setattr(_server, "_is_loopback", lambda host: False)
    caplog.set_level(logging.WARNING, logger="openmeter_billing")
    LoopbackServer(httpx.MockTransport(_echo), port=0).shutdown()
    [record] = caplog.records
    assert "no authentication" in record.getMessage()
    assert "api_key" in record.getMessage()


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.5", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("example.com", False),
    ],
)
def test_loopback_detection(host: str, loopback: bool) -> None:
    assert _server._is_loopback(host) is loopback


def test_loopback_binding_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="openmeter_billing")
    LoopbackServer(httpx.MockTransport(_echo), port=0).shutdown()
    assert caplog.records == []


def test_ctrl_c_stops_serve_forever_without_traceback() -> None:
    script = textwrap.dedent(
        """
        import httpx
        from openmeter_billing.local._server import LoopbackServer
        server = LoopbackServer(httpx.MockTransport(lambda r: httpx.Response(200)), port=0)
        print(server.url, flush=True)
        server.serve_forever()
        print("returned", flush=True)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert httpx.get(url + "/x").status_code == 200
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 0
    assert out.strip() == "returned"
    assert "Traceback" not in err
