"""Small graphs and hardware for the mapping tests (built by hand; no exporter, no torch)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from talon import ir
from talon.mapping import HardwareSpec, NeuronGraph


def lif(n_or_shape, **kw) -> ir.LIF:
    shape = (n_or_shape,) if isinstance(n_or_shape, int) else tuple(n_or_shape)
    tau = np.full(shape, 10.0, np.float32)
    return ir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(shape, np.float32), v_threshold=np.ones(shape, np.float32), **kw)


def affine(out: int, inp: int, seed: int = 0) -> ir.Affine:
    rng = np.random.default_rng(seed)
    return ir.Affine(weight=rng.normal(0, 0.1, (out, inp)).astype(np.float32), bias=np.zeros(out, np.float32))


def chain(nodes: dict) -> ir.Graph:
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def dense_net(n_in: int, *sizes: int) -> ir.Graph:
    """Input(n_in) -> [Affine -> LIF(size)]* -> Output."""
    nodes: dict = {"inp": ir.Input(shape=(n_in,))}
    prev = n_in
    for i, n in enumerate(sizes):
        nodes[f"fc{i}"] = affine(n, prev, seed=i)
        nodes[f"lif{i}"] = lif(n)
        prev = n
    nodes["out"] = ir.Output()
    return chain(nodes)


def hw_small(**kw) -> HardwareSpec:
    base = dict(mesh=(4, 4), neurons_per_core=256, weight_memory_bytes_per_core=1 << 20, weight_bits=8)
    base.update(kw)
    return HardwareSpec(**base)


def csr_graph(edges: list[tuple[int, int]], n: int, *, layer_sizes=None, group_size: int = 1, rates=None) -> NeuronGraph:
    src, dst = zip(*edges) if edges else ((), ())
    adj = sp.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    return NeuronGraph.from_csr(adj, rates=rates, layer_sizes=layer_sizes, group_size=group_size)
