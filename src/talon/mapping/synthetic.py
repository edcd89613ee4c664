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


#: Source neurons drawn at a time (bounds the temporaries: a few arrays of CHUNK x synapses per neuron).
CHUNK = 1 << 18


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
    """(adjacency n x n CSR of synapse counts, rates (n,), layer sizes).

    Written row by row straight into the CSR arrays (int32 indices where they fit), a chunk of source
    neurons at a time: no coordinate list and no int64 copy of the synapses is ever held."""
    rng = np.random.default_rng(seed)
    per = rows * cols
    n = layers * per
    n_ff = (layers - 1) * per  # sources with a next sheet
    extra = rng.poisson(long_range, n) if long_range > 0 else np.zeros(n, dtype=np.int64)
    counts = np.full(n, lateral, dtype=np.int64) + extra
    counts[:n_ff] += feedforward
    indptr = np.concatenate([[0], np.cumsum(counts)])
    idx = np.int32 if max(int(indptr[-1]), n) < 2**31 else np.int64
    indptr = indptr.astype(idx)
    indices = np.empty(int(indptr[-1]), dtype=idx)

    def local(src: np.ndarray, k: int, layer_shift: int) -> np.ndarray:
        """(len(src), k) targets within `radius` of each source's position, `layer_shift` sheets on."""
        layer, rem = np.divmod(src, per)
        r, c = np.divmod(rem, cols)
        r = np.clip(r[:, None] + rng.integers(-radius, radius + 1, (src.size, k)), 0, rows - 1)
        c = np.clip(c[:, None] + rng.integers(-radius, radius + 1, (src.size, k)), 0, cols - 1)
        return ((layer + layer_shift)[:, None] * per + r * cols + c).astype(idx)

    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        src = np.arange(lo, hi, dtype=np.int64)
        start = indptr[lo:hi].astype(np.int64)  # where each row's entries begin
        ff = src < n_ff
        k_ff = np.where(ff, feedforward, 0)
        if feedforward > 0 and ff.any():
            pos = start[ff][:, None] + np.arange(feedforward)
            indices[pos] = local(src[ff], feedforward, 1)
        if lateral > 0:
            pos = (start + k_ff)[:, None] + np.arange(lateral)
            indices[pos] = local(src, lateral, 0)
        m = extra[lo:hi]
        if m.sum():
            rank = np.arange(int(m.sum())) - np.repeat(np.cumsum(m) - m, m)
            pos = np.repeat(start + k_ff + lateral, m) + rank
            indices[pos] = rng.integers(0, n, pos.size).astype(idx)
    # repeated draws merge into one connection whose value counts them; a row has at most counts.max() draws
    data = np.ones(indices.size, dtype=np.int16 if counts.max() < 2**15 else np.int32)
    del counts
    adj = sp.csr_matrix((data, indices, indptr), shape=(n, n))
    adj.sum_duplicates()
    rates = mean_rate * rng.lognormal(-0.5 * rate_sigma**2, rate_sigma, n)
    return adj, rates, np.full(layers, per, dtype=np.int64)


def layered_small_world(layers: int = 16, rows: int = 250, cols: int = 250, *, group_size: int = 64, **kw) -> NeuronGraph:
    """The NeuronGraph of `layered_small_world_csr` (units of `group_size` neurons)."""
    adj, rates, sizes = layered_small_world_csr(layers, rows, cols, **kw)
    return NeuronGraph.from_csr(adj, rates=rates, layer_sizes=sizes, layer_names=[f"sheet{i}" for i in range(layers)], group_size=group_size)
