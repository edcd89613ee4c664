"""Energy and latency of a simulated run, from the cost table (talon.sdk.cost) and the simulator's counters.

Every count below comes from `talon.sdk.cost` (per node, per sample, per step) or from the run itself
(spike events); the energies per operation come from an EnergyPreset (talon.backend.energy) and the
cycle counts from a LatencyModel. docs/energy.md derives each term; in short, per sample over T steps:

- MAC energy: layers on real-valued input do every MAC: macs * T * E_mac.
- spike (AC) energy: layers fed by spikes (sdk.profile_graph's spike_driven_layers) do one
  accumulate per input spike per synapse it drives: input_events * fan_out * E_ac. No spikes, no energy.
  An Input carries spikes when it declares them (`Input.spikes`) or the run fed it a binary stimulus
  (`SimulationResult.spike_inputs`, talon.backend.spike_inputs): the first layer is then event-driven.
- neuron energy: neurons * T updates, each one multiply (the leak, or the gain without leak) and
  (cost-table ops - 1) adds.
- elementwise energy: the other operations of the cost table (activations, pooling comparisons, residual
  adds; for event-driven layers the per-step bias adds) priced as adds.
- SRAM energy: bytes moved, priced per 64-bit access from the SRAM size class of the memory that holds
  them: weights (all of them per step for dense layers, one row per input spike for event-driven ones),
  other parameters (once per step), neuron state (read and written every step), activations (written by
  each producer and read by each consumer once per step; spike tensors are bitmaps, one bit each).

The network-on-chip part of a mapped graph (`add_noc`) reads each mapped layer's activity from the run and
hands it to talon.mapping.traffic, which owns the packets, hops and link loads.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any
from dataclasses import dataclass

import numpy as np

from talon.errors import BackendError
from talon.ir import Graph
from talon.sdk.cost import NodeCost, graph_costs
from talon.sdk.profile import profile_graph

from talon.mapping import traffic as noc_model

from talon.backend.base import LayerProfile, NocCongestion, ProfileResult, SimulationResult
from talon.backend.energy import EnergyPreset, get_energy_preset, op_costs
from talon.backend.spike_inputs import pricing_graph


@dataclass(frozen=True)
class LatencyModel:
    """A layer-sequential accelerator: within a step the layers run one after another, each layer's
    operations spread over its parallel units; per step a layer takes

        compute = (ceil(MACs/mac_units) + ceil(ACs/ac_units) + ceil(neuron updates/neuron_units)
                   + ceil(elementwise ops/elementwise_units)) * cycles_per_op
        memory  = ceil(SRAM bytes / sram_bytes_per_cycle)
        cycles  = max(compute, memory) + layer_overhead_cycles

    (compute and memory traffic overlap; the slower bounds the layer). Event-driven work (ACs) is the
    run's average per step. Steps run one after another; views and Input nodes take no cycles.
    Defaults are assumptions of a small FPGA-class design (100 MHz, the clock of Fan & Levy 2025's
    Artix-7 SNN, arXiv 2507.07284), not measurements; change them to match a design.
    """

    clock_mhz: float = 100.0
    mac_units: int = 64
    ac_units: int = 64
    neuron_units: int = 64
    elementwise_units: int = 64
    cycles_per_op: int = 1
    sram_bytes_per_cycle: int = 32
    layer_overhead_cycles: int = 8

    def __post_init__(self) -> None:
        if not self.clock_mhz > 0:
            raise BackendError(f"LatencyModel.clock_mhz must be > 0, got {self.clock_mhz}")
        for name in ("mac_units", "ac_units", "neuron_units", "elementwise_units", "cycles_per_op", "sram_bytes_per_cycle"):
            if getattr(self, name) < 1:
                raise BackendError(f"LatencyModel.{name} must be >= 1")
        if self.layer_overhead_cycles < 0:
            raise BackendError("LatencyModel.layer_overhead_cycles must be >= 0")


@dataclass(frozen=True)
class Precision:
    """Bytes per stored element in the profiled numeric mode."""

    weight_bytes: float
    param_bytes: float
    activation_bytes: float
    state_bytes: float
    spike_bits: int = 1


def precision_for(mode: str, fixed_config=None) -> Precision:
    if mode == "float":
        return Precision(4, 4, 4, 4)
    cfg = fixed_config
    return Precision(
        weight_bytes=cfg.weight_bits / 8,
        param_bytes=4,
        activation_bytes=math.ceil(cfg.activation_bits / 8),
        state_bytes=math.ceil(cfg.membrane_bits / 8),
    )


def _sram_pj(preset: EnergyPreset, nbytes: float, memory_bytes: int) -> float:
    per_read, _ = preset.sram_read_pj(max(int(memory_bytes), 1))
    return nbytes / 8.0 * per_read


def profile_run(
    graph: Graph,
    sim: SimulationResult,
    *,
    energy_preset: str | EnergyPreset = "45nm_cmos",
    latency: LatencyModel | None = None,
    fixed_config=None,
) -> ProfileResult:
    """Price the run `sim` of `graph` (see the module docstring)."""
    preset = get_energy_preset(energy_preset)
    latency = latency or LatencyModel()
    mode = sim.mode
    if mode == "fixed" and fixed_config is None:
        raise BackendError("profiling a fixed-point run needs its FixedPointConfig")
    ops = op_costs(preset, mode, **({"weight_bits": fixed_config.weight_bits, "activation_bits": fixed_config.activation_bits} if mode == "fixed" else {}))
    prec = precision_for(mode, fixed_config)
    # the Inputs the run found to carry spikes (declared, or fed a binary stimulus) are priced as spikes
    graph = pricing_graph(graph, sim.spike_inputs)
    costs: dict[str, NodeCost] = graph_costs(graph)
    if mode == "float":
        hw = profile_graph(graph, activation_bytes=int(prec.activation_bytes), state_bytes=int(prec.state_bytes))
        peak = hw.total_memory
    else:
        hw = profile_graph(graph, activation_bytes=int(prec.activation_bytes), state_bytes=int(prec.state_bytes), quantized_bits=(fixed_config.weight_bits,))
        peak = hw.quantized_total_memory[fixed_config.weight_bits]
    driven = set(hw.spike_driven_layers)
    spike_valued = _spike_valued_outputs(graph, costs)
    consumers: dict[str, int] = {n: 0 for n in graph.nodes}
    for s, _ in graph.edges:
        consumers[s] += 1

    T, B = sim.timesteps_run, max(sim.batch_size, 1)
    layers: dict[str, LayerProfile] = {}
    total_cycles = 0
    for name, node in graph.nodes.items():
        c = costs[name]
        event = name in driven and c.event_macs > 0
        events = sim.input_events.get(name, 0) / B  # per sample, whole run
        if event:
            accumulates = events * c.fan_out
            macs = (c.macs - c.event_macs) * T  # e.g. SepConv2d's pointwise stage
        else:
            accumulates = 0.0
            macs = c.macs * T
        neuron_updates = c.neurons * T if c.neurons and c.state_elements else 0
        if neuron_updates:
            neuron_ops = c.flops * T
            neuron_pj = neuron_updates * ops.mult + max(neuron_ops - neuron_updates, 0) * ops.add
        else:
            neuron_ops, neuron_pj = 0, 0.0
        elementwise = 0 if neuron_updates else max(c.flops - 2 * c.macs, 0) * T
        if c.neurons and not c.state_elements:  # Threshold: comparisons
            elementwise = c.flops * T
        if event and getattr(node, "bias", None) is not None:
            elementwise += c.activation_elements * T  # bias added once per output per step

        # memory traffic (bytes per sample over the run)
        weight_elems = c.weight_elements
        if event:
            weight_traffic = accumulates * prec.weight_bytes + (c.macs - c.event_macs) / max(c.macs, 1) * weight_elems * prec.weight_bytes * T
        else:
            weight_traffic = weight_elems * prec.weight_bytes * T if c.macs else 0.0
        other_param_traffic = (c.params - weight_elems) * prec.param_bytes * T
        state_traffic = 2 * c.state_elements * prec.state_bytes * T
        if c.view:
            act_traffic = 0.0
        else:
            out_bytes = c.activation_elements * (prec.spike_bits / 8 if spike_valued.get(name) else prec.activation_bytes)
            in_bytes = sum(
                costs[p].activation_elements * (prec.spike_bits / 8 if spike_valued.get(p) else prec.activation_bytes) for p in graph.predecessors(name)
            )
            act_traffic = (out_bytes + in_bytes) * T if node.type_name != "Input" else out_bytes * T
        weight_mem = weight_elems * prec.weight_bytes
        sram_pj = (
            _sram_pj(preset, weight_traffic, weight_mem)
            + _sram_pj(preset, other_param_traffic, (c.params - weight_elems) * prec.param_bytes)
            + _sram_pj(preset, state_traffic, c.state_elements * prec.state_bytes)
            + _sram_pj(preset, act_traffic, c.activation_elements * prec.activation_bytes)
        )
        sram_bytes = weight_traffic + other_param_traffic + state_traffic + act_traffic

        # latency (cycles per sample): per step, with event-driven work averaged over the steps
        if c.view or node.type_name == "Input" or T == 0:
            cycles = 0
        else:
            compute = (
                math.ceil(macs / T / latency.mac_units)
                + math.ceil(accumulates / T / latency.ac_units)
                + math.ceil(neuron_updates / T / latency.neuron_units)
                + math.ceil(elementwise / T / latency.elementwise_units)
            ) * latency.cycles_per_op
            memory = math.ceil(sram_bytes / T / latency.sram_bytes_per_cycle)
            cycles = (max(compute, memory) + latency.layer_overhead_cycles) * T
        total_cycles += cycles

        layers[name] = LayerProfile(
            name=name,
            type_name=node.type_name,
            event_driven=event,
            macs=int(macs),
            accumulates=int(round(accumulates)),
            neuron_updates=int(neuron_updates),
            elementwise_ops=int(elementwise),
            sram_bytes=int(round(sram_bytes)),
            mac_energy_uj=macs * ops.mac * 1e-6,
            spike_energy_uj=accumulates * ops.ac * 1e-6,
            neuron_energy_uj=neuron_pj * 1e-6,
            elementwise_energy_uj=elementwise * ops.add * 1e-6,
            sram_energy_uj=sram_pj * 1e-6,
            cycles=int(cycles),
            latency_us=cycles / latency.clock_mhz,
            input_events=int(round(events)),
        )

    # exactly rounded sums (math.fsum): a total does not depend on the order of the layers or of the parts
    tot = lambda attr: math.fsum(getattr(lp, attr) for lp in layers.values())  # noqa: E731
    parts = {k: tot(k) for k in ("mac_energy_uj", "spike_energy_uj", "neuron_energy_uj", "elementwise_energy_uj", "sram_energy_uj")}
    return ProfileResult(
        backend=sim.backend,
        mode=mode,
        energy_preset=preset.name,
        timesteps=T,
        batch_size=B,
        total_latency_us=total_cycles / latency.clock_mhz,
        total_cycles=int(total_cycles),
        clock_mhz=latency.clock_mhz,
        energy_estimate_uj=math.fsum(parts.values()),
        peak_memory_bytes=int(peak),
        layers=layers,
        op_costs_pj={"mac": ops.mac, "ac": ops.ac, "add": ops.add, "mult": ops.mult},
        derivation=dict(ops.derivation),
        simulation=sim,
        **parts,
    )


def _spike_valued_outputs(graph: Graph, costs: dict[str, NodeCost]) -> dict[str, bool]:
    """Whether each node's output is spikes: the sdk's rule (spiking nodes, and spike-preserving nodes fed
    only by spikes), not a copy of it."""
    from talon.sdk import spike_valued_nodes

    return spike_valued_nodes(graph, costs)


def resolve_mapping(graph: Graph, mapping: Any = None) -> Any:
    """The MappingResult to use: the one given, else the one stored in the graph, else None."""
    if mapping is not None or "talon_mapping" not in graph.metadata:
        return mapping
    from talon.mapping import MappingResult

    return MappingResult.from_graph(graph)


#: Record per-neuron spikes (and Input values) of the mapped layers for the NoC model when a profile runs
#: its own simulation and the recording stays below this many elements (T x B x neurons); above it the
#: model spreads each layer's spike count evenly over its neurons.
NOC_RECORD_LIMIT = 5_000_000

def noc_record_names(graph: Graph, mapping: Any, n_steps: int, batch: int) -> list[str]:
    """Mapped layers whose per-step activity `profile` records for the NoC model: spiking layers and
    Inputs (whose values the runtime received; empty above the limit)."""
    sizes = mapping.layer_sizes()
    names = [n for n in mapping.layers if n in graph.nodes and (graph.nodes[n].spiking or graph.nodes[n].type_name == "Input")]
    return names if sum(sizes[n] for n in names) * max(n_steps, 1) * max(batch, 1) <= NOC_RECORD_LIMIT else []


def _layer_activity(graph: Graph, sim: SimulationResult, mapping: Any, name: str, k: int, size: int):
    """(per-neuron spikes per sample over the run, (T, B, n) bool spikes or None, how it was obtained).

    A recorded Input is its values as the runtime received them: one packet per non-zero value per step
    (a graded packet carrying the value, priced like a spike packet; zeros send nothing)."""
    T, B = sim.timesteps_run, max(sim.batch_size, 1)
    rec = sim.spikes.get(name)
    if rec is not None and int(np.prod(tuple(rec.shape[2:]), dtype=np.int64)) == size:
        fired = np.asarray(rec.detach().cpu() != 0 if hasattr(rec, "detach") else np.asarray(rec) != 0).reshape(rec.shape[0], rec.shape[1], size)
        node = graph.nodes.get(name)
        how = "recorded non-zero input values" if node is not None and node.type_name == "Input" else "recorded spikes"
        return fired.sum(axis=(0, 1)).astype(np.float64) / B, fired, how
    if name in sim.spike_counts and sim.neurons.get(name, size) == size:
        return np.full(size, sim.spike_counts[name] / B / max(size, 1)), None, "simulated spike count, spread evenly"
    node = graph.nodes.get(name)
    if node is not None and node.type_name == "Input":
        # Non-zero input elements, as counted by a consumer that reads only this input.
        for s in graph.successors(name):
            if s in sim.input_events and graph.predecessors(s) == [name]:
                return np.full(size, sim.input_events[s] / B / max(size, 1)), None, f"non-zero inputs counted at {s!r}, spread evenly"
    if mapping.layer_rates is not None:
        rate, how = float(mapping.layer_rates[k]), "rate the mapping assumed"
    else:
        rate, how = 1.0, "no simulated activity and no stored mapping rate: 1 spike/neuron/step (map_graph's default)"
    return np.full(size, rate * T), None, how


def noc_traffic(graph: Graph, sim: SimulationResult, mapping: Any) -> dict[str, Any]:
    """NoC packets, packet-hops and per-step link loads per sample over the run, from the run's activity
    (talon.mapping.traffic.noc_traffic, with each layer's activity read from `sim` by _layer_activity)."""
    return noc_model.noc_traffic(mapping, lambda name, k, size: _layer_activity(graph, sim, mapping, name, k, size),
                               sim.timesteps_run, max(sim.batch_size, 1))


def noc_congestion(traffic: dict[str, Any], hw: Any) -> tuple[NocCongestion, np.ndarray]:
    """The NocCongestion of a noc_traffic result, and the (T, B) NoC latency of every step and sample
    (seconds): the larger of its longest active route and the busiest link's queueing bound
    (talon.mapping.traffic.noc_congestion)."""
    fields, step_s = noc_model.noc_congestion(traffic, hw)
    return NocCongestion(**fields), step_s


def add_noc(result: ProfileResult, graph: Graph, mapping: Any = None) -> ProfileResult:
    """Add the network-on-chip part of a mapped graph to a profile (docs/energy.md).

    `mapping` is a talon.mapping.MappingResult; None uses the mapping stored in graph.metadata (if any).
    The traffic comes from the run's activity (noc_traffic): energy = packet-hops x energy_per_hop;
    latency = per step, the larger of the longest active route x latency_per_hop and the busiest link's
    queueing bound (noc_congestion), summed over the steps.
    """
    mapping = resolve_mapping(graph, mapping)
    if mapping is None:
        derivation = dict(result.derivation, noc="no mapping: NoC traffic not modelled (map the graph with talon.mapping to add it)")
        return dataclasses.replace(result, derivation=derivation)
    sim = result.simulation
    if sim is None:
        raise BackendError("the network-on-chip model needs the profile's simulation")
    hw = mapping.hardware
    traffic = noc_traffic(graph, sim, mapping)
    cg, _ = noc_congestion(traffic, hw)
    e_hop, t_hop = hw.energy_per_hop, hw.latency_per_hop
    layers = dict(result.layers)
    for name, ph in traffic["packet_hops"].items():
        if name in layers:
            layers[name] = dataclasses.replace(
                layers[name], noc_packets=int(round(traffic["packets"][name])), noc_packet_hops=int(round(ph)), noc_energy_uj=ph * e_hop * 1e6
            )
    total_hops = float(sum(traffic["packet_hops"].values()))
    total_packets = float(sum(traffic["packets"].values()))
    energy_uj = total_hops * e_hop * 1e6
    latency_us = cg.latency_us
    by_source: dict[str, list[str]] = {}
    for name, how in traffic["sources"].items():
        by_source.setdefault(how, []).append(name)
    sources = "; ".join(f"{how}: {', '.join(names)}" for how, names in by_source.items())
    where = (
        f"busiest link {cg.busiest_link[0]}->{cg.busiest_link[1]} with {cg.max_link_load:,.1f} packets in step {cg.busiest_step}"
        if cg.busiest_link is not None else "no packets"
    )  # fmt: skip
    derivation = dict(
        result.derivation,
        noc=(
            f"{total_packets:,.1f} packets, {total_hops:,.1f} packet-hops per sample over {result.timesteps} steps "
            f"(one packet per spike per other destination core of its routing entry, XY hops) x {e_hop * 1e12:g} pJ/hop "
            f"= {energy_uj:.6f} uJ; latency {latency_us:.3f} us = per step the larger of the longest active route "
            f"x {t_hop * 1e9:g} ns/hop ({cg.route_latency_us:.3f} us in all) and the busiest link's queueing "
            f"(hops to, across and from it x {t_hop * 1e9:g} ns + (packets - 1) x {hw.packet_time * 1e9:g} ns/packet), "
            f"which adds {cg.congestion_latency_us:.3f} us in {cg.congested_steps} steps; {where}; "
            f"{'per-step activity recorded' if cg.exact else 'upper bound: some layers charged their longest route and most packets every step'}; "
            f"mapping on {hw.describe()}; activity per source layer from {sources}"
        ),
    )
    return dataclasses.replace(
        result,
        layers=layers,
        noc_energy_uj=energy_uj,
        noc_latency_us=latency_us,
        noc_packets=total_packets,
        noc_packet_hops=total_hops,
        noc_congestion=cg,
        energy_estimate_uj=result.energy_estimate_uj + energy_uj,
        total_latency_us=result.total_latency_us + latency_us,
        derivation=derivation,
    )
