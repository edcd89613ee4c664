"""Commands that run a model (talon.backend; these import torch): simulate, energy, compile.
Mapping commands (map, pipeline) live in map_cmds."""

from __future__ import annotations

import os
from typing import Any

import click

from talon.cli._common import (
    SEED,
    STEPS,
    InputFile,
    command_options,
    console,
    emit_json,
    graph_argument,
    json_option,
    load_graph,
    plot_option,
    prepare_output,
    prepare_plot,
    save_figure,
)
from talon.report import energy_payload, simulation_payload

backend_option = click.option("--backend", "backend_name", default="cpu", show_default=True, help="Backend to run on (see 'talon info').")
steps_option = click.option("--steps", "n_steps", type=STEPS, default=None, help="Timesteps, at most 10,000,000 (default: the input's length, else 10).")
input_option = click.option(
    "--input", "input_path", type=InputFile(exists=True), default=None,
    help="Stimulus: .npy of shape S, (B, *S) or (T, B, *S); or .npz with one array per Input node. Default: the documented uniform [0, 1) stimulus.",
)
rate_option = click.option("--rate-encode", is_flag=True, help="Treat --input as firing probabilities in [0, 1] (Bernoulli rate coding).")
mode_option = click.option("--mode", type=click.Choice(["float", "fixed"]), default="float", show_default=True, help="Float32 or hardware fixed-point numerics.")

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def _read_arrays(path: str, option: str) -> Any:
    """The array (.npy) or {name: array} (.npz) in `path`; TalonError naming `option` for anything else."""
    import numpy as np

    from talon.errors import TalonError

    what = f"{option} {path}"
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise TalonError(f"{what}: cannot read the file ({exc.strerror or exc})") from None
    if not (magic.startswith(_NPY_MAGIC) or magic.startswith(_ZIP_MAGIC)):
        raise TalonError(f"{what}: not a .npy/.npz array file (save stimuli with numpy.save or numpy.savez)")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.lib.npyio.NpzFile):
            with data:
                return {k: data[k] for k in data.files}
        return data
    except ValueError as exc:
        if "pickle" in str(exc):
            raise TalonError(f"{what}: holds Python objects, not numbers; a stimulus is a numeric .npy/.npz array") from None
        raise TalonError(f"{what}: not a readable .npy/.npz array file ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file: say which and why, in one line
        raise TalonError(f"{what}: not a readable .npy/.npz array file ({exc})") from None


def load_inputs(path: str | None, graph: Any, rate_encode: bool = False, seed: int = 0, *, n_steps: int | None = None, option: str = "--input") -> Any:
    """Numpy arrays from --input, as the backend's `inputs` argument (torch imported by the backend).

    Checks what the command line can check before anything runs: the file is an array file, a .npy
    feeds a graph with one Input, a .npz names Input nodes, its values are finite (and, rate-encoded,
    in [0, 1]), and a (T, B, *S) sequence holds the --steps asked for."""
    if path is None:
        if rate_encode:
            raise click.BadParameter("needs --input", param_hint="--rate-encode")
        return None
    import numpy as np

    from talon.errors import TalonError

    data = _read_arrays(path, option)
    names = list(graph.input_names)
    if isinstance(data, dict):
        unknown = set(data) - set(names)
        if unknown:
            raise TalonError(f"{option} {path}: arrays {sorted(unknown)} name no Input node (inputs: {names})")
        inputs: Any = data
    else:
        if len(names) != 1:
            raise TalonError(f"{option} {path}: the graph has {len(names)} Input nodes {names}; give a .npz with one array per Input node, named after it")
        inputs = data
    arrays = inputs if isinstance(inputs, dict) else {names[0]: inputs}
    # the backend refuses non-finite stimuli too (stimulus.check_finite), but cannot name the option and file
    for name, arr in arrays.items():
        if arr.dtype.kind in "fc":
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if bad:
                raise TalonError(f"{option} {path}: input {name!r} holds {bad} non-finite value(s) (NaN or ±inf) of {arr.size}; replace or mask them")
    if n_steps is not None and not rate_encode:
        for name, arr in arrays.items():
            shape = getattr(graph.nodes[name], "shape", None)
            if shape is not None and arr.ndim == len(shape) + 2 and arr.shape[0] < n_steps:
                raise TalonError(f"{option} {path}: input {name!r} holds {arr.shape[0]} steps but --steps is {n_steps} (give --steps {arr.shape[0]} or fewer)")
    if rate_encode:
        from talon.backend.stimulus import RateEncoder
        from talon.errors import BackendError

        try:
            if isinstance(inputs, dict):
                inputs = {k: RateEncoder(v, seed=seed, name=k) for k, v in inputs.items()}
            else:
                inputs = RateEncoder(inputs, seed=seed, name=graph.input_names[0])
        except BackendError as exc:  # values outside [0, 1]: say which file and option
            raise TalonError(f"{option} {path} with --rate-encode: {exc}") from None
    return inputs


def get_backend(name: str) -> Any:
    from talon.backend import get_backend as _get

    return _get(name)


#: What to use instead when a backend cannot do what a command asks.
_INSTEAD = {
    ("fpga", "simulate"): "'talon verify MODEL.t1c' runs the fpga project's C simulation (bit-exact with "
                          "'talon simulate --backend cpu --mode fixed')",
    ("fpga", "profile"): "'talon compile MODEL.t1c --target fpga -o DIR' prints the fpga latency and resource estimates; "
                         "'talon energy --backend cpu --mode fixed' prices a run from its spikes",
}  # fmt: skip
_OPERATION_WORDS = {"simulate": "simulate", "profile": "profile energy and latency", "compile": "compile"}


def backend_for(name: str, operation: str, command: str, mode: str | None = None) -> Any:
    """The backend `name`, checked before anything runs: it exists, it can do `operation` ("simulate",
    "profile", "compile"; its capabilities say) and, when given, numeric `mode`. The error names the
    backend, the command and what can do it instead."""
    from talon.backend.registry import backends_that_can, list_backends
    from talon.errors import BackendError, TalonUsageError

    names = list_backends()
    if name not in names:
        raise TalonUsageError(f"--backend {name}: no such backend; available: {', '.join(names)} (see 'talon info')")
    be = get_backend(name)
    if not getattr(be.capabilities, operation, False):
        able = backends_that_can(operation)
        instead = _INSTEAD.get((name, operation))
        hint = instead or (f"use --backend {' or --backend '.join(able)}" if able else "no installed backend can")
        raise BackendError(f"backend {name!r} cannot {_OPERATION_WORDS.get(operation, operation)}, which 'talon {command}' needs: {hint}")
    if mode is not None and mode not in be.capabilities.modes:
        raise BackendError(f"backend {name!r} has no --mode {mode}; it supports {', '.join(be.capabilities.modes)}")
    return be


def _npz_path(path: str | None) -> str | None:
    """Where numpy.savez writes `path`: '.npz' is appended unless the name ends with it."""
    if path is None:
        return None
    return path if path.endswith(".npz") else path + ".npz"


# -- simulate ----------------------------------------------------------------------------------------------

@click.command("simulate")
@graph_argument
@steps_option
@input_option
@rate_option
@mode_option
@backend_option
@click.option("--calibrate", "calib_path", type=InputFile(exists=True), default=None,
              help="--mode fixed: calibration stimulus of the fixed-point formats (.npy/.npz, as --input; default: --input).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of --rate-encode.")
@click.option("--save-outputs", type=click.Path(dir_okay=False, path_type=str), default=None, help="Save every Output's (T, B, ...) values to this .npz file ('.npz' is added when the name lacks it).")
@plot_option("Save a spike raster to PATH.")
@click.option("--rates-plot", type=click.Path(dir_okay=False, path_type=str), default=None, help="Save per-layer firing rates to PATH.")
@json_option
@command_options
def simulate(graph_path: str, n_steps: int | None, input_path: str | None, rate_encode: bool, mode: str, backend_name: str, calib_path: str | None,
             seed: int, save_outputs: str | None, plot_path: str | None, rates_plot: str | None, as_json: bool) -> None:
    """Run MODEL.t1c step by step on a backend; report spikes, firing rates and outputs.

    With --mode fixed, also the per-layer spike agreement with a float run on the same stimulus; the
    fixed-point formats are calibrated on --calibrate (default: the stimulus itself)."""
    backend = backend_for(backend_name, "simulate", "simulate", mode)
    if calib_path and mode != "fixed":
        raise click.UsageError("--calibrate sets the fixed-point formats: it needs --mode fixed")
    save_outputs = prepare_output(_npz_path(save_outputs), "--save-outputs")
    prepare_plot(plot_path)
    prepare_plot(rates_plot, "--rates-plot")
    g = load_graph(graph_path)
    inputs = load_inputs(input_path, g, rate_encode, seed, n_steps=n_steps)
    kw = {"calibration_inputs": load_inputs(calib_path, g, rate_encode, seed, n_steps=n_steps, option="--calibrate")} if calib_path else {}
    sim = backend.simulate(g, inputs, n_steps, mode=mode, record="spikes" if plot_path else None, **kw)
    payload = simulation_payload(sim)
    payload["file"] = graph_path
    payload["plots"] = {}
    if sim.fixed_point is not None:
        payload["calibration"] = sim.fixed_point.calibration.description
    if save_outputs:
        import numpy as np

        from talon.ir._atomic import atomic_path

        with atomic_path(save_outputs) as tmp, open(tmp, "wb") as fh:  # a file object: savez adds no suffix
            np.savez(fh, **{k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for k, v in sim.outputs.items()})
        payload["saved_outputs"] = save_outputs
    if plot_path:
        from talon.viz.plots import spike_raster

        payload["plots"]["raster"] = save_figure(spike_raster(sim, layers=list(g.nodes)), plot_path)
    if rates_plot:
        from talon.viz.plots import firing_rates

        payload["plots"]["rates"] = save_figure(firing_rates(sim), rates_plot)
    if as_json:
        emit_json("simulate", payload)
        return
    c = console()
    c.print(sim.summary(), markup=False)
    c.print(f"stimulus: {sim.stimulus}; {sim.wall_time_s:.2f} s", markup=False)
    if sim.fixed_point is not None:
        c.print(f"fixed-point formats calibrated on: {sim.fixed_point.calibration.description}", markup=False)
    for name, o in payload["outputs"].items():
        if o["argmax"] is not None and len(o["argmax"]) <= 16:
            c.print(f"output {name}: shape {tuple(o['shape'])}, argmax of the sum over time {o['argmax']}", markup=False)
    if save_outputs:
        c.print(f"saved outputs: {save_outputs}", markup=False)
    for kind, path in payload["plots"].items():
        c.print(f"{kind} plot: {path}", markup=False)


# -- energy ------------------------------------------------------------------------------------------------

def hardware_mode(graph: Any) -> str | None:
    """'fixed' when `graph` targets fixed-point hardware (it holds SpikingAffine layers, whose weight_bits
    and accumulator_bits are the hardware's: `talon convert spiking`, the pipeline's <name>_int<B>.t1c),
    else None."""
    return "fixed" if any(node.type_name == "SpikingAffine" for node in graph.nodes.values()) else None


@click.command("energy")
@graph_argument
@steps_option
@input_option
@rate_option
@click.option("--mode", type=click.Choice(["float", "fixed"]), default=None,
              help="Float32 or hardware fixed-point numerics. Default: fixed for a graph with SpikingAffine layers (quantized for "
                   "hardware), else float; the output says which.")
@click.option("--calibrate", "calib_path", type=InputFile(exists=True), default=None,
              help="--mode fixed: calibration stimulus of the fixed-point formats (.npy/.npz, as --input; default: --input).")
@backend_option
@click.option("--preset", "energy_preset", default="45nm_cmos", show_default=True, help="Energy preset (see 'talon info').")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of --rate-encode.")
@plot_option("Save an energy-breakdown plot to PATH.")
@json_option
@command_options
def energy(graph_path: str, n_steps: int | None, input_path: str | None, rate_encode: bool, mode: str | None, calib_path: str | None,
           backend_name: str, energy_preset: str, seed: int, plot_path: str | None, as_json: bool) -> None:
    """Energy and latency per sample of running MODEL.t1c, priced from a simulation's actual spikes.

    A graph quantized for hardware (SpikingAffine layers) is priced in fixed point unless --mode float."""
    g = load_graph(graph_path)
    chosen = mode or hardware_mode(g) or "float"
    backend = backend_for(backend_name, "profile", "energy", chosen)
    _check_energy_preset(energy_preset)
    prepare_plot(plot_path)
    if calib_path and chosen != "fixed":
        raise click.UsageError("--calibrate sets the fixed-point formats: it needs --mode fixed")
    inputs = load_inputs(input_path, g, rate_encode, seed, n_steps=n_steps)
    calib = load_inputs(calib_path, g, rate_encode, seed, n_steps=n_steps, option="--calibrate") if calib_path else None
    kw = {"calibration_inputs": calib} if calib is not None else {}  # a backend without the option is not asked for it
    prof = backend.profile(g, inputs, n_steps, energy_preset=energy_preset, mode=chosen, **kw)
    why = "as asked (--mode)" if mode else ("the graph's SpikingAffine layers target fixed-point hardware; --mode float prices float32"
                                           if chosen == "fixed" else "the graph is not quantized for hardware; --mode fixed prices fixed point")
    payload = {"file": graph_path, **energy_payload(prof), "mode_reason": why, "plot": None}
    if plot_path:
        from talon.viz.plots import energy_breakdown

        payload["plot"] = save_figure(energy_breakdown(prof), plot_path)
    if as_json:
        emit_json("energy", payload)
        return
    c = console()
    c.print(f"mode: {chosen} ({why})", markup=False)
    c.print(prof.summary(), markup=False)
    if plot_path:
        c.print(f"plot: {payload['plot']}", markup=False)


def _check_energy_preset(name: str) -> None:
    from talon.backend.energy import list_energy_presets
    from talon.errors import TalonUsageError

    presets = list_energy_presets()
    if name not in presets:
        raise TalonUsageError(f"--preset {name}: no such energy preset; available: {', '.join(presets)} (see 'talon info')")


# -- compile -----------------------------------------------------------------------------------------------

@click.command("compile")
@graph_argument
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="cpu: descriptor file (.json readable, .thd binary); fpga: project folder.")
@click.option("--target", type=click.Choice(["cpu", "fpga"]), default="cpu", show_default=True, help="cpu: hardware descriptor; fpga: an HLS C++ project.")
@click.option("--part", default="zynq7020", show_default=True, help="fpga: part preset (zynq7020, zu9eg) or part string.")
@click.option("--format", "fmt", type=click.Choice(["json", "binary"]), default=None, help="cpu: default by the output's suffix.")
@click.option("--calibrate", "input_path", type=InputFile(exists=True), default=None, help="Calibration stimulus (.npy/.npz, as for simulate).")
@steps_option
@json_option
@command_options
def compile_cmd(graph_path: str, output: str, target: str, part: str, fmt: str | None, input_path: str | None, n_steps: int | None, as_json: bool) -> None:
    """Compile MODEL.t1c to a fixed-point hardware descriptor, or (--target fpga) an HLS C++ project."""
    g = load_graph(graph_path)
    inputs = load_inputs(input_path, g, n_steps=n_steps, option="--calibrate")
    if target == "fpga":
        proj = get_backend("fpga").compile(g, output, part=part, calibration_inputs=inputs, n_steps=n_steps)
        est = proj.estimates
        payload = {"file": graph_path, "target": "fpga", "output": proj.path, "files": list(proj.files),
                   "estimates": est.to_dict() if est is not None else None}
        if as_json:
            emit_json("compile", payload)
            return
        c = console()
        c.print(str(proj), markup=False)
        if est is not None:
            c.print(est.to_markdown(heading=False), markup=False)
        return
    desc = get_backend("cpu").compile(g, calibration_inputs=inputs, n_steps=n_steps)
    path = desc.save(output, format=fmt)
    layers = [{"name": n["name"], "type": n["type"], "kind": n["kind"], "out_format": n.get("out_format"), "output_shape": n.get("output_shape")} for n in desc.meta["nodes"]]
    payload = {
        "file": graph_path,
        "target": "cpu",
        "output": path,
        "format": fmt or ("json" if path.endswith(".json") else "binary"),
        "bytes": os.path.getsize(path),
        "descriptor_version": desc.version,
        "array_bytes": int(sum(a.nbytes for a in desc.arrays.values())),
        "layers": layers,
    }
    if as_json:
        emit_json("compile", payload)
        return
    c = console()
    c.print(desc.summary(), markup=False)
    c.print(f"wrote {path} ({payload['bytes']:,} bytes)", markup=False)


