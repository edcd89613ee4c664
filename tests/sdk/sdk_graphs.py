"""Hand-built graphs for the sdk tests (no exporter needed: these are the IR it would produce).

The tutorial's hybrid graph and the lif/affine builders are shared with the backend tests: tests/tutorial_graphs.py.
"""

from __future__ import annotations

import numpy as np

from talon import ir
from tutorial_graphs import affine, build_hybrid, lif  # noqa: F401  (re-exported for the sdk tests)


def build_mlp(seed: int = 0) -> ir.Graph:
    """Input(4) -> Affine(3x4) -> LIF(3) -> Affine(2x3) -> LIF(2) -> Output."""
    rng = np.random.default_rng(seed)
    nodes = {
        "inp": ir.Input(shape=(4,)),
        "fc1": affine(3, 4, rng, 1.0),
        "lif1": lif(3),
        "fc2": affine(2, 3, rng, 1.0),
        "lif2": lif(2),
        "out": ir.Output(),
    }
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


