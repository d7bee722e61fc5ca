"""Every Python block in README.md and docs/*.md runs, against Local OpenMeter, as written.

Blocks of one file run in order in one namespace (later fragments use earlier names), after the
prelude in `_prelude` (the docs' catalog pushed, customer ``acme``, the names examples assume).
Each file runs in a subprocess with a timeout, so an example that hangs (or keeps the interpreter
from exiting) fails instead of blocking the suite. A block that cannot run is marked in the markdown
with ``<!-- not-run: reason -->`` on the line before it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from docs.doc_blocks import RESULTS, blocks

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT = 60.0


def _params() -> list[object]:
    return [pytest.param(doc, id=doc.name) for doc in DOCS if blocks(doc)]


@pytest.mark.parametrize("doc", _params())
def test_documented_examples_run(doc: Path, tmp_path: Path) -> None:
    found = blocks(doc)
    runnable = [b for b in found if b.not_run is None]
    RESULTS[doc.name] = (0, len(found) - len(runnable))
    if not runnable:
        pytest.skip("every block is marked not-run")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT / "tests")])}
    env.pop("OPENMETER_TOKEN", None)
    env.pop("OPENMETER_ENDPOINT", None)
    command = [sys.executable, str(HERE / "_run_examples.py"), str(ROOT), str(doc)]
    command += [str(b.line) for b in runnable]
    try:
        done = subprocess.run(
            command,
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        ran = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        pytest.fail(f"{doc.name}: no exit within {TIMEOUT:g} s (a hang); output so far:\n{ran}")
    ran = [line for line in done.stdout.splitlines() if line.startswith("ran ")]
    RESULTS[doc.name] = (len(ran), len(found) - len(runnable))
    assert done.returncode == 0, f"{doc.name}:\n{done.stdout}\n{done.stderr}"
    assert len(ran) == len(runnable), done.stdout


def test_markers_name_a_reason() -> None:
    for doc in DOCS:
        for block in blocks(doc):
            assert block.not_run is None or len(block.not_run) > 5, (doc.name, block.line)
