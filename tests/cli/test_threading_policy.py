"""The command line's threading policy (docs/performance.md, "Threading policy"): it sets OpenMP's and
OpenBLAS's idle workers to sleep unless the user chose otherwise, before any command imports torch or numpy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from talon.cli.app import main

POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "20"}


def _run_version() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0


@pytest.mark.parametrize("name", sorted(POLICY))
def test_main_sets_the_policy_when_absent(monkeypatch, name):
    monkeypatch.delenv(name, raising=False)
    _run_version()
    assert os.environ[name] == POLICY[name]


@pytest.mark.parametrize("name", sorted(POLICY))
def test_a_users_own_setting_wins(monkeypatch, name):
    monkeypatch.setenv(name, "7")
    _run_version()
    assert os.environ[name] == "7"


def test_numpy_is_not_loaded_before_the_policy_is_set():
    # OpenBLAS reads OPENBLAS_THREAD_TIMEOUT once, when numpy loads it: importing the command line must not load numpy
    code = "import sys, talon.cli; print('numpy' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
