"""map_graph() and MappingResult: partition, place and route in one call; store the result in a .t1c.

The result lives in `graph.metadata["talon_mapping"]` as plain dicts, lists, strings, numbers and
numeric numpy arrays (what the .t1c writer stores exactly): `MappingResult.to_metadata()` /
`MappingResult.from_metadata()`; `result.attach(graph)` and `MappingResult.from_graph(graph)` do the
dictionary step. `noc_profile(...)` gives the network-on-chip figures a backend profile needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from talon.errors import MappingError
from talon.ir import Graph
from talon.mapping._inputs import as_graph, check_hardware, check_index
from talon.mapping.adapter import RatesLike
from talon.mapping.allocate import allocate, memory_utilisation, neuron_utilisation
from talon.mapping.hardware import HardwareSpec, HardwareSpecError
from talon.mapping.metrics import compute_metrics
from talon.mapping.neurons import NeuronGraph
from talon.mapping.partition import ALGORITHMS, partition
from talon.mapping.place import place
from talon.mapping.route import route

METADATA_KEY = "talon_mapping"
FORMAT_VERSION = 1

_CORE_FIELDS = ("row", "col", "neurons", "synapses", "weight_bytes", "fan_in", "fan_out", "routing_entries")
_ASSIGN_FIELDS = ("core", "row", "col", "start", "stop")
_ROUTING_FIELDS = ("core", "layer", "start", "stop", "dest_indptr", "dest")
_FLOW_FIELDS = ("src", "dst", "packets", "hops")
_LINK_FIELDS = ("east", "west", "south", "north")


@dataclass
class MappingResult:
    """Where every neuron lives, how spikes travel, and what it costs.

    assignments[layer] = {"core", "row", "col", "start", "stop"}: int64 arrays, one entry per run of the
    layer's neurons (flat C-order indices [start, stop) of its output) on core `core` at (row, col).
    cores = per-core arrays (row, col, neurons, synapses, weight_bytes, fan_in, fan_out, routing_entries).
    routing = the routing tables (see talon.mapping.route.RoutingTables; layers by index into `layers`).
    flows = (src, dst, packets, hops) per pair of cores exchanging packets; links = per-link loads.
    layer_rates[k] = the mean firing rate (spikes per neuron per step) the mapping assumed for layers[k]
    (None for results stored before it was recorded).
    """

    hardware: HardwareSpec
    algorithm: str
    placement_method: str
    layers: list[str]
    assignments: dict[str, dict[str, np.ndarray]]
    cores: dict[str, np.ndarray]
    routing: dict[str, np.ndarray]
    flows: dict[str, np.ndarray]
    links: dict[str, np.ndarray]
    metrics: dict[str, Any]
    unmapped: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    layer_rates: np.ndarray | None = None

    # -- queries ----------------------------------------------------------------------------------
    def node_assignment(self, name: str) -> list[tuple[tuple[int, int], int, int]]:
        """[((row, col), start, stop), ...] for one layer."""
        if name not in self.assignments:
            raise MappingError(f"{name!r} is not a mapped layer; mapped: {self.layers}")
        a = self.assignments[name]
        return [((int(r), int(c)), int(s), int(e)) for r, c, s, e in zip(a["row"], a["col"], a["start"], a["stop"])]

    def position_of(self, name: str, index: int) -> tuple[int, int]:
        """Mesh position of neuron `index` (flat) of layer `name`."""
        index = check_index(index, "position_of: the neuron index")
        for pos, s, e in self.node_assignment(name):
            if s <= index < e:
                return pos
        raise MappingError(f"layer {name!r} has no neuron {index}")

    def routing_table(self, row: int, col: int) -> list[dict]:
        """Routing entries of the core at (row, col): layer, neuron range and destination positions."""
        self.hardware.core_index(check_index(row, "routing_table: row"), check_index(col, "routing_table: col"))  # off the mesh: MappingError
        k = np.flatnonzero((self.cores["row"] == row) & (self.cores["col"] == col))
        if k.size == 0:
            return []
        core = int(k[0])
        rt = self.routing
        out = []
        for e in np.flatnonzero(rt["core"] == core):
            dests = rt["dest"][rt["dest_indptr"][e] : rt["dest_indptr"][e + 1]]
            out.append(
                {
                    "layer": self.layers[int(rt["layer"][e])],
                    "start": int(rt["start"][e]),
                    "stop": int(rt["stop"][e]),
                    "destinations": [(int(self.cores["row"][d]), int(self.cores["col"][d])) for d in dests],
                }
            )
        return out

    def noc_profile(self) -> dict[str, float]:
        return noc_profile(self)

    @property
    def neuron_utilisation(self) -> np.ndarray:
        """Per core (indexed like `cores`): neurons held / neurons_per_core."""
        return neuron_utilisation(self.cores["neurons"], self.hardware)

    @property
    def memory_utilisation(self) -> np.ndarray:
        """Per core: weight bytes / weight_memory_bytes_per_core (inf for weights on a core without any)."""
        return memory_utilisation(self.cores["weight_bytes"], self.hardware)

    def utilisation_grids(self) -> dict[str, np.ndarray]:
        """{"neurons", "weight memory"}: (rows, cols) arrays of the per-core utilisation laid on the mesh
        (0 where no core is placed; cores sharing a position add up)."""
        rows, cols = self.hardware.mesh
        r, c = np.asarray(self.cores["row"], dtype=np.int64), np.asarray(self.cores["col"], dtype=np.int64)
        grids = {}
        for name, per_core in (("neurons", self.neuron_utilisation), ("weight memory", self.memory_utilisation)):
            grid = np.zeros((rows, cols))
            np.add.at(grid, (r, c), per_core)
            grids[name] = grid
        return grids

    def layer_sizes(self) -> dict[str, int]:
        """Neurons of each mapped layer (the end of its last assigned slice)."""
        return {n: int(self.assignments[n]["stop"].max()) if self.assignments[n]["stop"].size else 0 for n in self.layers}

    def summary(self) -> str:
        m = self.metrics
        hw = self.hardware
        lines = [
            f"mapping of {m['neurons']:,} placed elements (neurons, and the graph inputs' elements as spike sources) / "
            f"{m['synapses']:,} synapses on {hw.describe()}",
            f"algorithm {self.algorithm}, placement {self.placement_method}: {m['cores_used']} cores used",
            f"spike packets/step {m['spike_packets_per_step']:,.1f} (local {m['local_spikes_per_step']:,.1f}), "
            f"packet-hops/step {m['packet_hops_per_step']:,.1f}, hops avg {m['average_hops']:.2f} max {m['max_hops']}",
            f"max link load {m['max_link_load']:,.1f} packets/step"
            + (f" (congestion {m['congestion']:.2f})" if "congestion" in m else ""),
            f"core use: neurons max {m['max_neuron_utilisation']:.0%} mean {m['mean_neuron_utilisation']:.0%}, "
            f"weights max {m['max_memory_utilisation']:.0%} mean {m['mean_memory_utilisation']:.0%}",
            f"NoC energy/step {m['noc_energy_per_step']:.3g} J, spike latency avg {m['average_spike_latency']:.3g} s max {m['max_spike_latency']:.3g} s",
        ]
        if self.unmapped:
            lines.append(f"off the cores (synaptic nodes feeding no neuron layer, inputs feeding nothing): {self.unmapped}")
        return "\n".join(lines)

    __str__ = summary

    # -- storage ----------------------------------------------------------------------------------
    def to_metadata(self) -> dict:
        """Plain dicts/lists/strings/numbers/numpy arrays, as the .t1c writer stores them exactly."""
        return {
            "version": FORMAT_VERSION,
            "hardware": self.hardware.to_dict(),
            "algorithm": self.algorithm,
            "placement": self.placement_method,
            "layers": list(self.layers),
            "assignments": {n: {k: np.asarray(self.assignments[n][k], dtype=np.int64) for k in _ASSIGN_FIELDS} for n in self.layers},
            "cores": {k: np.asarray(self.cores[k], dtype=np.int64) for k in _CORE_FIELDS},
            "routing": {k: np.asarray(self.routing[k], dtype=np.int64) for k in _ROUTING_FIELDS},
            "flows": {
                "src": np.asarray(self.flows["src"], dtype=np.int64),
                "dst": np.asarray(self.flows["dst"], dtype=np.int64),
                "packets": np.asarray(self.flows["packets"], dtype=np.float64),
                "hops": np.asarray(self.flows["hops"], dtype=np.int64),
            },
            "links": {k: np.asarray(self.links[k], dtype=np.float64) for k in _LINK_FIELDS},
            "metrics": {k: (int(v) if isinstance(v, (int, np.integer)) else float(v)) for k, v in self.metrics.items()},
            "unmapped": list(self.unmapped),
            "timings": {k: float(v) for k, v in self.timings.items()},
            **({} if self.layer_rates is None else {"layer_rates": np.asarray(self.layer_rates, dtype=np.float64)}),
        }

    @classmethod
    def from_metadata(cls, d: dict) -> "MappingResult":
        if not isinstance(d, dict):
            raise MappingError(f"mapping metadata must be a dict, got {type(d).__name__}")
        try:
            version = d["version"]
            if version != FORMAT_VERSION:
                raise MappingError(f"mapping metadata version {version!r} is not supported (expected {FORMAT_VERSION})")
            hw = HardwareSpec.from_dict(dict(d["hardware"]))
            layers = [str(x) for x in d["layers"]]
            assignments = {n: {k: _array(d["assignments"][n][k], np.int64, f"assignments[{n!r}][{k!r}]") for k in _ASSIGN_FIELDS} for n in layers}
            cores = {k: _array(d["cores"][k], np.int64, f"cores[{k!r}]") for k in _CORE_FIELDS}
            routing = {k: _array(d["routing"][k], np.int64, f"routing[{k!r}]") for k in _ROUTING_FIELDS}
            flows = {
                "src": _array(d["flows"]["src"], np.int64, "flows['src']"),
                "dst": _array(d["flows"]["dst"], np.int64, "flows['dst']"),
                "packets": _array(d["flows"]["packets"], np.float64, "flows['packets']"),
                "hops": _array(d["flows"]["hops"], np.int64, "flows['hops']"),
            }
            links = {k: _array(d["links"][k], np.float64, f"links[{k!r}]", ndim=2) for k in _LINK_FIELDS}
            metrics = dict(d["metrics"])
            unmapped = [str(x) for x in (d.get("unmapped") or [])]
            timings = {str(k): float(v) for k, v in (d.get("timings") or {}).items()}
            algorithm, placement_method = str(d["algorithm"]), str(d["placement"])
            layer_rates = None if d.get("layer_rates") is None else _array(d["layer_rates"], np.float64, "layer_rates")
        except HardwareSpecError as exc:
            raise MappingError(f"mapping metadata: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise MappingError(f"mapping metadata is malformed: missing or invalid {exc}") from None
        k = cores["row"].shape[0]
        if any(v.shape != (k,) for v in cores.values()):
            raise MappingError("mapping metadata is malformed: per-core arrays differ in length")
        if layer_rates is not None and layer_rates.shape != (len(layers),):
            raise MappingError("mapping metadata is malformed: layer_rates must have one value per layer")
        return cls(hw, algorithm, placement_method, layers, assignments, cores, routing, flows, links, metrics, unmapped, timings, layer_rates)

    def attach(self, graph: Graph) -> Graph:
        """Store this result in graph.metadata["talon_mapping"] (written by talon.ir.write); returns graph."""
        graph.metadata[METADATA_KEY] = self.to_metadata()
        return graph

    @classmethod
    def from_graph(cls, graph: Graph) -> "MappingResult":
        """The mapping stored in a graph's metadata (e.g. one read back from a .t1c file)."""
        d = graph.metadata.get(METADATA_KEY)
        if d is None:
            raise MappingError("the graph carries no mapping (graph.metadata['talon_mapping'] is missing)")
        return cls.from_metadata(d)


