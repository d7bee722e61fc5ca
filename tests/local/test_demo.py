"""The demo, end to end on Local OpenMeter, with its printed balances checked."""

from __future__ import annotations

import re

import pytest

from openmeter_billing.cli import main
from openmeter_billing.local import LocalOpenMeter
from openmeter_billing.local._demo import DemoNames, demo_identity, run_demo


def balances(lines: list[str]) -> list[tuple[str, str, str, str]]:
    pattern = re.compile(r"balance ([\d,]+) \| usage ([\d,]+) \| overage ([\d,]+) \| access (\w+)")
    return [m.groups() for line in lines if (m := pattern.search(line))]  # type: ignore[misc]


async def test_demo_story_prints_the_expected_balances() -> None:
    local = LocalOpenMeter()
    lines: list[str] = []
    async with local.client(identity=demo_identity(DemoNames())) as client:
        await run_demo(client, clock=local.clock, out=lines.append)
    assert balances(lines) == [
        ("10,000", "0", "0", "yes"),  # allowance granted
        ("3,800", "6,200", "0", "yes"),  # a batch of usage
        ("0", "10,700", "700", "NO"),  # over the limit
        ("4,300", "10,700", "0", "yes"),  # top-up pays the overage first
        ("14,300", "0", "0", "yes"),  # next month: allowance + rolled-over top-up
    ]
    text = "\n".join(lines)
    assert "customer user:ada" in text and "customer org:acme" in text
    assert "access denied" in text
    assert len(local.snapshot()["customers"]) == 2


def test_demo_command_exits_zero_and_prints_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "openmeter-billing demo on Local OpenMeter" in out
    assert "balance 14,300 | usage 0 | overage 0 | access yes" in out


async def test_remote_story_runs_over_http_with_a_reset_instead_of_the_clock() -> None:
    """The --remote path (no clock: a reset starts the new period) against a loopback server.

    Between steps a minute passes on the server, as it would on a real one, so the reset does not
    fall in the same minute as the usage it should clear.
    """
    from openmeter_billing import OpenMeterBilling
    from openmeter_billing.local._server import serve_in_thread

    local = LocalOpenMeter()

    async def a_minute_passes() -> None:
        local.clock.advance(minutes=1)

    lines: list[str] = []
    names = DemoNames.unique()
    with serve_in_thread(local) as url:
        async with OpenMeterBilling(base_url=url, identity=demo_identity(names)) as client:
            await run_demo(client, out=lines.append, names=names, settle=a_minute_passes, where=url)
    assert "7. Reset the usage period (a real server's clock cannot be moved)" in lines
    assert balances(lines)[-1] == ("14,300", "0", "0", "yes")
    assert names.meter.startswith("demo_ai_tokens_")
    assert f"customer user:ada{names.suffix}" in "\n".join(lines)


def test_remote_demo_without_credentials_explains_what_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENMETER_ENDPOINT", raising=False)
    monkeypatch.delenv("OPENMETER_TOKEN", raising=False)
    assert main(["demo", "--remote"]) == 1
    assert "OPENMETER_TOKEN" in capsys.readouterr().err
