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
