"""`openmeter-billing backfill` end to end over the loopback server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openmeter_billing.cli import main
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local._server import serve_in_thread


@pytest.fixture
def server() -> Iterator[tuple[LocalOpenMeter, str]]:
    local = LocalOpenMeter()
    with serve_in_thread(local) as url:
        yield local, url


def write_users(path: Path, n: int, extra: list[str] = ()) -> Path:  # type: ignore[assignment]
    lines = [json.dumps({"id": i, "email": f"u{i}@example.com", "plan": "x"}) for i in range(n)]
    path.write_text("\n".join([*lines, *extra]) + "\n")
    return path


def customer_keys(url: str) -> list[str]:
    body = httpx.get(f"{url}/api/v1/customers", params={"pageSize": 1000}).json()
    return [c["key"] for c in body["items"]]


def run(url: str, tmp_path: Path, *args: str) -> int:
    state = str(tmp_path / "state.json")
    return main(["backfill", *args, "--base-url", url, "--state", state, "--rate-limit", "off"])


def test_customers_from_jsonl_then_resume_skips_everything(
    server: tuple[LocalOpenMeter, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = server
    users = write_users(tmp_path / "users.jsonl", 30)
    assert run(url, tmp_path, "customers", "--from", str(users), "--progress", "lines") == 0
    out, err = capsys.readouterr()
    assert "30 created, 0 updated, 0 unchanged, 0 skipped (done before), 0 failed" in out
    assert "backfill customers: 30/30 (100.0%)" in err  # plain progress lines off a TTY
    assert "note: ignoring columns ['plan']" in err
    assert run(url, tmp_path, "customers", "--from", str(users), "--resume", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["skipped"], report["created"], report["ok"]) == (30, 0, True)
    assert sorted(customer_keys(url)) == sorted(str(i) for i in range(30))


def test_failures_are_listed_and_exit_non_zero(
    server: tuple[LocalOpenMeter, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = server
    users = write_users(tmp_path / "users.jsonl", 3, ["not json", '{"name": "no id"}', "[1]"])
    code = run(url, tmp_path, "customers", "--from", str(users), "--scope", "organization")
    out = capsys.readouterr().out
    assert code == 1
    assert "3 created" in out
    assert "3 failed" in out
    assert "item 3 (line 4): InvalidInputError: line 4: not JSON" in out
    assert "item 4 (line 5): InvalidInputError: line 5.id: no id" in out
    assert "item 5 (line 6): InvalidInputError: line 6: a JSON list, not an object" in out


def test_module_callable_source_and_a_client_factory(
    server: tuple[LocalOpenMeter, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = server
    (tmp_path / "bf_source_mod.py").write_text(
        "from openmeter_billing import Identity, OpenMeterBilling, Team, TeamResolver\n"
        "def teams():\n"
        "    return (Team(id=str(i), name=f'Team {i}') for i in range(4))\n"
        "def client():\n"
        f"    return OpenMeterBilling(base_url={url!r}, "
        "identity=Identity(team=TeamResolver(key='team:{id}')))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    state = str(tmp_path / "s.json")
    argv = ["backfill", "customers", "--from", "bf_source_mod:teams", "--state", state]
    assert main([*argv, "--client", "bf_source_mod:client"]) == 0
    assert "4 created" in capsys.readouterr().out
    assert sorted(customer_keys(url)) == ["team:0", "team:1", "team:2", "team:3"]
    assert main([*argv, "--scope", "team", "--base-url", url]) == 2
    assert "--scope describes JSONL rows" in capsys.readouterr().err


def test_subscriptions_from_jsonl_with_a_catalog_file(
    server: tuple[LocalOpenMeter, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, url = server
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        json.dumps(
            {
                "meters": {
                    "tokens": {
                        "event_type": "tokens",
                        "aggregation": "SUM",
                        "value_property": "$.tokens",
                    }
                },
                "features": {"ai_tokens": {"type": "metered", "meter": "tokens"}},
                "plans": {
                    "pro": {"entitlements": {"ai_tokens": {"amount": 100, "reset": "month"}}}
                },
            }
        )
    )
    assert main(["catalog", "push", str(catalog), "--base-url", url]) == 0
    for key in ("a", "b"):
        httpx.post(f"{url}/api/v1/customers", json={"name": key, "key": key})
    subs = tmp_path / "subs.jsonl"
    subs.write_text(
        "\n".join(
            json.dumps(
                {"provider": "stripe", "subscription_id": f"sub_{k}", "customer": k, "plan": "pro"}
            )
            for k in ("a", "b")
        )
    )
    capsys.readouterr()
    code = run(url, tmp_path, "subscriptions", "--from", str(subs), "--catalog", str(catalog))
    assert code == 0, capsys.readouterr()
    assert "backfill subscriptions: 2 items" in capsys.readouterr().out
    value = httpx.get(f"{url}/api/v2/customers/b/entitlements/ai_tokens/value").json()
    assert value["hasAccess"] is True


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.jsonl")
    assert (
        main(["backfill", "customers", "--from", missing, "--base-url", "http://127.0.0.1:1"]) == 2
    )
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        main(["backfill", "customers", "--from", missing, "--concurrency", "0"])
    assert exited.value.code == 2


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_half_way_then_resume_reaches_exactly_every_customer(
    server: tuple[LocalOpenMeter, str], tmp_path: Path
) -> None:
    _, url = server
    total = 400
    users = write_users(tmp_path / "users.jsonl", total)
    state = tmp_path / "state.json"
    command = [
        sys.executable, "-m", "openmeter_billing", "backfill", "customers", "--from", str(users),
        "--base-url", url, "--state", str(state), "--rate-limit", "100",
        "--progress", "lines", "--progress-every", "0",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:
            if (
                line.startswith("backfill customers: ")
                and int(line.split()[2].split("/")[0]) >= total // 2
            ):
                process.send_signal(signal.SIGINT)
                break
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    assert "rerun with --resume" in err
    assert "Traceback" not in err
    saved = json.loads(state.read_text())["watermark"]
    assert 0 < saved < total  # rows in flight at Ctrl-C stay below the watermark
    resumed = subprocess.run(
        [*command, "--resume", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["skipped"] >= saved
    assert report["skipped"] + report["created"] + report["unchanged"] == total
    keys = customer_keys(url)
    assert len(keys) == len(set(keys)) == total
