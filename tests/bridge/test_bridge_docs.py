"""docs/bridge.md's code blocks run, in order, in one namespace (as a reader pastes them)."""

from doc_blocks import run_blocks


def test_bridge_doc_code_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    count, _ = run_blocks("bridge.md")
    assert count >= 4