def _array(v: Any, dtype, what: str, ndim: int = 1) -> np.ndarray:
    arr = np.asarray(v if not isinstance(v, (list, tuple)) or len(v) else np.zeros(0), dtype=dtype)
    if arr.ndim != ndim:
        if ndim == 2 and arr.size == 0:
            return arr.reshape(0, 0)
        raise MappingError(f"mapping metadata: {what} should be {ndim}-D, got shape {arr.shape}")
    return arr


def noc_profile(source: "MappingResult | Graph | dict") -> dict[str, float]:
    """Network-on-chip figures per timestep for a backend's profile: packets, packet-hops, energy
    (packet-hops x energy_per_hop) and spike latency (hops x latency_per_hop)."""
    if isinstance(source, Graph):
        source = MappingResult.from_graph(source)
    elif isinstance(source, dict):
        source = MappingResult.from_metadata(source)
    if not isinstance(source, MappingResult):
        raise MappingError(f"noc_profile expects a MappingResult, a mapped Graph or mapping metadata, got {type(source).__name__}")
    m, hw = source.metrics, source.hardware
    return {
        "spike_packets_per_step": float(m["spike_packets_per_step"]),
        "packet_hops_per_step": float(m["packet_hops_per_step"]),
        "average_hops": float(m["average_hops"]),
        "max_hops": float(m["max_hops"]),
        "max_link_load": float(m["max_link_load"]),
        "energy_per_hop": hw.energy_per_hop,
        "latency_per_hop": hw.latency_per_hop,
        "noc_energy_per_step": float(m["noc_energy_per_step"]),
        "average_spike_latency": float(m["average_spike_latency"]),
        "max_spike_latency": float(m["max_spike_latency"]),
    }


