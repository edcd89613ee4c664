"""Suite-wide settings: torch's thread pool is capped before any test imports torch.

On a loaded 2-core machine torch's default OpenMP busy-waiting makes small per-step work 10-17x slower,
so the suite runs OpenMP passive and torch on one intra-op thread. A user's own environment still wins:
the variables are only set when absent.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_configure(config) -> None:
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
