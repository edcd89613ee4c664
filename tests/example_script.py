"""Run an examples/ script in the test process, as `python examples/NAME.py ARGS...` runs it.

The script's own code runs whole, its `if __name__ == "__main__"` block included (runpy, with sys.argv set),
so what it prints and writes is what a user's run gives; only the interpreter start and the imports that
the suite has already paid for (torch, snnTorch, matplotlib, scikit-learn) are not repeated, which made a
fresh interpreter most of these tests' CPU time. The global random states the scripts seed (torch's,
numpy's) are restored afterwards, so no later test sees them changed.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    """Exit status of examples/`name` run with `args` (its prints go to the test's captured stdout)."""
    import torch

    script = EXAMPLES / name
    monkeypatch.setattr(sys, "argv", [str(script), *args])
    np_state = np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            try:
                runpy.run_path(str(script), run_name="__main__")
            except SystemExit as exc:
                return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        np.random.set_state(np_state)
    return 0