#: What algorithm="auto" tries, in order of preference when two give the same traffic.
AUTO_ALGORITHMS = ("metis", "spectral", "greedy")


def map_graph(
    graph: Graph | NeuronGraph,
    hw: HardwareSpec,
    algorithm: str = "auto",
    *,
    rates: RatesLike = None,
    default_rate: float = 1.0,
    group_size: int | None = None,
    placement: str = "auto",
    fill: float = 0.97,
    seed: int = 0,
    time_limit: float = 20.0,
    attach: bool = False,
    progress: Callable[[str], None] | None = None,
) -> MappingResult:
    """Partition, place and route `graph` on `hw`; MappingError when it does not fit.

    `algorithm`: "metis", "spectral", "greedy", or "auto" (default): each of those, keeping the mapping
    with the fewest packet-hops per step (METIS's balanced cut can spread a small layer over every
    core, and on small graphs a simpler split often sends fewer packets); `result.algorithm` names the
    one kept. `placement` and `time_limit` (seconds for placement refinement): see talon.mapping.place.
    `rates`: expected spikes per neuron per step ({layer: value or array}, or one number); default 1.0
    for every neuron (an upper bound). With `attach=True` (IR graphs only) the result is also stored
    in graph.metadata["talon_mapping"]. `progress`, if given, is called with a short description of
    each step as it starts (the CLI shows it on a terminal).
    """
    if attach and not isinstance(graph, Graph):
        raise MappingError(
            "attach=True needs an IR Graph to store the mapping in: read the file first (graph = "
            "talon.ir.read(path)), map it with attach=True, then talon.ir.write(path, graph)"
        )
    hw = check_hardware(hw, "map_graph")
    graph = as_graph(graph, "map_graph")
    if algorithm not in (*ALGORITHMS, "auto"):
        raise MappingError(f"unknown mapping algorithm {algorithm!r}; choose one of {[*ALGORITHMS, 'auto']}")
    if algorithm == "auto":
        return _best_mapping(graph, hw, rates=rates, default_rate=default_rate, group_size=group_size, placement=placement,
                             fill=fill, seed=seed, time_limit=time_limit, attach=attach, progress=progress)
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    say(f"{algorithm}: partitioning")
    part = partition(graph, hw, algorithm, rates=rates, default_rate=default_rate, group_size=group_size, fill=fill, seed=seed)
    t1 = time.perf_counter()
    say(f"{algorithm}: placing {part.num_cores} cores (at most {time_limit:g} s)")
    placed = place(part, hw, method=placement, seed=seed, time_limit=time_limit)
    t2 = time.perf_counter()
    say(f"{algorithm}: routing")
    routed = route(placed, hw)
    alloc = allocate(placed, hw)
    t3 = time.perf_counter()
    result = result_from(routed, alloc)
    result.timings = {"partition": t1 - t0, "place": t2 - t1, "route": t3 - t2, "total": time.perf_counter() - t0}
    if attach:
        if not isinstance(graph, Graph):
            raise MappingError("attach=True needs an IR Graph to store the mapping in")
        result.attach(graph)
    return result


