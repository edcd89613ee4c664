"""ruff (pyflakes-level lint of src and tests) and mypy (types of talon.ir and talon.sdk) pass cleanly.

Both run as subprocesses with the settings in pyproject.toml, so `.ci/run` (pytest) checks them too. A tool
that is not installed skips its test with the way to install it (both are in the `dev` extra).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run_tool(module: str, *args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed: pip install -e '.[dev]' (or pip install {module})")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing_in_src_and_tests():
    r = _run_tool("ruff", "check", "--no-cache", "src", "tests")
    assert r.returncode == 0, f"ruff check src tests:\n{r.stdout}{r.stderr}"


def test_mypy_finds_nothing_in_ir_and_sdk():
    r = _run_tool("mypy", "--no-incremental", f"--cache-dir={os.devnull}", "src/talon/ir", "src/talon/sdk")
    assert r.returncode == 0, f"mypy src/talon/ir src/talon/sdk:\n{r.stdout}{r.stderr}"
