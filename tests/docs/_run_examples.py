"""Run the runnable Python blocks of one markdown file, in order, in one namespace.

Usage: ``python _run_examples.py ROOT FILE LINE...`` (the lines where the blocks start). Top-level
``await`` is allowed, as in the docs. Prints ``ran <line>`` per block; exits 1 on the first failure.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import sys
import traceback
from pathlib import Path

from _prelude import names
from doc_blocks import blocks


def main(root: Path, doc: Path, lines: set[int]) -> int:
    namespace = names(root)
    for block in blocks(doc):
        if block.line not in lines:
            continue
        try:
            code = compile(
                block.source,
                f"{doc.name}:{block.line}",
                "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            )
            result = eval(code, namespace)
            if inspect.iscoroutine(result):
                asyncio.run(result)
        except BaseException:
            print(f"FAILED {doc.name}:{block.line}")
            traceback.print_exc()
            return 1
        print(f"ran {doc.name}:{block.line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), {int(n) for n in sys.argv[3:]}))
