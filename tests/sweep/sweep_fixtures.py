"""Small models and data for the sweep tests: the eval tests' hand-built MLP, and an snnTorch conv SNN."""

from __future__ import annotations

from functools import partial

import numpy as np

import lif_mlp

mlp_graph = partial(lif_mlp.mlp_graph, hidden=12)


def data(n: int = 24, n_in: int = 8, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": rng.random((n, n_in)).astype(np.float32), "y": rng.integers(0, 4, n)}


def strip_timings(points: list[dict]) -> list[dict]:
    """The points without their wall times (the only field that differs between two runs)."""
    return [{k: v for k, v in p.items() if k not in ("seconds", "seconds_prepare")} for p in points]
