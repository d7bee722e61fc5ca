"""`openmeter-billing local`: serves Local OpenMeter over HTTP and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import pytest


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_local_command_serves_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "openmeter_billing", "local", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "Local OpenMeter listening on http://127.0.0.1:" in banner
        url = banner.split(" on ", 1)[1].split(" ", 1)[0]
        with httpx.Client(base_url=url) as client:
            created = client.post("/api/v1/customers", json={"name": "Acme", "key": "acme"})
            assert created.status_code == 201
            assert client.get("/api/v1/customers/acme").json()["id"] == created.json()["id"]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped" in out
