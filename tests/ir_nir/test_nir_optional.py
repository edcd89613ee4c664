"""`nir` is optional: talon.ir imports without it (and without torch), and every NIR entry point says how to
install it. These tests run whether or not `nir` is installed (they hide it when it is)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import talon.ir as ir
from talon.errors import MissingDependencyError
from talon.ir import Graph, from_nir, to_nir


def _graph() -> Graph:
    return Graph({"input": ir.Input(shape=(8,)), "fc": ir.Affine(weight=np.ones((3, 8), np.float32), bias=np.zeros(3, np.float32)),
                  "output": ir.Output()}, [("input", "fc"), ("fc", "output")])


def test_without_nir_installed_a_clear_message_says_how_to_install(monkeypatch, tmp_path):
    g = _graph()
    monkeypatch.setitem(sys.modules, "nir", None)  # makes `import nir` raise ImportError
    for call in (lambda: to_nir(g), lambda: from_nir(object()), lambda: ir.write(tmp_path / "m.nir", g)):
        with pytest.raises(MissingDependencyError, match=r'pip install "t1c-talon\[nir\]"'):
            call()
    (tmp_path / "m.nir").write_bytes(b"")
    with pytest.raises(MissingDependencyError, match="t1c-talon"):
        ir.read(tmp_path / "m.nir")


def test_importing_talon_ir_imports_neither_nir_nor_torch():
    code = ("import sys, talon.ir as ir; f = ir.from_nir; t = ir.to_nir; "
            "assert 'nir' not in sys.modules and 'torch' not in sys.modules, sorted(m for m in sys.modules if m in ('nir', 'torch'))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_older_nir_is_refused_with_the_version_needed(monkeypatch, tmp_path):
    """sinabs pins nir<=1.0.4, whose LIF has no v_reset: to_nir used to die with a bare TypeError."""
    nir = pytest.importorskip("nir")
    from talon.ir.nir import NIR_MIN_VERSION

    g = _graph()
    monkeypatch.setattr(nir, "__version__", "1.0.4")
    for call in (lambda: to_nir(g), lambda: ir.write(tmp_path / "m.nir", g)):
        with pytest.raises(MissingDependencyError, match=rf"nir>={NIR_MIN_VERSION}.*nir 1\.0\.4 is installed") as info:
            call()
        assert not isinstance(info.value, TypeError)
    assert not (tmp_path / "m.nir").exists()
    monkeypatch.setattr(nir, "__version__", NIR_MIN_VERSION)
    to_nir(g)
    monkeypatch.setattr(nir, "__version__", "1.1.0")
    to_nir(g)


def test_the_extra_declares_the_same_floor():
    import tomllib
    from pathlib import Path

    from talon.ir.nir import NIR_MIN_VERSION

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    assert extras["nir"] == [f"nir>={NIR_MIN_VERSION}"]
