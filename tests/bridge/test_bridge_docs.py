"""docs/bridge.md's code blocks run, in order, in one namespace (as a reader pastes them)."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "bridge.md"


def test_bridge_doc_code_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) >= 4
    ns: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), ns)
