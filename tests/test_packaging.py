"""Packaging: the built wheels ship talon plus the snnTorch shim, and the shim costs nothing at start-up.

Each check runs in a fresh interpreter started with ``-S`` so that the unpacked wheel is the first site
dir (ahead of whatever t1c-talon install the test venv already has); this interpreter's site-packages
come after it so torch and snntorch stay importable.
"""

import os
import site
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

hatchling_build = pytest.importorskip("hatchling.build")

REPO = Path(__file__).resolve().parents[1]

ALIAS_CHECK = """
import sys
import snntorch
assert "talon" not in sys.modules, "a plain `import snntorch` must not import talon"

import snntorch.export_talonir as ex
import snntorch.import_talonir as im
assert ex.__name__ == "talon.bridge.export_talonir", ex.__name__
assert im.__name__ == "talon.bridge.import_talonir", im.__name__
assert ex.export_to_ir.__module__.startswith("talon."), ex.export_to_ir.__module__
assert im.import_from_ir.__module__.startswith("talon."), im.import_from_ir.__module__
assert snntorch.export_talonir is sys.modules["talon.bridge.export_talonir"]

try:
    import snntorch.no_such_module
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("the shim answered for a name it does not own")

import talon, _t1c_talon_snntorch
print(talon.__file__)
print(_t1c_talon_snntorch.__file__)
"""


def run_with_sites(site_dirs, code: str) -> list[str]:
    """Run ``code`` in a fresh ``-S`` interpreter with exactly ``site_dirs`` as site dirs; return stdout lines."""
    prelude = f"import site\nfor d in {[str(d) for d in site_dirs]!r}:\n    site.addsitedir(d)\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # a source tree on PYTHONPATH would win
    proc = subprocess.run(
        [sys.executable, "-S", "-c", prelude + textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def build_and_unpack(build, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(REPO)  # hatchling builds the project in the current directory
    (tmp_path / "dist").mkdir()
    name = build(str(tmp_path / "dist"))
    root = tmp_path / "site"
    with zipfile.ZipFile(tmp_path / "dist" / name) as whl:
        whl.extractall(root)
    return root


@pytest.fixture(scope="module")
def wheel_root(tmp_path_factory) -> Path:
    """The regular wheel, built and unpacked once for the tests that read it."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return build_and_unpack(hatchling_build.build_wheel, tmp_path_factory.mktemp("wheel"), monkeypatch)


def test_wheel_ships_talon_and_snntorch_shim(wheel_root):
    root = wheel_root
    talon_file, shim_file = run_with_sites([root, *site.getsitepackages()], ALIAS_CHECK)[-2:]
    assert Path(talon_file).is_relative_to(root)
    assert Path(shim_file).parent == root


def test_editable_wheel_ships_snntorch_shim(tmp_path, monkeypatch):
    root = build_and_unpack(hatchling_build.build_editable, tmp_path, monkeypatch)
    talon_file, shim_file = run_with_sites([root, *site.getsitepackages()], ALIAS_CHECK)[-2:]
    assert Path(talon_file).is_relative_to(REPO / "src")
    assert Path(shim_file).parent == root


def test_shim_costs_nothing_at_startup():
    out = run_with_sites([REPO / "src"], """
        import sys
        heavy = ["talon", "torch", "snntorch", "importlib.abc", "importlib.util"]
        print([m for m in heavy if m in sys.modules])
        import importlib, _t1c_talon_snntorch
        importlib.reload(_t1c_talon_snntorch)  # a second install must not add a second finder
        print(sum(getattr(f, "_t1c_talon_snntorch", False) for f in sys.meta_path))
    """)
    assert out == ["[]", "1"]


def test_wheel_ships_the_fpga_templates(wheel_root):
    """The C++ kernels are package data: every template in the source tree is in the wheel, and the
    installed backend reads them from there (not from the source tree)."""
    root = wheel_root
    src = REPO / "src" / "talon" / "backend" / "fpga" / "templates"
    want = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
    assert "kernels/affine.h" in want and "talon_fixed.h" in want
    shipped = root / "talon" / "backend" / "fpga" / "templates"
    assert sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob("*") if p.is_file()) == want
    code = """
    from importlib import resources
    from talon.backend.fpga import kernels
    print(resources.files("talon.backend.fpga"))
    print(kernels.builtin_kernel("affine").splitlines()[0])
    """
    where, first = run_with_sites([root, *site.getsitepackages()], code)[-2:]
    assert Path(where).is_relative_to(root)
    assert first.startswith("// Affine")
