"""Every ```python block of docs/ and README.md runs: here, or in the test named for its page.

Blocks run in order in one namespace, in a fresh folder, with every registration undone afterwards
(tests/doc_blocks.py; fragments that cannot run are marked there, with the reason).
"""

from __future__ import annotations

import pytest

from doc_blocks import DOCS, blocks, run_blocks

ROOT = DOCS.parent

#: pages whose blocks a test of their own subsystem runs (and checks the results of)
RUN_ELSEWHERE = {
    "bridge.md": "tests/bridge/test_bridge_docs.py",
    "eval.md": "tests/eval/test_eval_docs.py",
    "fixed_point.md": "tests/backend/test_backend_fixed_constants.py",
    "io.md": "tests/io/test_io_docs.py",
    "mapping.md": "tests/mapping/test_mapping_user_primitives.py",
    "neurons/alif.md": "tests/test_alif.py",
    "neurons/alpha.md": "tests/bridge/test_alpha.py",
    "nir.md": "tests/ir_nir/test_nir_docs.py",
    "primitives.md": "tests/test_primitives_docs.py",
    "sweep.md": "tests/sweep/test_sweep_docs.py",
}
#: pages whose blocks run here: {page: number of blocks that run}
RUN_HERE = {
    "../README.md": 2,
    "backend.md": 2,
    "cost_model.md": 3,
    "energy.md": 1,
    "fpga.md": 4,
    "performance.md": 1,
    "runtime.md": 3,
    "sdk.md": 1,
}


def _pages_with_python() -> set[str]:
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")} | {"../README.md"}
    return {p for p in pages if blocks(p)}


def test_every_page_with_python_blocks_is_run():
    pages = _pages_with_python()
    assert pages == set(RUN_HERE) | set(RUN_ELSEWHERE), "add the page to RUN_HERE (or run it in its own tests: RUN_ELSEWHERE)"
    for page, test in RUN_ELSEWHERE.items():
        source = (ROOT / test).read_text(encoding="utf-8")
        assert f'"{page}"' in source and ("run_blocks(" in source or "exec(" in source), (page, test)


@pytest.mark.parametrize("page", sorted(RUN_HERE))
def test_doc_blocks_run(page, tmp_path, monkeypatch, registries):
    monkeypatch.chdir(tmp_path)
    count, _ = run_blocks(page)
    assert count == RUN_HERE[page]
    skipped = [b for b in blocks(page) if b.skip is not None]
    assert len(skipped) == len(blocks(page)) - count


def test_skip_markers_need_a_reason(tmp_path, monkeypatch):
    import doc_blocks

    (tmp_path / "page.md").write_text("<!-- doc-blocks: skip -->\n```python\n1/0\n```\n")
    monkeypatch.setattr(doc_blocks, "DOCS", tmp_path)
    with pytest.raises(ValueError, match="must say why"):
        doc_blocks.blocks("page.md")
    (tmp_path / "page.md").write_text("<!-- doc-blocks: skip: a fragment -->\n```python\n1/0\n```\n"
                                      "<!-- doc-blocks: setup\nx = 2\n-->\n```python\nassert x == 2\ny = x\n```\n")
    count, ns = doc_blocks.run_blocks("page.md")
    assert count == 1 and ns["y"] == 2