def _best_mapping(graph: Graph | NeuronGraph, hw: HardwareSpec, *, attach: bool, **kw: Any) -> MappingResult:
    t0 = time.perf_counter()
    if isinstance(graph, Graph):
        if kw.get("progress"):
            kw["progress"]("checking capacity and building the neuron graph")
        # one NeuronGraph for every algorithm tried (capacity first, so a graph that cannot fit is refused at once)
        from talon.mapping.adapter import from_graph
        from talon.mapping.capacity import check_capacity

        check_capacity(graph, hw)
        kw = dict(kw)
        ng = from_graph(graph, hw, rates=kw.pop("rates"), default_rate=kw.pop("default_rate"), group_size=kw.pop("group_size"))
    else:
        ng = graph
    results, first_error = [], None
    for algorithm in AUTO_ALGORITHMS:
        try:
            results.append(map_graph(ng, hw, algorithm, **kw))
        except MappingError as exc:  # e.g. a partitioner that cannot meet a core's budget: the others may
            first_error = first_error or exc
    if not results:
        raise first_error
    best = min(results, key=lambda r: (r.metrics["packet_hops_per_step"], AUTO_ALGORITHMS.index(r.algorithm)))
    best.timings = {**best.timings, "total": time.perf_counter() - t0}
    if attach:
        if not isinstance(graph, Graph):
            raise MappingError("attach=True needs an IR Graph to store the mapping in")
        best.attach(graph)
    return best


