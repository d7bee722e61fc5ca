"""The Python blocks of a markdown file, and which of them are marked ``<!-- not-run: reason -->``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: File name -> (blocks that ran, blocks marked not-run); filled by the docs test for its summary.
RESULTS: dict[str, tuple[int, int]] = {}

NOT_RUN = re.compile(r"<!--\s*not-run:\s*(.+?)\s*-->")


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    source: str
    not_run: str | None  # the reason, when the block is marked


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            start = index
            end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() == "```")
            previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
            marker = NOT_RUN.search(previous)
            source = "\n".join(lines[start + 1 : end]) + "\n"
            found.append(Block(start + 1, source, marker.group(1) if marker else None))
            index = end
        index += 1
    return found
