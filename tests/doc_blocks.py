"""Run a docs page's ```python blocks in order, in one namespace, as a reader pastes them.

Two markers, HTML comments (invisible on the rendered page) on the line just before a block's fence:

    <!-- doc-blocks: skip: why this fragment cannot run -->      the block is a deliberate fragment: not run
    <!-- doc-blocks: setup                                        Python run first, in the same namespace:
    graph = ...                                                   what the block takes as given (a reader's
    -->                                                           own model, say)

tests/test_doc_blocks.py checks that every page's blocks run somewhere and that every skip gives a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
_FENCE = re.compile(r"```python\n(.*?)```", re.S)
_MARKER = re.compile(r"<!-- doc-blocks: (skip|setup)(.*?)-->\s*\Z", re.S)


@dataclass(frozen=True)
class Block:
    code: str
    line: int  # of the fence, 1-based
    setup: str = ""
    skip: str | None = None  # the reason, for a deliberate fragment


def blocks(page: str) -> list[Block]:
    """Every ```python block of `page` (relative to docs/; "../README.md" for the README), with its markers."""
    text = (DOCS / page).read_text(encoding="utf-8")
    out = []
    for m in _FENCE.finditer(text):
        before = text[: m.start()]
        marker = _MARKER.search(before[before.rfind("<!--"):]) if "<!--" in before else None
        line = before.count("\n") + 1
        if marker is None:
            out.append(Block(m.group(1), line))
        elif marker.group(1) == "skip":
            reason = marker.group(2).strip().lstrip(":").strip()
            if not reason:
                raise ValueError(f"docs/{page}:{line}: a doc-blocks skip marker must say why the block cannot run")
            out.append(Block(m.group(1), line, skip=reason))
        else:
            out.append(Block(m.group(1), line, setup=marker.group(2).strip("\n")))
    return out


def python_blocks(page: str) -> list[str]:
    """The code of every ```python block, skipped fragments included."""
    return [b.code for b in blocks(page)]


def run_blocks(page: str) -> tuple[int, dict]:
    """(number of blocks run, the namespace they share); blocks marked skip are not run."""
    ns: dict = {}
    path = str((DOCS / page).resolve())
    run = [b for b in blocks(page) if b.skip is None]
    for block in run:
        if block.setup:
            exec(compile(block.setup, f"{path} (setup of the block at line {block.line})", "exec"), ns)
        exec(compile("\n" * block.line + block.code, path, "exec"), ns)  # tracebacks give the page's line numbers
    return len(run), ns
