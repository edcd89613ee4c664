"""NeuronGraph: the mapping core's input. Neurons, the groups (units) they are placed in, and who reaches whom.

Neurons are numbered 0..n-1, layer by layer (each layer a contiguous range, in topological order).
Every layer is cut into *units*: contiguous ranges of at most a few dozen/hundred neurons that are
placed whole (a unit never spans two cores, and never two layers). Units are the atoms of partitioning;
a layer bigger than a core spans several cores, small layers share one.

Connectivity is `reach`, a sparse boolean matrix (n neurons x U units): reach[i, u] is true when neuron i
has at least one synapse onto a neuron of unit u. Rows are single neurons, so the spike traffic is exact:
a spike of neuron i becomes one packet per distinct *core* among the units it reaches (multicast counts
once per destination core, not once per synapse). `unit_synapses[u]` counts the synapses into unit u's
neurons (their weights live on u's core). `rates[i]` is neuron i's expected spikes per timestep.

Build one from a neuron-level CSR adjacency (`NeuronGraph.from_csr`) or from an IR graph
(`talon.mapping.from_graph`, which reads neuron and synapse counts from `talon.sdk.cost`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from talon.errors import MappingError


@dataclass
class NeuronGraph:
    reach: sp.csr_matrix  # (n, U) bool: neuron i has a synapse onto some neuron of unit u
    rates: np.ndarray  # (n,) float64 spikes per step
    unit_start: np.ndarray  # (U + 1,) int64 neuron boundaries of the units
    unit_synapses: np.ndarray  # (U,) int64 synapses into each unit
    layer_start: np.ndarray  # (L + 1,) int64 neuron boundaries of the layers
    layer_names: list[str]
    layer_shapes: list[tuple[int, ...]] = field(default_factory=list)  # per layer (IR output shape), optional
    unmapped: list[str] = field(default_factory=list)  # IR nodes with weights that feed no neuron layer; Inputs feeding nothing

    def __post_init__(self) -> None:
        self.reach = sp.csr_matrix(self.reach)
        if self.reach.dtype != np.bool_:
            self.reach = self.reach.astype(np.bool_)
        self.reach.eliminate_zeros()
        self.rates = np.ascontiguousarray(self.rates, dtype=np.float64)
        self.unit_start = np.ascontiguousarray(self.unit_start, dtype=np.int64)
        self.unit_synapses = np.ascontiguousarray(self.unit_synapses, dtype=np.int64)
        self.layer_start = np.ascontiguousarray(self.layer_start, dtype=np.int64)
        self.layer_names = [str(x) for x in self.layer_names]
        self.layer_shapes = [tuple(int(d) for d in s) for s in self.layer_shapes]
        n, units = self.num_neurons, self.num_units
        if self.reach.shape != (n, units):
            raise MappingError(f"NeuronGraph.reach has shape {self.reach.shape}, expected ({n}, {units})")
        if self.rates.shape != (n,) or np.any(~np.isfinite(self.rates)) or np.any(self.rates < 0):
            raise MappingError(f"NeuronGraph.rates must be {n} finite non-negative numbers")
        if self.unit_start.ndim != 1 or self.unit_start[0] != 0 or np.any(np.diff(self.unit_start) <= 0):
            raise MappingError("NeuronGraph.unit_start must start at 0 and increase strictly")
        if self.unit_synapses.shape != (units,) or np.any(self.unit_synapses < 0):
            raise MappingError(f"NeuronGraph.unit_synapses must be {units} non-negative counts")
        ls = self.layer_start
        if ls.ndim != 1 or ls[0] != 0 or ls[-1] != n or np.any(np.diff(ls) <= 0):
            raise MappingError("NeuronGraph.layer_start must run from 0 to the neuron count, increasing strictly")
        if len(self.layer_names) != len(ls) - 1 or len(set(self.layer_names)) != len(self.layer_names):
            raise MappingError(f"NeuronGraph needs {len(ls) - 1} distinct layer names, got {self.layer_names}")
        if not np.all(np.isin(ls, self.unit_start)):
            raise MappingError("NeuronGraph: every layer boundary must also be a unit boundary")
        if self.layer_shapes and len(self.layer_shapes) != self.num_layers:
            raise MappingError("NeuronGraph.layer_shapes must have one shape per layer")

    # -- sizes ------------------------------------------------------------------------------------
    @property
    def num_neurons(self) -> int:
        return int(self.rates.shape[0]) if self.rates.ndim else 0

    @property
    def num_units(self) -> int:
        return int(self.unit_start.shape[0] - 1)

    @property
    def num_layers(self) -> int:
        return int(self.layer_start.shape[0] - 1)

    @property
    def unit_neurons(self) -> np.ndarray:
        return np.diff(self.unit_start)

    @property
    def unit_layer(self) -> np.ndarray:
        return np.searchsorted(self.layer_start, self.unit_start[:-1], side="right") - 1

    @property
    def neuron_unit(self) -> np.ndarray:
        return np.repeat(np.arange(self.num_units, dtype=np.int64), self.unit_neurons)

    @property
    def unit_rate(self) -> np.ndarray:
        """Total spikes per step emitted by each unit."""
        return np.add.reduceat(self.rates, self.unit_start[:-1]) if self.num_units else np.zeros(0)

    @property
    def synapses(self) -> int:
        return int(self.unit_synapses.sum())

    def unit_weight_bytes(self, weight_bits: int) -> np.ndarray:
        return -(-(self.unit_synapses * int(weight_bits)) // 8)

    def unit_traffic(self) -> sp.csr_matrix:
        """(U, U) spikes per step from unit u's neurons that must reach unit v (diagonal included)."""
        cached = getattr(self, "_unit_traffic", None)
        if cached is not None:
            return cached
        r = self.reach
        weighted = sp.csr_matrix((np.repeat(self.rates, np.diff(r.indptr)), r.indices, r.indptr), shape=r.shape)
        agg = sp.csr_matrix(
            (np.ones(self.num_neurons), self.neuron_unit, np.arange(self.num_neurons + 1)), shape=(self.num_neurons, self.num_units)
        ).T.tocsr()
        out = (agg @ weighted).tocsr()
        out.sum_duplicates()
        self._unit_traffic = out
        return out

    def summary(self) -> str:
        return (
            f"NeuronGraph: {self.num_neurons:,} neurons in {self.num_layers} layers and {self.num_units:,} units, "
            f"{self.synapses:,} synapses, {self.reach.nnz:,} (neuron, unit) links"
        )

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def from_csr(
        cls,
        adjacency: sp.spmatrix,
        *,
        rates: np.ndarray | float | None = None,
        layer_sizes: list[int] | np.ndarray | None = None,
        layer_names: list[str] | None = None,
        group_size: int = 64,
        max_group_synapses: int | None = None,
    ) -> "NeuronGraph":
        """From a neuron-level adjacency (n x n; row = presynaptic, column = postsynaptic; the value is
        the number of synapses, 1 for a plain connection). Neurons of each layer are contiguous.

        Units are contiguous runs of at most `group_size` neurons within a layer, cut further so that no
        unit holds more than `max_group_synapses` incoming synapses (plus one neuron's worth).
        """
        adj = sp.csr_matrix(adjacency)
        n = adj.shape[0]
        if adj.shape != (n, n):
            raise MappingError(f"adjacency must be square (n x n), got {adj.shape}")
        if n == 0:
            raise MappingError("adjacency has no neurons")
        if adj.nnz and (adj.data.min() < 0):
            raise MappingError("adjacency values are synapse counts and must be >= 0")
        group_size = int(group_size)
        if group_size < 1:
            raise MappingError(f"group_size must be >= 1, got {group_size}")
        sizes = np.asarray([n] if layer_sizes is None else layer_sizes, dtype=np.int64)
        if sizes.ndim != 1 or np.any(sizes <= 0) or sizes.sum() != n:
            raise MappingError(f"layer_sizes must be positive and sum to {n}, got sum {int(sizes.sum())}")
        layer_start = np.concatenate([[0], np.cumsum(sizes)])
        names = list(layer_names) if layer_names is not None else [f"layer{i}" for i in range(len(sizes))]
        syn_in = np.asarray(adj.sum(axis=0)).ravel().astype(np.int64)
        unit_start = group_units(layer_start, group_size, syn_in, max_group_synapses)
        r = rates_array(rates, n)
        # Reach at unit granularity: bool(adj) @ G^T, with G the neuron -> unit indicator.
        # int32 unit numbers and a copy of adj's indptr only (sum_duplicates works in place): the largest
        # arrays of a big graph are one entry per (neuron, target) pair
        units = len(unit_start) - 1
        neuron_unit = np.repeat(np.arange(units, dtype=np.int32 if units < 2**31 else np.int64), np.diff(unit_start))
        reach = sp.csr_matrix((np.ones(adj.nnz, dtype=np.bool_), neuron_unit[adj.indices], adj.indptr.copy()), shape=(n, units))
        del neuron_unit
        reach.sum_duplicates()
        unit_syn = np.add.reduceat(syn_in, unit_start[:-1])
        return cls(reach, r, unit_start, unit_syn, layer_start, names)


