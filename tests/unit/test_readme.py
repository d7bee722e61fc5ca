"""The README's quick start stays true: CI runs exactly the test command it shows."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quick_start_has_two_commands() -> None:
    demo, tests = quick_start_commands()
    assert demo.endswith("openmeter-billing demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command() -> None:
    _, tests = quick_start_commands()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert tests.replace(" -q", "") in [line.replace(" -q", "") for line in ci_lines]


def test_cli_exposes_version() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "openmeter_billing", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.startswith("openmeter-billing ")
