"""Mapping and whole-flow commands: map (talon.mapping; no torch) and pipeline (a thin wrapper around
talon.pipeline.run_pipeline: options in, report folder out)."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

import click

from talon.cli._common import (
    SEED,
    STEPS,
    ByteSize,
    InputFile,
    command_options,
    console,
    emit_json,
    esc,
    graph_argument,
    json_option,
    load_graph,
    plot_option,
    prepare_plot,
    save_figure,
)


def hardware_options(fn: Callable) -> Callable:
    """--hardware FILE / --hw-preset NAME, overridden field by field by --mesh, --neurons-per-core, ..."""
    opts = [
        click.option("--hardware", "hardware_file", type=InputFile(exists=True), default=None, help="HardwareSpec as JSON (the fields of talon.mapping.HardwareSpec)."),
        click.option("--hw-preset", default=None, metavar="NAME", help="A talon.mapping preset: small, loihi-like, truenorth-like, mesh-32x32."),
        click.option("--mesh", default=None, metavar="ROWSxCOLS", help="Mesh size, e.g. 4x4."),
        click.option("--neurons-per-core", type=click.IntRange(min=1), default=None),
        click.option("--weight-memory", "weight_memory", type=ByteSize(), default=None, metavar="SIZE", help="Weight memory per core: bytes, or with a unit (64KiB, 1MB)."),
        click.option("--weight-bits", "hw_weight_bits", type=click.IntRange(1, 64), default=None, help="Bits per stored synapse."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def build_hardware(hardware_file: str | None, hw_preset: str | None, mesh: str | None, neurons_per_core: int | None, weight_memory: int | None, hw_weight_bits: int | None) -> Any:
    from talon.errors import TalonError
    from talon.mapping import HardwareSpec, HardwareSpecError, preset

    if hardware_file and hw_preset:
        raise click.UsageError("give --hardware or --hw-preset, not both")
    if hardware_file:
        try:
            with open(hardware_file, encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError) as exc:
            raise TalonError(f"cannot read hardware description {hardware_file!r}: {exc}") from None
        except RecursionError:
            raise click.BadParameter(f"{hardware_file}: JSON nested too deeply to be a hardware description", param_hint="--hardware") from None
        doc = doc.get("hardware", doc) if isinstance(doc, dict) else doc  # also accepts a mapping.json
        try:
            spec = HardwareSpec.from_dict(doc)
        except HardwareSpecError as exc:  # name the file: the message alone names only the field
            raise HardwareSpecError(f"{hardware_file}: {exc}") from None
        except TalonError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            raise click.BadParameter(f"{hardware_file}: not a hardware description ({type(exc).__name__}: {str(exc)[:200]})", param_hint="--hardware") from None
    elif hw_preset:
        spec = preset(hw_preset)
    else:
        spec = HardwareSpec()
    changes: dict[str, Any] = {}
    if mesh:
        m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", mesh)
        if not m:
            raise click.BadParameter(f"{mesh!r} is not ROWSxCOLS (e.g. 4x4)", param_hint="--mesh")
        changes["mesh"] = (int(m.group(1)), int(m.group(2)))
    if neurons_per_core is not None:
        changes["neurons_per_core"] = neurons_per_core
    if weight_memory is not None:
        changes["weight_memory_bytes_per_core"] = weight_memory
    if hw_weight_bits is not None:
        changes["weight_bits"] = hw_weight_bits
    if changes:
        from dataclasses import replace

        spec = replace(spec, **changes)
    return spec


@click.command("map")
@graph_argument
@hardware_options
@click.option("--algorithm", type=click.Choice(["auto", "metis", "spectral", "greedy"]), default="auto", show_default=True,
              help="Partitioning algorithm; auto tries each and keeps the mapping with the fewest packet-hops per step.")
@click.option("--rate", "default_rate", type=click.FloatRange(0.0, 1.0), default=1.0, show_default=True, help="Assumed spikes per neuron per step (1.0: worst case).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str), default=None, help="Write the graph with the mapping in its metadata to this .t1c.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@plot_option("Save a core-utilisation heatmap to PATH.")
@json_option
@command_options
def map_cmd(graph_path: str, hardware_file, hw_preset, mesh, neurons_per_core, weight_memory, hw_weight_bits, algorithm: str, default_rate: float,
            output: str | None, seed: int, plot_path: str | None, as_json: bool) -> None:
    """Partition, place and route MODEL.t1c on a mesh of cores. A graph that does not fit is an
    error (exit 2) saying which resource, on which core, by how much.

    Each Input's elements are placed on cores as spike sources beside the neurons, so the counts of
    placed elements (per core and in total) are input elements + neurons (docs/mapping.md)."""
    from talon.mapping import map_graph
    from talon.report import mapping_payload

    spec = build_hardware(hardware_file, hw_preset, mesh, neurons_per_core, weight_memory, hw_weight_bits)
    prepare_plot(plot_path)
    g = load_graph(graph_path)
    # a spinner with the current step, only on a terminal and never with --json (stdout stays the document)
    term = console()
    status = term.status("mapping", spinner="dots") if (not as_json and term.is_terminal) else None
    if status is not None:
        status.start()
    try:
        result = map_graph(g, spec, algorithm, default_rate=default_rate, seed=seed, attach=output is not None,
                           progress=None if status is None else (lambda msg: status.update(f"mapping: {msg}")))
    finally:
        if status is not None:
            status.stop()
    payload = {"file": graph_path, **mapping_payload(result, g), "output": output, "plot": None}
    if output:
        from talon.ir import write

        write(output, g)
    if plot_path:
        from talon.viz.plots import core_utilisation

        payload["plot"] = save_figure(core_utilisation(result), plot_path)
    if as_json:
        emit_json("map", payload)
        return
    from rich.table import Table

    c = console()
    placed = payload["placed"]
    lines = result.summary().splitlines()
    m = payload["metrics"]
    # the library's first line says "mapping of N neurons", N counting the input elements too: say what N counts
    head = (f"mapping of {placed['total']:,} placed elements ({placed['inputs']:,} input elements + {placed['neurons']:,} neurons), "
                f"{m['synapses']:,} synapses, on {result.hardware.describe()}")
    if lines and lines[0].startswith("mapping of "):
        lines[0] = head
    else:
        lines.insert(0, head)
    c.print("\n".join(lines), markup=False)
    t = Table(title="cores (placed: input elements + neurons)")
    for col in ("core", "(row, col)", "placed", "use", "weight bytes", "use ", "fan-in", "fan-out", "layers"):
        t.add_column(col, justify="left" if col in ("(row, col)", "layers") else "right")
    held: dict[int, list[str]] = {}
    for layer, runs in payload["assignments"].items():
        for r in runs:
            held.setdefault(r["core"], []).append(f"{layer}[{r['start']}:{r['stop']}]")
    for core in payload["cores"]:
        mem = core["memory_utilisation"]
        t.add_row(str(core["core"]), f"({core['row']}, {core['col']})", f"{core['neurons']:,}", f"{core['neuron_utilisation']:.0%}", f"{core['weight_bytes']:,}",
                  f"{mem:.0%}" if mem is not None else "-", str(core["fan_in"]), str(core["fan_out"]), esc(", ".join(held.get(core["core"], []))))
    c.print(t)
    if output:
        c.print(f"wrote {output} (mapping in its metadata)", markup=False)
    if plot_path:
        c.print(f"plot: {payload['plot']}", markup=False)


@click.command("pipeline")
@graph_argument
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=str), help="Report folder (created).")
@click.option("--input", "input_path", type=InputFile(exists=True), default=None, help="Stimulus (.npy/.npz) for both simulations; default: the documented uniform stimulus.")
@click.option("--labels", "labels_path", type=InputFile(exists=True), default=None, help=".npy of one class per sample: report float and fixed-point accuracy.")
@click.option("--calibrate", "calib_path", type=InputFile(exists=True), default=None, help="Calibration stimulus for the fixed-point formats (default: --input).")
@click.option("--rate-encode", is_flag=True, help="Treat --input/--calibrate as firing probabilities (Bernoulli rate coding).")
@click.option("--steps", "n_steps", type=STEPS, default=None, help="Timesteps, at most 10,000,000 (default: the input's length, else 10).")
@click.option("--bits", "weight_bits", type=click.IntRange(2, 32), default=8, show_default=True, help="Convert to SpikingAffine with this many weight bits.")
@click.option("--no-convert", is_flag=True, help="Run the graph as it is (no SpikingAffine conversion).")
@hardware_options
@click.option("--algorithm", type=click.Choice(["auto", "metis", "spectral", "greedy"]), default="auto", show_default=True,
              help="Partitioning algorithm (see talon map).")
@click.option("--preset", "energy_preset", default="45nm_cmos", show_default=True, help="Energy preset.")
@click.option("--backend", "backend_name", default="cpu", show_default=True,
              help="Backend of the compile stage (see 'talon info'). fpga writes the HLS project to DIR/fpga_project; "
                   "a backend that cannot simulate leaves the simulations and the energy profile to cpu.")
@click.option("--part", default=None, metavar="PART", help="--backend fpga: part preset or part string (default zynq7020).")
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots and the HTML view.")
@click.option("--allow-lint-errors", is_flag=True, help="Go on when lint reports errors.")
@json_option
@command_options
def pipeline(graph_path: str, out_dir: str, input_path, labels_path, calib_path, rate_encode: bool, n_steps, weight_bits: int, no_convert: bool,
             hardware_file, hw_preset, mesh, neurons_per_core, weight_memory, hw_weight_bits, algorithm: str, energy_preset: str, backend_name: str,
             part: str | None, no_plots: bool, allow_lint_errors: bool, as_json: bool) -> None:
    """load -> lint -> analyze -> convert -> map -> compile -> simulate (float and fixed) -> profile,
    writing every result into a report folder (see docs/cli.md).

    The inputs (files, stimulus shapes and steps, labels, backend, energy preset) are checked before the
    first stage. A stage that fails exits 2 and leaves DIR/summary.json with "status": "failed"."""
    import os

    from talon.cli.run_cmds import _read_arrays, load_inputs
    from talon.pipeline import run_pipeline

    spec = build_hardware(hardware_file, hw_preset, mesh, neurons_per_core, weight_memory, hw_weight_bits)
    g = load_graph(graph_path)
    inputs = load_inputs(input_path, g, rate_encode, n_steps=n_steps)
    calib = load_inputs(calib_path, g, rate_encode, n_steps=n_steps, option="--calibrate") if calib_path else None
    labels = None
    if labels_path:
        labels = _read_arrays(labels_path, "--labels")
        _check_labels(labels, labels_path, inputs, input_path, g)
    compile_options = None
    if part is not None:
        if backend_name != "fpga":
            raise click.UsageError(f"--part is for --backend fpga (the backend here is {backend_name})")
        from talon.backend.fpga.parts import resolve_part

        resolve_part(part)  # an unknown part is an error now, not after five stages
        compile_options = {"part": part}
    c = console(stderr=as_json)
    name = os.path.splitext(os.path.basename(graph_path))[0] or "model"
    status = c.status("running the pipeline", spinner="dots") if c.is_terminal else None
    if status is not None:
        status.start()
    try:
        summary = run_pipeline(
            g, out_dir, name=name, inputs=inputs, labels=labels, n_steps=n_steps, calibration_inputs=calib,
            weight_bits=None if no_convert else weight_bits, hardware=spec, algorithm=algorithm, energy_preset=energy_preset,
            backend=backend_name, plots=not no_plots, html=not no_plots, strict=not allow_lint_errors,
            log=lambda msg: c.print(msg, markup=False), compile_options=compile_options,
        )
    finally:
        if status is not None:
            status.stop()
    if as_json:
        emit_json("pipeline", summary)
        return
    c.print(f"report: {summary['out_dir']}", markup=False)


def _batch_size(inputs: Any, graph: Any) -> int | None:
    """Samples in a stimulus read from --input (1 for the default stimulus); None when it cannot be told
    from the arrays' shapes (the backend checks those)."""
    if inputs is None:
        return 1
    if not isinstance(inputs, dict):
        inputs = {graph.input_names[0]: inputs}
    sizes = set()
    for name, value in inputs.items():
        arr = getattr(value, "rates", value)  # a RateEncoder holds its probabilities as `rates`
        shape = getattr(graph.nodes[name], "shape", None)
        if shape is None or not hasattr(arr, "shape"):
            return None
        lead = len(arr.shape) - len(shape)
        if lead == 0:
            sizes.add(1)
        elif lead in (1, 2):
            sizes.add(int(arr.shape[lead - 1]))
        else:
            return None
    return sizes.pop() if len(sizes) == 1 else None


def _check_labels(labels: Any, labels_path: str, inputs: Any, input_path: str | None, graph: Any) -> None:
    """--labels holds one whole class number per sample of --input."""
    import numpy as np

    from talon.errors import TalonUsageError

    if isinstance(labels, dict):
        raise TalonUsageError(f"--labels {labels_path}: give a .npy of class numbers, not a .npz")
    arr = np.asarray(labels)
    n = int(arr.size)
    batch = _batch_size(inputs, graph)
    if batch is not None and n != batch:
        where = f"--input {input_path}" if input_path else "the default stimulus"
        raise TalonUsageError(f"--labels {labels_path}: {n} labels, but {where} has {batch} sample(s); give one label per sample")


COMMANDS = [map_cmd, pipeline]
