"""Suite-wide settings: torch's thread pool is capped before any test imports torch.

On a loaded 2-core machine torch's default OpenMP busy-waiting makes small per-step work 10-17x slower,
so the suite runs OpenMP passive and torch on one intra-op thread. A user's own environment still wins:
the variables are only set when absent.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


_CSIM_CC_DIR: str | None = None


def _install_csim_cc() -> None:
    """$CXX for the session: g++ behind tests/csim_cc.py (precompiled ap_types headers, builds reused across
    identical projects); a $CXX the user set is kept as it is."""
    global _CSIM_CC_DIR
    gxx = shutil.which("g++")
    if os.environ.get("CXX") or gxx is None:
        return
    _CSIM_CC_DIR = tempfile.mkdtemp(prefix="talon-test-cxx-")
    script = os.path.join(_CSIM_CC_DIR, "g++")
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csim_cc.py")
    with open(script, "w") as f:
        f.write(f'#!/bin/sh\nexec "{sys.executable}" "{here}" "{_CSIM_CC_DIR}" "{gxx}" "$@"\n')
    os.chmod(script, 0o755)
    os.environ["CXX"] = script


def pytest_unconfigure(config) -> None:
    if _CSIM_CC_DIR is not None:
        os.environ.pop("CXX", None)
        shutil.rmtree(_CSIM_CC_DIR, ignore_errors=True)


def pytest_configure(config) -> None:
    _install_csim_cc()
    try:
        import torch
    except ImportError:  # the torch-free layers' tests still run
        return
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    torch.set_num_interop_threads(1)


import pytest  # noqa: E402


@pytest.fixture
def registries():
    """Registrations a test makes (primitives, runtimes, cost, ...: tests/_registries.py) end with it."""
    from _registries import isolated_registries

    with isolated_registries():
        yield


def pytest_collection_finish(session) -> None:
    """A test module that registers a primitive when it is imported leaks it into every other test: register
    in a fixture (the `registries` fixture undoes it)."""
    import sys

    node = sys.modules.get("talon.ir.node")
    if node is None:
        return
    leaked = [f"{t} ({c.__module__})" for t, c in node._REGISTRY.items() if not c.__module__.startswith("talon.")]
    if leaked:
        raise pytest.UsageError(f"test modules registered primitives at import time: {', '.join(leaked)}; register them in a fixture")


@pytest.fixture(autouse=True)
def _no_leaked_primitives():
    """A primitive a test registers must be gone after it (else later tests see it among the primitives)."""
    import sys

    node = sys.modules.get("talon.ir.node")
    before = set(node._REGISTRY) if node is not None else None
    yield
    node = sys.modules.get("talon.ir.node")
    if node is None:
        return
    leaked = sorted(set(node._REGISTRY) - (before if before is not None else set(node._REGISTRY)))
    if leaked:
        pytest.fail(f"the test left primitives registered: {', '.join(leaked)}; use the `registries` fixture (tests/conftest.py)")
