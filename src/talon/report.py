"""The JSON documents TALON writes about its results (schemas in docs/cli.md): one function per result
type, shared by the `talon` commands' --json output and the report folder of talon.pipeline, so a
`talon analyze --json` document and a report's analyze.json are the same thing.

Layer: beside talon.cli and talon.pipeline (it knows the result types of talon.sdk, talon.mapping and
talon.backend), but it reads them by attribute only and imports nothing heavy, so `talon analyze` and
`talon lint` stay fast. Non-finite numbers follow talon._json's policy (they become null).
The documents only the CLI shows (node, compare, convert) are built next to their commands.
"""

from __future__ import annotations

import os
from typing import Any

from talon._json import dumps

SCHEMA_VERSION = 1


def document(command: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The document of `command`: {"schema": "talon.<command>/1", **payload}."""
    return {"schema": f"talon.{command}/{SCHEMA_VERSION}", **payload}


def document_text(command: str, payload: dict[str, Any]) -> str:
    """The document of `command` as indented JSON text."""
    return dumps(document(command, payload), indent=2)


def write_document(path: str | os.PathLike, command: str, payload: dict[str, Any]) -> str:
    """Write the document of `command` to `path` (indented JSON and a final newline), atomically
    (talon.ir._atomic); returns the path."""
    from talon.ir._atomic import atomic_write_text

    return atomic_write_text(path, document_text(command, payload) + "\n")


# -- talon.sdk --------------------------------------------------------------------------------------------

def analyze_payload(stats: Any) -> dict[str, Any]:
    """talon.analyze/1 (without "file") of a talon.sdk.GraphStats."""
    return {
        "totals": {
            "params": stats.total_params,
            "neuron_params": stats.neuron_params,
            "param_bytes": stats.total_bytes,
            "macs": stats.total_macs,
            "flops": stats.total_flops,
            "synapses": stats.total_synapses,
            "neurons": stats.num_neurons,
            "depth": stats.depth,
            "width": stats.width,
            "num_nodes": stats.num_nodes,
            "num_edges": stats.num_edges,
            "spiking_layers": stats.num_spiking_layers,
            "stateful_layers": stats.num_stateful_layers,
        },
        "dt": stats.dt,
        "type_counts": dict(stats.type_counts),
        "inputs": {k: list(v) for k, v in stats.input_shapes.items()},
        "spike_inputs": list(stats.spike_inputs),
        "outputs": {k: list(v) for k, v in stats.output_shapes.items()},
        "layers": [
            {
                "name": s.name,
                "type": s.type_name,
                "input_shapes": [list(x) for x in s.input_shapes],
                "output_shapes": [list(x) for x in s.output_shapes],
                "params": s.cost.params,
                "param_bytes": s.cost.param_bytes,
                "macs": s.cost.macs,
                "flops": s.cost.flops,
                "neurons": s.cost.neurons,
                "state_elements": s.cost.state_elements,
                "activation_elements": s.cost.activation_elements,
                "synapses": s.cost.synapses,
                "fan_in": s.cost.fan_in,
                "fan_out": s.cost.fan_out,
            }
            for s in stats.layers.values()
        ],
    }


def budget_payload(p: Any, budget: int | None) -> dict[str, Any] | None:
    """The memory-budget check of a talon.sdk.HardwareProfile: the budget in bytes, the total memory it
    is checked against, whether it fits, by how much it is over, and the weight bit widths whose
    quantized total would fit. None without a budget."""
    if budget is None:
        return None
    total = int(p.total_memory)
    return {
        "bytes": int(budget),
        "total": total,
        "fits": total <= budget,
        "over_by": max(total - int(budget), 0),
        "fits_with_quantized_weights": sorted((int(b) for b, m in p.quantized_total_memory.items() if m <= budget), reverse=True),
    }


def profile_payload(p: Any, budget: int | None = None) -> dict[str, Any]:
    """talon.profile/1 (without "file" and "plot") of a talon.sdk.HardwareProfile; `budget` (bytes)
    adds the memory-budget check (budget_payload; null without one)."""
    return {
        "memory": {
            "weights": p.weight_memory,
            "activations": p.activation_memory,
            "state": p.state_memory,
            "total": p.total_memory,
            "quantized_weights": {str(b): m for b, m in p.quantized_weight_memory.items()},
            "quantized_total": {str(b): m for b, m in p.quantized_total_memory.items()},
            "activation_bytes": p.activation_bytes,
            "state_bytes": p.state_bytes,
        },
        "ops": {"macs": p.mac_ops, "spike_ops": p.spike_ops, "spike_events": p.spike_events},
        "largest_layer": p.largest_layer,
        "largest_layer_params": p.largest_layer_params,
        "peak_activation_node": p.peak_activation_node,
        "spike_driven_layers": list(p.spike_driven_layers),
        "spike_inputs": list(p.spike_inputs),
        "recommendations": list(p.recommendations),
        "budget": budget_payload(p, budget),
    }


def lint_payload(result: Any) -> dict[str, Any]:
    """talon.lint/1 (without "file") of a talon.sdk.LintResult."""
    return {
        "valid": result.is_valid,
        "counts": {"error": len(result.errors), "warning": len(result.warnings), "info": len(result.infos)},
        "issues": [{"severity": i.severity.value, "code": i.code, "node": i.node, "message": i.message} for i in result.issues],
    }


# -- talon.mapping ----------------------------------------------------------------------------------------

def placed_counts(result: Any, graph: Any) -> dict[str, int]:
    """What a mapping places on cores, split by kind: {"total", "inputs", "neurons"}. The mapping places
    every Input's elements as spike sources beside the neurons (docs/mapping.md), so its metrics' and
    cores' "neurons" count both: total = inputs + neurons."""
    sizes = result.layer_sizes()
    inputs = set(graph.input_names)
    n_in = sum(v for k, v in sizes.items() if k in inputs)
    n_neurons = sum(v for k, v in sizes.items() if k not in inputs)
    return {"total": int(n_in + n_neurons), "inputs": int(n_in), "neurons": int(n_neurons)}


def mapping_payload(result: Any, graph: Any = None) -> dict[str, Any]:
    """talon.map/1 (without "file", "output", "plot") of a talon.mapping.MappingResult; per-core use is
    the result's own neuron_utilisation / memory_utilisation. With the mapped `graph`, "placed" splits
    what was placed into input elements and neurons (placed_counts; null without the graph)."""
    c = result.cores
    neuron_use, memory_use = result.neuron_utilisation, result.memory_utilisation
    cores = []
    for i in range(len(c["row"])):
        cores.append({
            "core": i, "row": int(c["row"][i]), "col": int(c["col"][i]), "neurons": int(c["neurons"][i]), "synapses": int(c["synapses"][i]),
            "weight_bytes": int(c["weight_bytes"][i]), "fan_in": int(c["fan_in"][i]), "fan_out": int(c["fan_out"][i]),
            "routing_entries": int(c["routing_entries"][i]),
            "neuron_utilisation": float(neuron_use[i]),
            "memory_utilisation": float(memory_use[i]),  # inf (no weight memory at all) is written as null
        })
    assignments = {
        layer: [{k: int(a[k][j]) for k in ("core", "row", "col", "start", "stop")} for j in range(len(a["core"]))]
        for layer, a in result.assignments.items()
    }
    return {
        "hardware": result.hardware.to_dict(),
        "algorithm": result.algorithm,
        "placement": result.placement_method,
        "layers": list(result.layers),
        "metrics": dict(result.metrics),
        "placed": placed_counts(result, graph) if graph is not None else None,
        "cores": cores,
        "assignments": assignments,
        "unmapped": list(result.unmapped),
        "timings": dict(result.timings),
    }


# -- talon.backend ----------------------------------------------------------------------------------------

def output_array(value: Any) -> Any:
    """A backend output (torch tensor or array) as a float64 numpy array, without importing torch."""
    import numpy as np

    return np.asarray(value.detach().cpu() if hasattr(value, "detach") else value, dtype=np.float64)


def simulation_payload(sim: Any) -> dict[str, Any]:
    """talon.simulate/1 (without "file", "plots", "saved_outputs") of a backend SimulationResult."""
    layers = []
    for name, count in sim.spike_counts.items():
        layers.append({
            "name": name,
            "neurons": int(sim.neurons.get(name, 0)),
            "spikes": int(count),
            "firing_rate": float(sim.firing_rates.get(name, 0.0)),
            "agreement": (sim.agreement or {}).get(name),
        })
    outputs = {}
    for name, value in sim.outputs.items():
        arr = output_array(value)
        summed = arr.sum(axis=0)  # over time: (B, *shape)
        outputs[name] = {
            "shape": list(arr.shape),
            "sum_over_time": summed.tolist() if summed.size <= 4096 else None,
            "argmax": summed.reshape(summed.shape[0], -1).argmax(axis=1).tolist() if summed.ndim >= 2 and summed.size else None,
        }
    return {
        "backend": sim.backend,
        "mode": sim.mode,
        "steps": sim.timesteps_run,
        "batch_size": sim.batch_size,
        "stimulus": sim.stimulus,
        "spike_inputs": dict(sim.spike_inputs),
        "outputs_valid": sim.outputs_valid,
        "total_spikes": sim.total_spikes,
        "layers": layers,
        "input_events": {k: int(v) for k, v in sim.input_events.items()},
        "outputs": outputs,
        "wall_time_s": sim.wall_time_s,
    }


def energy_payload(p: Any) -> dict[str, Any]:
    """talon.energy/1 (without "file" and "plot") of a backend energy profile."""
    return {
        "backend": p.backend,
        "mode": p.mode,
        "energy_preset": p.energy_preset,
        "timesteps": p.timesteps,
        "batch_size": p.batch_size,
        "latency_us": p.total_latency_us,
        "cycles": p.total_cycles,
        "clock_mhz": p.clock_mhz,
        "energy_uj": {
            "total": p.energy_estimate_uj,
            "mac": p.mac_energy_uj,
            "spike": p.spike_energy_uj,
            "neuron": p.neuron_energy_uj,
            "elementwise": p.elementwise_energy_uj,
            "sram": p.sram_energy_uj,
            "noc": p.noc_energy_uj,
        },
        "energy_per_step_uj": p.energy_per_step_uj,
        "peak_memory_bytes": p.peak_memory_bytes,
        "spike_inputs": dict(p.simulation.spike_inputs) if p.simulation is not None else {},
        "op_costs_pj": dict(p.op_costs_pj),
        "layers": [
            {
                "name": lp.name, "type": lp.type_name, "event_driven": lp.event_driven, "energy_uj": lp.energy_uj, "latency_us": lp.latency_us,
                "cycles": lp.cycles, "macs": lp.macs, "accumulates": lp.accumulates, "neuron_updates": lp.neuron_updates,
                "elementwise_ops": lp.elementwise_ops, "sram_bytes": lp.sram_bytes, "input_events": lp.input_events,
            }
            for lp in p.layers.values()
        ],
        "noc": noc_payload(p),
    }


def _link(link: Any) -> dict[str, list[int]] | None:
    return None if link is None else {"from": list(link[0]), "to": list(link[1])}


def noc_payload(p: Any) -> dict[str, Any] | None:
    """The network-on-chip part of a profile of a mapped graph (None when the graph was not mapped):
    traffic, latency and where packets queue, per step and over the run (docs/energy.md)."""
    cg = getattr(p, "noc_congestion", None)
    if cg is None:
        return None
    return {
        "packets": p.noc_packets,
        "packet_hops": p.noc_packet_hops,
        "energy_uj": p.noc_energy_uj,
        "latency_us": p.noc_latency_us,
        "route_latency_us": cg.route_latency_us,
        "congestion_latency_us": cg.congestion_latency_us,
        "congested_steps": cg.congested_steps,
        "over_bandwidth_steps": cg.over_bandwidth_steps,
        "exact": cg.exact,
        "latency_per_hop_ns": cg.latency_per_hop_ns,
        "packet_time_ns": cg.packet_time_ns,
        "busiest_link": _link(cg.busiest_link),
        "max_link_load": cg.max_link_load,
        "busiest_step": cg.busiest_step,
        "top_links": [{"link": _link(t["link"]), "peak_load": t["peak_load"], "packets": t["packets"]} for t in cg.top_links(10)],
        "steps": [
            {"step": t, "latency_us": lat, "route_latency_us": route, "max_link_load": load, "busiest_link": _link(link)}
            for t, (lat, route, load, link) in enumerate(
                zip(cg.step_latency_us, cg.step_route_latency_us, cg.step_max_link_load, cg.step_busiest_link)
            )
        ],
    }