def result_from(routed, alloc) -> MappingResult:
    placed = routed.placement
    part = placed.partition
    ng = part.neurons
    hw = placed.hardware
    pos = placed.positions
    assignments = {}
    for name, runs in part.node_slices().items():
        a = np.asarray(runs, dtype=np.int64).reshape(-1, 3)
        assignments[name] = {"core": a[:, 0], "row": pos[a[:, 0], 0], "col": pos[a[:, 0], 1], "start": a[:, 1], "stop": a[:, 2]}
    t = routed.tables
    cores = {
        "row": pos[:, 0],
        "col": pos[:, 1],
        "neurons": alloc.neurons,
        "synapses": alloc.synapses,
        "weight_bytes": alloc.weight_bytes,
        "fan_in": alloc.fan_in,
        "fan_out": alloc.fan_out,
        "routing_entries": t.entries_per_core(part.num_cores),
    }
    return MappingResult(
        hardware=hw,
        algorithm=part.algorithm,
        placement_method=placed.method,
        layers=list(ng.layer_names),
        assignments=assignments,
        cores=cores,
        routing={"core": t.core, "layer": t.layer, "start": t.start, "stop": t.stop, "dest_indptr": t.dest_indptr, "dest": t.dest},
        flows={"src": routed.src, "dst": routed.dst, "packets": routed.packets, "hops": routed.hops},
        links={"east": routed.links.east, "west": routed.links.west, "south": routed.links.south, "north": routed.links.north},
        metrics=compute_metrics(routed, alloc),
        unmapped=list(ng.unmapped),
        layer_rates=np.array(
            [float(ng.rates[a:b].mean()) if b > a else 0.0 for a, b in zip(ng.layer_start[:-1], ng.layer_start[1:])], dtype=np.float64
        ),
    )
