"""docs/nir.md's code blocks run, in order, in one namespace (as a reader pastes them)."""

import pytest

from doc_blocks import run_blocks

pytest.importorskip("nir")


def test_nir_doc_code_blocks_run(tmp_path, monkeypatch):
    from talon.ir import nir_registry
    from talon.ir import node as node_module

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(node_module, "_REGISTRY", dict(node_module._REGISTRY))  # the page registers DocGain
    for name in ("_EXPORTS", "_REFUSED", "_DEFAULTS"):
        monkeypatch.setattr(nir_registry, name, dict(getattr(nir_registry, name)))
    monkeypatch.setattr(nir_registry, "_IMPORTS", {k: dict(v) for k, v in nir_registry._IMPORTS.items()})
    count, ns = run_blocks("nir.md")
    assert count >= 4 and ns["g"].nodes["gain"].type_name == "DocGain"
