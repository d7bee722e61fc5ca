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