def rates_array(rates: np.ndarray | float | None, n: int, default: float = 1.0) -> np.ndarray:
    if rates is None:
        return np.full(n, float(default))
    arr = np.asarray(rates, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = arr.ravel()
    if arr.shape != (n,):
        raise MappingError(f"rates must be a number or {n} per-neuron values, got {arr.size} values")
    if np.any(~np.isfinite(arr)) or np.any(arr < 0):
        raise MappingError("rates must be finite and >= 0 (spikes per neuron per step)")
    return arr


def group_units(layer_start: np.ndarray, group_size: int, syn_in: np.ndarray | None = None, max_group_synapses: int | None = None) -> np.ndarray:
    """Unit boundaries: every layer cut into runs of <= group_size neurons, and cut again wherever the
    layer's running synapse count enters a new multiple of max_group_synapses (so a unit holds at most
    that many synapses plus those of its first neuron). Vectorized."""
    n = int(layer_start[-1])
    idx = np.arange(n, dtype=np.int64)
    layer = np.searchsorted(layer_start, idx, side="right") - 1
    local = idx - layer_start[layer]
    cut = local % group_size == 0
    if syn_in is not None and max_group_synapses is not None and n:
        cap = max(1, int(max_group_synapses))
        cum = np.cumsum(syn_in)  # synapses up to and including neuron i
        base = (cum - syn_in)[layer_start[layer]]
        bucket = -(-(cum - base) // cap)  # the cap-sized bucket holding neuron i's last synapse
        cut |= np.concatenate([[True], bucket[1:] != bucket[:-1]])
    cut[layer_start[:-1]] = True
    return np.concatenate([np.flatnonzero(cut), [n]]).astype(np.int64)

