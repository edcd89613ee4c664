"""Run a docs page's ```python blocks in order, in one namespace, as a reader pastes them."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.S)


def run_blocks(page: str) -> tuple[int, dict]:
    """(number of blocks run, the namespace they share)."""
    blocks = python_blocks(page)
    ns: dict = {}
    for block in blocks:
        exec(compile(block, str(DOCS / page), "exec"), ns)
    return len(blocks), ns
