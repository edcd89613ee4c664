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
    <name>_int<B>.t1c       the hardware graph: SpikingAffine layers, B-bit weights (stored as integers), mapping in metadata
    hardware.json           the hardware descriptor (talon.backend compile)
    lint.json analyze.json profile.json mapping.json simulate_float.json simulate_fixed.json energy.json
    summary.json            the headline numbers and every file written (schema talon.pipeline/1);
                            "status" is "complete", or "failed" with the stage and error that stopped it
    model.html              the offline graph view, with the mapping on the mesh
    memory.png cores.png raster.png firing_rates.png energy.png
    <backend>_project/      with a backend whose compile writes a project folder (fpga: the HLS project)

Everything that can be checked without running a stage is checked before the first one (the backend and
what it needs, the stimulus, the labels, the energy preset, the report folder), so bad arguments fail
before any file is written. A stage that fails leaves the files written so far and a summary.json whose
"status" is "failed"; a summary.json left by an earlier run in the same folder is removed first.
"""

from __future__ import annotations

import inspect
import os
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Plan:
    """What the preflight settled: the compile stage's backend and its extra arguments (a project folder
    for a backend whose compile writes one), the backend of the simulations and the energy profile, and
    the stimulus's batch size."""

    compiler: Any
    runner: Any
    compile_kw: dict[str, Any]
    project_dir: str | None
    batch_size: int


def _converted_types(graph: Any, weight_bits: int | None) -> set[str]:
    """The primitive types of the hardware graph the convert stage will make (Affine/Linear become
    SpikingAffine when converting)."""
    from talon.sdk.convert import SPIKING_CONVERTIBLE

    types = {node.type_name for node in graph.nodes.values()}
    if weight_bits:
        types = {"SpikingAffine" if t in SPIKING_CONVERTIBLE else t for t in types}
    return types


def fold_for_hardware(graph: Any) -> tuple[Any, dict[str, str]]:
    """`graph` with every batch norm that follows a conv/affine layer folded into it (talon.sdk
    fold_batchnorm: the same affine map, computed in float64 and stored in the layer's dtype), and
    {batch norm: layer it was folded into}. Fixed-point hardware has no batch-norm rule; folded, the layer
    is an ordinary synaptic layer. A graph without batch norms is returned as it is."""
    from talon.sdk.convert import BATCHNORMS, fold_batchnorm

    if not any(node.type_name in BATCHNORMS for node in graph.nodes.values()):
        return graph, {}
    folded = fold_batchnorm(graph)
    into = {n: next(s for s, d in graph.edges if d == n) for n, node in graph.nodes.items() if node.type_name in BATCHNORMS and n not in folded.nodes}
    return folded, into


