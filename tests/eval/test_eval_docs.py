"""docs/eval.md's code blocks run, in order, in one namespace."""

from doc_blocks import run_blocks


def test_eval_doc_code_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    count, ns = run_blocks("eval.md")
    assert count == 2
    assert ns["res"].n_samples == 8 and ns["res"].steps == 10
