"""Synthetic spiking networks for benchmarks and tests, built directly as sparse matrices.

`layered_small_world`: `layers` sheets of rows x cols neurons (neuron index = layer, row, col in C
order). Each neuron makes `feedforward` synapses onto random neurons within `radius` of its own
position in the next sheet (a topographic projection, as in a convolutional network), `lateral` ones
within `radius` in its own sheet (local recurrence), and `long_range` onto uniformly random neurons
anywhere (the small-world shortcuts; Poisson-distributed with mean `long_range` per neuron). Targets are drawn with replacement: repeated draws merge into one
connection with a synapse count of 2 or more, so the synapse total is exact. Firing rates are
log-normal around `mean_rate` spikes per step. Nothing dense is ever built.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from talon.mapping.neurons import NeuronGraph


def layered_small_world_csr(
    layers: int = 16,
    rows: int = 250,
    cols: int = 250,
    *,
    feedforward: int = 15,
    lateral: int = 6,
    long_range: float = 0.25,
    radius: int = 2,
    mean_rate: float = 0.05,
    rate_sigma: float = 0.5,
    seed: int = 0,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(adjacency n x n CSR of synapse counts, rates (n,), layer sizes)."""
    rng = np.random.default_rng(seed)
    per = rows * cols
    n = layers * per
    src_parts, dst_parts = [], []

    def local(src: np.ndarray, k: int, layer_shift: int) -> None:
        if k <= 0 or src.size == 0:
            return
        s = np.repeat(src, k)
        layer, rem = np.divmod(s, per)
        r, c = np.divmod(rem, cols)
        r = np.clip(r + rng.integers(-radius, radius + 1, s.size), 0, rows - 1)
        c = np.clip(c + rng.integers(-radius, radius + 1, s.size), 0, cols - 1)
        src_parts.append(s.astype(np.int32))
        dst_parts.append(((layer + layer_shift) * per + r * cols + c).astype(np.int32))

    all_idx = np.arange(n, dtype=np.int64)
    local(all_idx[: (layers - 1) * per], feedforward, 1)
    local(all_idx, lateral, 0)
    if long_range > 0:
        s = np.repeat(all_idx, rng.poisson(long_range, n))
        src_parts.append(s.astype(np.int32))
        dst_parts.append(rng.integers(0, n, s.size).astype(np.int32))
    src = np.concatenate(src_parts)
    dst = np.concatenate(dst_parts)
    del src_parts, dst_parts
    adj = sp.csr_matrix((np.ones(src.size, dtype=np.int32), (src, dst)), shape=(n, n))
    adj.sum_duplicates()
    rates = mean_rate * rng.lognormal(-0.5 * rate_sigma**2, rate_sigma, n)
    return adj, rates, np.full(layers, per, dtype=np.int64)


def layered_small_world(layers: int = 16, rows: int = 250, cols: int = 250, *, group_size: int = 64, **kw) -> NeuronGraph:
    """The NeuronGraph of `layered_small_world_csr` (units of `group_size` neurons)."""
    adj, rates, sizes = layered_small_world_csr(layers, rows, cols, **kw)
    return NeuronGraph.from_csr(adj, rates=rates, layer_sizes=sizes, layer_names=[f"sheet{i}" for i in range(layers)], group_size=group_size)
