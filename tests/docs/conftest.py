"""Print how many documentation examples ran, so a growing not-run list is visible."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    from docs.doc_blocks import RESULTS

    if not RESULTS:
        return
    ran = sum(r for r, _ in RESULTS.values())
    skipped = sum(s for _, s in RESULTS.values())
    terminalreporter.write_line(
        f"documentation examples: {ran} ran, {skipped} marked not-run, in {len(RESULTS)} files"
    )
