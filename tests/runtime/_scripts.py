"""Run a Python script in a fresh interpreter, as a user's program would run, with a deadline."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def last_json(self) -> object:
        """The last line of stdout, parsed as JSON (scripts report their findings there)."""
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        assert lines, f"the script printed nothing; stderr:\n{self.stderr}"
        return json.loads(lines[-1])


def run_script(source: str, *, timeout: float = 60.0, warnings: str = "default") -> Finished:
    """Run ``source`` to interpreter exit; a hang past ``timeout`` fails the calling test."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-W", warnings, "-c", textwrap.dedent(source)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"the script did not exit within {timeout} s (hung at interpreter exit?)\n"
            f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}"
        ) from exc
    return Finished(done.returncode, done.stdout, done.stderr, time.monotonic() - started)