@click.command("verify")
@graph_argument
@click.option("--target", type=click.Choice(["fpga"]), default="fpga", show_default=True, help="What to verify against the CPU fixed-point simulator.")
@click.option("--part", default="zynq7020", show_default=True, help="Part preset or part string.")
@click.option("--input", "input_path", type=InputFile(exists=True), default=None, help="Stimulus (.npy/.npz, as for simulate).")
@click.option("--steps", "n_steps", type=STEPS, default=None, help="Timesteps, at most 10,000,000 (default: the input's length, else 100).")
@json_option
@command_options
def verify_cmd(graph_path: str, target: str, part: str, input_path: str | None, n_steps: int | None, as_json: bool) -> None:
    """Generate the FPGA project, run its C simulation with g++ and compare it bit for bit with
    the CPU backend's fixed-point simulation. Exit 1 when anything differs."""
    g = load_graph(graph_path)
    result = get_backend(target).verify(g, load_inputs(input_path, g, n_steps=n_steps), n_steps, part=part)
    if as_json:
        emit_json("verify", {"file": graph_path, "target": target, "ok": result.ok, "n_steps": result.n_steps,
                             "batch_size": result.batch_size, "compared": result.compared, "mismatches": result.mismatches})
    else:
        console().print(result.summary(), markup=False)
    if not result.ok:
        raise SystemExit(1)


COMMANDS = [simulate, energy, compile_cmd, verify_cmd]