def _check_labels(labels: Any, graph: Any, batch_size: int) -> None:
    import numpy as np

    from talon.errors import TalonUsageError

    arr = np.asarray(labels)
    if len(graph.output_names) != 1:
        raise TalonUsageError(f"labels need a graph with one Output (accuracy decodes it); this one has {len(graph.output_names)}: {graph.output_names}")
    if arr.dtype.kind not in "iub" and not (arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
        raise TalonUsageError(f"labels must be whole class numbers, got an array of {arr.dtype}")
    n = int(arr.reshape(-1).shape[0])
    if n != batch_size:
        raise TalonUsageError(f"{n} labels for a stimulus of {batch_size} sample(s): give one label per sample")


def _preflight(graph: Any, out: str, *, inputs: Any, labels: Any, n_steps: int | None, calibration_inputs: Any, weight_bits: int | None,
               energy_preset: str, backend: str, compile_dir: str | os.PathLike | None, compile_options: dict[str, Any] | None) -> _Plan:
    """Check everything that can be checked before the first stage runs; raise a TalonError naming the
    argument at fault. Returns the backends and compile arguments the stages will use."""
    from talon.backend import get_backend
    from talon.backend.energy import list_energy_presets
    from talon.backend.registry import backends_that_can
    from talon.backend.spike_inputs import priced_spike_inputs
    from talon.backend.stimulus import make_stimulus
    from talon.errors import BackendError, TalonUsageError

    if os.path.exists(out) and not os.path.isdir(out):
        raise TalonUsageError(f"the report folder {out} is a file")
    # the backend: it must compile; a compile that writes a project folder gets one in the report folder
    be = get_backend(backend)
    caps = be.capabilities
    if not caps.compile:
        able = backends_that_can("compile")
        raise BackendError(f"backend {backend!r} cannot compile, which the pipeline's compile stage needs; backends that can: {able}")
    if caps.primitives is not None:
        missing = sorted(_converted_types(graph, weight_bits) - set(caps.primitives))
        if missing:
            raise BackendError(f"backend {backend!r} cannot compile primitives {missing} of this graph; it supports {sorted(caps.primitives)}")
    params = inspect.signature(be.compile).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    compile_kw = dict(compile_options or {})
    unknown = sorted(k for k in compile_kw if k not in params and not takes_any)
    if unknown:
        raise TalonUsageError(f"backend {backend!r}: compile takes no option {unknown}")
    project_dir = None
    if "out_dir" in params:
        project_dir = os.fspath(compile_dir) if compile_dir is not None else os.path.join(out, f"{backend}_project")
        if os.path.exists(project_dir) and not os.path.isdir(project_dir):
            raise TalonUsageError(f"the {backend} project folder {project_dir} is a file")
        compile_kw["out_dir"] = project_dir
    elif compile_dir is not None:
        raise TalonUsageError(f"compile_dir: backend {backend!r} writes no project folder (its compile returns a hardware descriptor)")
    # the simulations (float and fixed point) and the energy profile: on the backend when it can run
    # them, else on the cpu backend, whose fixed-point numerics are the hardware's (docs/fixed_point.md)
    runs = caps.simulate and caps.profile and {"float", "fixed"} <= set(caps.modes)
    runner = be if runs else get_backend("cpu")
    if runner.name == "cpu":  # the fixed-point simulation: every node must have a fixed-point rule
        from talon.backend.cpu.fixed_plan import check_supported

        check_supported(fold_for_hardware(graph)[0])  # the convert stage folds batch norms first
    if energy_preset not in list_energy_presets():
        raise BackendError(f"unknown energy preset {energy_preset!r}; available: {list_energy_presets()}")
    # the stimulus (shapes, steps), the calibration stimulus and the labels
    shapes = {n: tuple(graph.nodes[n].shape) for n in graph.input_names}
    stim = make_stimulus(inputs, shapes, n_steps)
    priced_spike_inputs(graph, stim)  # refuses a stimulus that is not spikes for an Input that declares them
    if calibration_inputs is not None:
        make_stimulus(calibration_inputs, shapes, n_steps)
    if labels is not None:
        _check_labels(labels, graph, stim.batch_size)
    return _Plan(be, runner, compile_kw, project_dir, stim.batch_size)


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
    algorithm: str = "auto",
    energy_preset: str = "45nm_cmos",
    backend: str = "cpu",
    plots: bool = True,
    html: bool = True,
    strict: bool = True,
    log: Log | None = None,
    compile_dir: str | os.PathLike | None = None,
    compile_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run every stage on `model` (a Graph or .t1c path) and write the report folder `out_dir`.

    inputs: the stimulus for both simulations (see talon.backend.stimulus; a (T, B, ...) sequence
    gives one sample per batch entry); labels: one class per sample, to report accuracies.
    calibration_inputs: what the fixed-point formats are calibrated on (default: `inputs`).
    weight_bits: convert Affine/Linear to SpikingAffine with weights quantized to this many bits
    (None: run the graph as it is). hardware: a talon.mapping.HardwareSpec (default HardwareSpec()).
    strict: stop (GraphValidationError) when lint reports errors.
    backend: the compile stage's backend. One whose compile writes a project folder (fpga) writes it to
    `compile_dir` (default `<out_dir>/<backend>_project`); `compile_options` are further keyword
    arguments of its compile (fpga: {"part": "zu9eg"}). The simulations and the energy profile run on
    the backend when it can simulate and profile in float and fixed point, else on the cpu backend.

    Everything checkable is checked before the first stage (TalonError, nothing written). When a stage
    fails, summary.json says "status": "failed", the stage and the error, and the error is raised.
    Returns the summary dict (also written to summary.json).
    """
    from talon.ir import Graph, read

    say = log or (lambda msg: None)
    out = os.fspath(out_dir)
    graph = model if isinstance(model, Graph) else read(model)
    plan = _preflight(graph, out, inputs=inputs, labels=labels, n_steps=n_steps, calibration_inputs=calibration_inputs, weight_bits=weight_bits,
                      energy_preset=energy_preset, backend=backend, compile_dir=compile_dir, compile_options=compile_options)
    os.makedirs(out, exist_ok=True)
    summary_path = os.path.join(out, "summary.json")
    if os.path.lexists(summary_path):  # an earlier run's: this run's summary replaces it, complete or failed
        os.remove(summary_path)
    files: dict[str, str] = {}
    timings: dict[str, float] = {}
    summary: dict[str, Any] = {"model": name, "out_dir": os.path.abspath(out), "status": "running"}
    current = {"stage": "load"}
    try:
        _stages(graph, out, name, summary, files, timings, current, plan, say, inputs=inputs, labels=labels, n_steps=n_steps,
                calibration_inputs=calibration_inputs, weight_bits=weight_bits, hardware=hardware, algorithm=algorithm,
                energy_preset=energy_preset, plots=plots, html=html, strict=strict)
    except BaseException as exc:
        lines = str(exc).strip().splitlines()
        summary.update(status="failed", failed_stage=current["stage"], error=f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": "))
        summary["files"] = dict(files, summary=summary_path)
        summary["timings_s"] = timings
        try:
            write_document(summary_path, "pipeline", summary)
            say(f"{current['stage']}: failed; {summary_path} marks the report as failed")
        except OSError:
            pass
        raise
    summary["status"] = "complete"
    summary["files"] = dict(files)
    summary["timings_s"] = timings
    files["summary"] = summary_path
    summary["files"]["summary"] = files["summary"]
    write_document(files["summary"], "pipeline", summary)
    return summary


def _stages(graph: Any, out: str, name: str, summary: dict[str, Any], files: dict[str, str], timings: dict[str, float], current: dict[str, str],
            plan: _Plan, say: Log, *, inputs: Any, labels: Any, n_steps: int | None, calibration_inputs: Any, weight_bits: int | None, hardware: Any,
            algorithm: str, energy_preset: str, plots: bool, html: bool, strict: bool) -> None:
    """The stages, in order, filling `summary`, `files` and `timings`; `current["stage"]` names the one running."""
    from talon.backend.descriptor import HardwareDescriptor
    from talon.errors import GraphValidationError
    from talon.ir import write
    from talon.sdk import analyze_graph, convert_to_spiking, lint_graph, profile_graph, quantize_weights

    def path(fname: str, key: str) -> str:
        p = os.path.join(out, fname)
        files[key] = p
        return p

    def stage(label: str):
        class _Stage:
            def __enter__(self):
                current["stage"] = label
                self.t0 = time.perf_counter()
                return self

            def __exit__(self, *exc):
                timings[label] = time.perf_counter() - self.t0
                return False

        return _Stage()

    # load
    with stage("load"):
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
        if prof.spike_inputs:
            say(f"analyze: input(s) {', '.join(map(repr, prof.spike_inputs))} carry spikes: {prof.spike_ops:,} of the MACs/step are driven by spikes "
                f"(layers {', '.join(prof.spike_driven_layers)}), priced per spike")
        if plots:
            from talon.viz.plots import memory_breakdown, save_figure

            files["memory_plot"] = save_figure(memory_breakdown(graph, profile=prof), os.path.join(out, "memory.png"))
    # convert
    with stage("convert"):
        hw_graph, folded = fold_for_hardware(graph)
        if folded:
            summary["folded_batchnorms"] = folded
            say("convert: folded " + ", ".join(f"{bn!r} into {layer!r}" for bn, layer in folded.items()) +
                " (batch norm has no fixed-point rule; folded, the layer computes the same affine map in float)")
        if weight_bits:
            # On the hardware's power-of-two grid (the integers fixed-point mode loads), which the .t1c file
            # stores as those integers and their exponent: exact, and a quarter of the float32 bytes.
            hw_graph, qrep = quantize_weights(convert_to_spiking(hw_graph, weight_bits), weight_bits, power_of_two=True, return_report=True)
            summary["quantization"] = {"bits": weight_bits, "max_abs_error": qrep.max_abs_error, "worst_relative_error": qrep.worst_relative_error}
            say(f"convert: SpikingAffine with {weight_bits}-bit weights (worst relative weight error {qrep.worst_relative_error:.2%})")
    # map
    with stage("map"):
        from talon.mapping import HardwareSpec, map_graph

        spec = hardware if hardware is not None else HardwareSpec()
        mapping = map_graph(hw_graph, spec, algorithm)
        mapping.attach(hw_graph)
        hw_path = path(f"{name}_int{weight_bits}.t1c" if weight_bits else f"{name}_hw.t1c", "hardware_graph")
        write_document(path("mapping.json", "mapping"), "map", {"file": hw_path, **mapping_payload(mapping, hw_graph)})
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
    be = plan.runner
    cal = calibration_inputs if calibration_inputs is not None else inputs
    summary["backends"] = {"compile": plan.compiler.name, "simulate": be.name, "profile": be.name}
    # compile
    with stage("compile"):
        # one calibration, of `n_steps` steps as the descriptor's: hardware.json's formats are those of the
        # fixed-point simulation reported below (a constant input calibrated separately ran its default 10)
        kept = be.calibrate(hw_graph, cal, n_steps) if hasattr(be, "calibrate") else None
        compile_cal = {"calibration": kept} if plan.compiler is be and kept is not None else {"calibration_inputs": cal, "n_steps": n_steps}
        built = plan.compiler.compile(hw_graph, **compile_cal, **plan.compile_kw)
        desc = built if isinstance(built, HardwareDescriptor) else getattr(built, "descriptor", None)
        if desc is not None:
            desc.save(path("hardware.json", "descriptor"), format="json")
            say(f"compile: hardware descriptor, {len(desc.meta['nodes'])} layers, {sum(a.nbytes for a in desc.arrays.values()):,} bytes of integer arrays")
        if plan.project_dir is not None:
            files["project"] = getattr(built, "path", plan.project_dir)
            est = getattr(built, "estimates", None)
            summary["compile"] = {
                "backend": plan.compiler.name, "project": files["project"], "files": len(getattr(built, "files", []) or []),
                "estimates": est.to_dict() if hasattr(est, "to_dict") else None,
            }
            say(f"compile: {plan.compiler.name} project in {files['project']}" + (f" ({est.latency_cycles:,} cycles per step, estimate)" if hasattr(est, "latency_cycles") else ""))
        if be is not plan.compiler:
            say(f"compile: simulations and the energy profile run on the {be.name} backend ({plan.compiler.name} cannot simulate in float and fixed point)")
    # simulate
    with stage("simulate"):
        sim_float = be.simulate(graph, inputs, n_steps, mode="float")
        # the mapped layers' per-step activity is recorded (as `talon energy` records it), so that the energy
        # profile below routes each neuron's own spikes (exact NoC traffic) instead of spreading a layer's count
        from talon.backend.cpu.profiler import noc_record_names

        record = noc_record_names(hw_graph, mapping, sim_float.timesteps_run, max(sim_float.batch_size, 1)) or None
        sim_fixed = be.simulate(hw_graph, inputs, n_steps, mode="fixed", record=record,
                                 **({"calibration": kept} if kept is not None else {"calibration_inputs": cal}))
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
        if sim_fixed.agreement:
            say("simulate: fixed/float spike agreement per layer: " + ", ".join(f"{n} {a:.4f}" for n, a in sim_fixed.agreement.items()))
        if sim_fixed.fixed_point is not None:
            summary["simulation"]["calibration"] = sim_fixed.fixed_point.calibration.description
        if plots:
            from talon.viz.plots import firing_rates, save_figure, spike_raster

            raster_sim = be.simulate(hw_graph, _first_sample(inputs), n_steps, mode="float", record="spikes")
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
            "spike_inputs": dict(sim_fixed.spike_inputs),
        }
        say(f"profile: {energy.energy_estimate_uj:.4g} uJ and {energy.total_latency_us:.4g} us per sample ({energy.timesteps} steps, {energy.energy_preset})")
        for name, why in sim_fixed.spike_inputs.items():
            say(f"profile: input {name!r} priced as spikes ({why})")
        if plots:
            from talon.viz.plots import energy_breakdown, save_figure

            files["energy_plot"] = save_figure(energy_breakdown(energy), os.path.join(out, "energy.png"))
    if html:
        with stage("html"):
            from talon.viz.html import export_html

            files["html"] = export_html(hw_graph, os.path.join(out, "model.html"), mapping=mapping, simulation=sim_fixed, title=f"{name} (hardware graph)")
