"""Faults over real HTTP: the loopback server drops sockets, answers late, and the CLI's --faults."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest

from openmeter_billing import InvalidInputError
from openmeter_billing.local import Faults, LocalOpenMeter
from openmeter_billing.local._fault_spec import add_fault_spec
from openmeter_billing.local._server import serve_in_thread
from openmeter_billing.local.faults import INGEST, VALUE_READS, Delay, Drop, Fail


def test_a_dropped_connection_closes_the_socket_without_an_answer() -> None:
    local = LocalOpenMeter()
    local.faults.drop(route="GET /api/v1/meters", for_=1)
    with serve_in_thread(local) as url, httpx.Client(base_url=url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            http.get("/api/v1/meters")
        assert http.get("/api/v1/meters").status_code == 200  # a new connection works


def test_a_dropped_answer_after_the_ingest_keeps_the_event() -> None:
    local = LocalOpenMeter()
    local.faults.drop(route=INGEST, when="after", for_=1)
    event = {"id": "e1", "source": "t", "specversion": "1.0", "type": "x", "subject": "s"}
    headers = {"content-type": "application/cloudevents+json"}
    with (
        serve_in_thread(local) as url,
        httpx.Client(base_url=url) as http,
        pytest.raises(httpx.RemoteProtocolError),
    ):
        http.post("/api/v1/events", json=event, headers=headers)
    assert [e["id"] for e in local.snapshot()["events"]] == ["e1"]


def test_a_late_answer_trips_the_clients_read_timeout_over_http() -> None:
    local = LocalOpenMeter()
    local.faults.delay(route="GET /api/v1/meters", seconds=0.5, for_=1)
    with (
        serve_in_thread(local) as url,
        httpx.Client(base_url=url, timeout=0.1) as http,
        pytest.raises(httpx.ReadTimeout),
    ):
        http.get("/api/v1/meters")


def test_an_injected_error_over_http_is_problem_json() -> None:
    local = LocalOpenMeter()
    local.faults.fail(status=500, retry_after=1)
    with serve_in_thread(local) as url, httpx.Client(base_url=url) as http:
        response = http.get("/api/v1/meters")
    assert response.status_code == 500
    assert response.headers["retry-after"] == "1"
    assert response.json()["status"] == 500


@pytest.mark.parametrize(
    ("spec", "routes", "action"),
    [
        ("outage", ("*",), Fail(503)),
        ("fail:route=ingest,share=0.1,status=429,retry_after=2", (INGEST,), Fail(429, 2.0)),
        ("delay:seconds=5,route=values", VALUE_READS, Delay(5.0)),
        ("drop:when=after,route=GET /api/v1/meters|*/value", ("GET /api/v1/meters", "*/value"),
         Drop("after")),
        ("ratelimit:per_second=10", VALUE_READS, Fail(429)),
    ],
)  # fmt: skip
def test_fault_specs_parse(spec: str, routes: tuple[str, ...], action: object) -> None:
    rule = add_fault_spec(Faults(), spec)
    assert rule.routes == routes
    assert rule.action == action


def test_fault_spec_windows() -> None:
    assert add_fault_spec(Faults(), "ratelimit").per_second == 30  # OpenMeter Cloud's value limit
    assert add_fault_spec(Faults(), "outage:for=3").for_ == 3
    assert add_fault_spec(Faults(), "outage:for=30s").for_.total_seconds() == 30  # type: ignore[union-attr]
    assert add_fault_spec(Faults(), "fail:after=2,for=5m").after == 2


@pytest.mark.parametrize(
    "spec",
    ["explode", "fail:share", "fail:bogus=1", "fail:status=abc", "delay", "ratelimit:per_second=x",
     "outage:for=soon", "fail:share=2"],
)  # fmt: skip
def test_bad_fault_specs_are_refused(spec: str) -> None:
    with pytest.raises(InvalidInputError):
        add_fault_spec(Faults(), spec)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_local_command_injects_faults() -> None:
    command = [sys.executable, "-m", "openmeter_billing", "local", "--port", "0"]
    command += ["--faults", "fail:route=GET /api/v1/meters,for=1,status=502", "--faults-seed", "4"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split(" on ", 1)[1].split(" ", 1)[0]
        with httpx.Client(base_url=url) as client:
            assert client.get("/api/v1/meters").status_code == 502
            assert client.get("/api/v1/meters").status_code == 200
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0


def test_local_command_refuses_a_bad_fault_spec() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "openmeter_billing", "local", "--faults", "explode"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid fault spec" in result.stderr
