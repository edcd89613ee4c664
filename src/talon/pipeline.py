"""The whole flow in one call: load -> lint -> analyze -> convert -> map -> compile -> simulate -> profile,
writing a report folder. `talon pipeline` is a thin command-line wrapper around `run_pipeline`, and
examples/end_to_end.py calls it directly.

Layer: a library module beside talon.cli (layer 3 of ARCHITECTURE.md). It sequences the public APIs of
talon.sdk, talon.mapping, talon.backend and talon.viz, so it cannot live in any of them: talon.sdk and
talon.mapping never import torch, talon.backend may import only talon.ir, talon.sdk and talon.bridge,
and talon.viz never imports torch. Every import of those packages happens inside `run_pipeline`, so
importing this module costs nothing. It only sequences the stages and writes what they return, as the documents of
talon.report (the same JSON the `talon` commands print). The report folder holds:

    <name>.t1c              the input graph (float)
    <name>_int<B>.t1c       the hardware graph: SpikingAffine layers, B-bit weights, mapping in metadata
    hardware.json           the hardware descriptor (talon.backend compile)
    lint.json analyze.json profile.json mapping.json simulate_float.json simulate_fixed.json energy.json
    summary.json            the headline numbers and every file written (schema talon.pipeline/1)
    model.html              the offline graph view, with the mapping on the mesh
    memory.png cores.png raster.png firing_rates.png energy.png
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

from talon.report import (
    analyze_payload,
    energy_payload,
    lint_payload,
    mapping_payload,
    output_array,
    profile_payload,
    simulation_payload,
    write_document,
)

Log = Callable[[str], None]


def accuracy(sim: Any, labels: Any) -> float:
    """Fraction of samples whose Output, summed over time, is largest at the label (spike-count decoding)."""
    import numpy as np

    out = output_array(sim.output)
    pred = out.sum(axis=0).reshape(out.shape[1], -1).argmax(axis=1)
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != pred.shape[0]:
        from talon.errors import TalonUsageError

        raise TalonUsageError(f"{labels.shape[0]} labels for a batch of {pred.shape[0]} samples")
    return float((pred == labels).mean())


def _first_sample(inputs: Any) -> Any:
    """The first sample of an (T, B, ...) sequence (or None for the default stimulus)."""
    if inputs is None:
        return None
    if isinstance(inputs, dict):
        return {k: _first_sample(v) for k, v in inputs.items()}
    if hasattr(inputs, "ndim") and inputs.ndim >= 3:
        return inputs[:, :1]
    return inputs


def run_pipeline(
    model: Any,
    out_dir: str | os.PathLike,
    *,
    name: str = "model",
    inputs: Any = None,
    labels: Any = None,
    n_steps: int | None = None,
    calibration_inputs: Any = None,
    weight_bits: int | None = 8,
    hardware: Any = None,
    algorithm: str = "metis",
    energy_preset: str = "45nm_cmos",
    backend: str = "cpu",
    plots: bool = True,
    html: bool = True,
    strict: bool = True,
    log: Log | None = None,
) -> dict[str, Any]:
    """Run every stage on `model` (a Graph or .t1c path) and write the report folder `out_dir`.

    inputs: the stimulus for both simulations (see talon.backend.stimulus; a (T, B, ...) sequence
    gives one sample per batch entry); labels: one class per sample, to report accuracies.
    calibration_inputs: what the fixed-point formats are calibrated on (default: `inputs`).
    weight_bits: convert Affine/Linear to SpikingAffine with weights quantized to this many bits
    (None: run the graph as it is). hardware: a talon.mapping.HardwareSpec (default HardwareSpec()).
    strict: stop (GraphValidationError) when lint reports errors. Returns the summary dict
    (also written to summary.json).
    """
    from talon.backend import get_backend
    from talon.errors import GraphValidationError
    from talon.ir import Graph, read, write
    from talon.sdk import analyze_graph, convert_to_spiking, lint_graph, profile_graph, quantize_weights

    say = log or (lambda msg: None)
    out = os.fspath(out_dir)
    os.makedirs(out, exist_ok=True)
    files: dict[str, str] = {}
    timings: dict[str, float] = {}
    summary: dict[str, Any] = {"model": name, "out_dir": os.path.abspath(out)}

    def path(fname: str, key: str) -> str:
        p = os.path.join(out, fname)
        files[key] = p
        return p

    def stage(label: str):
        class _Stage:
            def __enter__(self):
                self.t0 = time.perf_counter()
                return self

            def __exit__(self, *exc):
                timings[label] = time.perf_counter() - self.t0
                return False

        return _Stage()

    # load
    with stage("load"):
        graph = model if isinstance(model, Graph) else read(model)
        write(path(f"{name}.t1c", "graph"), graph)
    # lint
    with stage("lint"):
        lint = lint_graph(graph)
        write_document(path("lint.json", "lint"), "lint", {"file": files["graph"], **lint_payload(lint)})
        summary["lint"] = {"errors": len(lint.errors), "warnings": len(lint.warnings), "notes": len(lint.infos)}
        say(f"lint: {len(lint.errors)} error(s), {len(lint.warnings)} warning(s), {len(lint.infos)} note(s)")
        if strict and lint.errors:
            raise GraphValidationError(f"lint found {len(lint.errors)} error(s), first: {lint.errors[0]}")
    # analyze (+ static memory profile)
    with stage("analyze"):
        stats = analyze_graph(graph)
        an = analyze_payload(stats)
        write_document(path("analyze.json", "analyze"), "analyze", {"file": files["graph"], **an})
        prof = profile_graph(graph)
        write_document(path("profile.json", "profile"), "profile", {"file": files["graph"], **profile_payload(prof)})
        summary["analyze"] = an["totals"]
        t = an["totals"]
        say(f"analyze: {t['params']:,} params, {t['macs']:,} MACs/step, {t['neurons']:,} neurons, depth {t['depth']}")
        if plots:
            from talon.viz.plots import memory_breakdown, save_figure

            files["memory_plot"] = save_figure(memory_breakdown(graph, profile=prof), os.path.join(out, "memory.png"))
    # convert
    with stage("convert"):
        hw_graph = graph
        if weight_bits:
            hw_graph, qrep = quantize_weights(convert_to_spiking(graph, weight_bits), weight_bits, return_report=True)
            summary["quantization"] = {"bits": weight_bits, "max_abs_error": qrep.max_abs_error, "worst_relative_error": qrep.worst_relative_error}
            say(f"convert: SpikingAffine with {weight_bits}-bit weights (worst relative weight error {qrep.worst_relative_error:.2%})")
    # map
    with stage("map"):
        from talon.mapping import HardwareSpec, map_graph

        spec = hardware if hardware is not None else HardwareSpec()
        mapping = map_graph(hw_graph, spec, algorithm)
        mapping.attach(hw_graph)
        hw_path = path(f"{name}_int{weight_bits}.t1c" if weight_bits else f"{name}_hw.t1c", "hardware_graph")
        write_document(path("mapping.json", "mapping"), "map", {"file": hw_path, **mapping_payload(mapping)})
        m = mapping.metrics
        summary["mapping"] = {
            "hardware": spec.name, "mesh": list(spec.mesh), "cores_used": m["cores_used"], "max_neuron_utilisation": m["max_neuron_utilisation"],
            "max_memory_utilisation": m["max_memory_utilisation"], "packet_hops_per_step": m["packet_hops_per_step"], "noc_energy_per_step_j": m["noc_energy_per_step"],
        }
        say(f"map: {m['cores_used']} core(s) of a {spec.mesh[0]}x{spec.mesh[1]} mesh, neuron use max {m['max_neuron_utilisation']:.0%}, {m['packet_hops_per_step']:,.0f} packet-hops/step (worst case)")
        write(hw_path, hw_graph)
        if plots:
            from talon.viz.plots import core_utilisation, save_figure

            files["cores_plot"] = save_figure(core_utilisation(mapping), os.path.join(out, "cores.png"))
    be = get_backend(backend)
    cal = calibration_inputs if calibration_inputs is not None else inputs
    # compile
    with stage("compile"):
        desc = be.compile(hw_graph, calibration_inputs=cal, n_steps=n_steps)
        desc.save(path("hardware.json", "descriptor"), format="json")
        say(f"compile: hardware descriptor, {len(desc.meta['nodes'])} layers, {sum(a.nbytes for a in desc.arrays.values()):,} bytes of integer arrays")
    # simulate
    with stage("simulate"):
        sim_float = be.simulate(graph, inputs, n_steps, "float")
        sim_fixed = be.simulate(hw_graph, inputs, n_steps, "fixed", calibration_inputs=cal)
        for key, sim in (("simulate_float", sim_float), ("simulate_fixed", sim_fixed)):
            write_document(path(f"{key}.json", key), "simulate", {"file": files["graph" if sim is sim_float else "hardware_graph"], **simulation_payload(sim), "plots": {}})
        summary["simulation"] = {
            "steps": sim_fixed.timesteps_run, "samples": sim_fixed.batch_size, "stimulus": sim_fixed.stimulus,
            "firing_rates_float": dict(sim_float.firing_rates), "firing_rates_fixed": dict(sim_fixed.firing_rates),
            "fixed_float_agreement": dict(sim_fixed.agreement or {}),
        }
        if labels is not None:
            summary["accuracy"] = {"float": accuracy(sim_float, labels), "fixed": accuracy(sim_fixed, labels)}
            say(f"simulate: accuracy float {summary['accuracy']['float']:.2%}, fixed-point {summary['accuracy']['fixed']:.2%} on {sim_fixed.batch_size} samples x {sim_fixed.timesteps_run} steps")
        else:
            say(f"simulate: {sim_fixed.batch_size} sample(s) x {sim_fixed.timesteps_run} steps, {sim_float.total_spikes:,} spikes float, {sim_fixed.total_spikes:,} fixed")
        if plots:
            from talon.viz.plots import firing_rates, save_figure, spike_raster

            raster_sim = be.simulate(hw_graph, _first_sample(inputs), n_steps, "float", record="spikes")
            files["raster_plot"] = save_figure(spike_raster(raster_sim, layers=list(hw_graph.nodes), title="spike raster (hardware graph, first sample)"), os.path.join(out, "raster.png"))
            rates = {"float": sim_float.firing_rates, "fixed": sim_fixed.firing_rates}
            files["rates_plot"] = save_figure(firing_rates(rates), os.path.join(out, "firing_rates.png"))
    # profile
    with stage("profile"):
        energy = be.profile(hw_graph, energy_preset=energy_preset, mode="fixed", simulation=sim_fixed)
        write_document(path("energy.json", "energy"), "energy", {"file": files["hardware_graph"], **energy_payload(energy), "plot": None})
        summary["energy"] = {
            "preset": energy.energy_preset, "energy_per_sample_uj": energy.energy_estimate_uj, "latency_per_sample_us": energy.total_latency_us,
            "energy_per_step_uj": energy.energy_per_step_uj, "peak_memory_bytes": energy.peak_memory_bytes,
        }
        say(f"profile: {energy.energy_estimate_uj:.4g} uJ and {energy.total_latency_us:.4g} us per sample ({energy.timesteps} steps, {energy.energy_preset})")
        if plots:
            from talon.viz.plots import energy_breakdown, save_figure

            files["energy_plot"] = save_figure(energy_breakdown(energy), os.path.join(out, "energy.png"))
    if html:
        with stage("html"):
            from talon.viz.html import export_html

            files["html"] = export_html(hw_graph, os.path.join(out, "model.html"), mapping=mapping, simulation=sim_fixed, title=f"{name} (hardware graph)")
    summary["files"] = dict(files)
    summary["timings_s"] = timings
    files["summary"] = os.path.join(out, "summary.json")
    summary["files"]["summary"] = files["summary"]
    write_document(files["summary"], "pipeline", summary)
    return summary
