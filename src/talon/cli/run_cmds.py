"""Commands that run a model (talon.backend; these import torch): simulate, energy, compile.
Mapping commands (map, pipeline) live in map_cmds."""

from __future__ import annotations

import os
from typing import Any

import click

from talon.cli._common import command_options, console, emit_json, graph_argument, json_option, load_graph, plot_option, save_figure
from talon.report import energy_payload, simulation_payload

backend_option = click.option("--backend", "backend_name", default="cpu", show_default=True, help="Backend to run on (see 'talon info').")
steps_option = click.option("--steps", "n_steps", type=click.IntRange(min=1), default=None, help="Timesteps (default: the input's length, else 10).")
input_option = click.option(
    "--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=str), default=None,
    help="Stimulus: .npy of shape S, (B, *S) or (T, B, *S); or .npz with one array per Input node. Default: the documented uniform [0, 1) stimulus.",
)
rate_option = click.option("--rate-encode", is_flag=True, help="Treat --input as firing probabilities in [0, 1] (Bernoulli rate coding).")
mode_option = click.option("--mode", type=click.Choice(["float", "fixed"]), default="float", show_default=True, help="Float32 or hardware fixed-point numerics.")


def load_inputs(path: str | None, graph: Any, rate_encode: bool = False, seed: int = 0) -> Any:
    """Numpy arrays from --input, as the backend's `inputs` argument (torch imported by the backend)."""
    if path is None:
        if rate_encode:
            raise click.BadParameter("needs --input", param_hint="--rate-encode")
        return None
    import numpy as np

    from talon.errors import TalonError

    try:
        data = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise TalonError(f"cannot read stimulus {path!r}: {exc}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        arrays = {k: data[k] for k in data.files}
        unknown = set(arrays) - set(graph.input_names)
        if unknown:
            raise TalonError(f"{path}: arrays {sorted(unknown)} name no Input node (inputs: {graph.input_names})")
        inputs: Any = arrays
    else:
        inputs = data
    if rate_encode:
        from talon.backend.stimulus import RateEncoder

        if isinstance(inputs, dict):
            inputs = {k: RateEncoder(v, seed=seed) for k, v in inputs.items()}
        else:
            inputs = RateEncoder(inputs, seed=seed)
    return inputs


def get_backend(name: str) -> Any:
    from talon.backend import get_backend as _get

    return _get(name)


# -- simulate ----------------------------------------------------------------------------------------------

@click.command("simulate")
@graph_argument
@steps_option
@input_option
@rate_option
@mode_option
@backend_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --rate-encode.")
@click.option("--save-outputs", type=click.Path(dir_okay=False, path_type=str), default=None, help="Save every Output's (T, B, ...) values to this .npz file.")
@plot_option("Save a spike raster to PATH.")
@click.option("--rates-plot", type=click.Path(dir_okay=False, path_type=str), default=None, help="Save per-layer firing rates to PATH.")
@json_option
@command_options
def simulate(graph_path: str, n_steps: int | None, input_path: str | None, rate_encode: bool, mode: str, backend_name: str, seed: int,
             save_outputs: str | None, plot_path: str | None, rates_plot: str | None, as_json: bool) -> None:
    """Run MODEL.t1c step by step on a backend; report spikes, firing rates and outputs.

    With --mode fixed, also the per-layer spike agreement with a float run on the same stimulus."""
    g = load_graph(graph_path)
    inputs = load_inputs(input_path, g, rate_encode, seed)
    backend = get_backend(backend_name)
    sim = backend.simulate(g, inputs, n_steps, mode, record="spikes" if plot_path else None)
    payload = simulation_payload(sim)
    payload["file"] = graph_path
    payload["plots"] = {}
    if save_outputs:
        import numpy as np

        np.savez(save_outputs, **{k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for k, v in sim.outputs.items()})
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
    for name, o in payload["outputs"].items():
        if o["argmax"] is not None and len(o["argmax"]) <= 16:
            c.print(f"output {name}: shape {tuple(o['shape'])}, argmax of the sum over time {o['argmax']}", markup=False)
    for kind, path in payload["plots"].items():
        c.print(f"{kind} plot: {path}", markup=False)


# -- energy ------------------------------------------------------------------------------------------------

@click.command("energy")
@graph_argument
@steps_option
@input_option
@rate_option
@mode_option
@backend_option
@click.option("--preset", "energy_preset", default="45nm_cmos", show_default=True, help="Energy preset (see 'talon info').")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --rate-encode.")
@plot_option("Save an energy-breakdown plot to PATH.")
@json_option
@command_options
def energy(graph_path: str, n_steps: int | None, input_path: str | None, rate_encode: bool, mode: str, backend_name: str,
           energy_preset: str, seed: int, plot_path: str | None, as_json: bool) -> None:
    """Energy and latency per sample of running MODEL.t1c, priced from a simulation's actual spikes."""
    g = load_graph(graph_path)
    inputs = load_inputs(input_path, g, rate_encode, seed)
    prof = get_backend(backend_name).profile(g, inputs, n_steps, energy_preset, mode=mode)
    payload = {"file": graph_path, **energy_payload(prof), "plot": None}
    if plot_path:
        from talon.viz.plots import energy_breakdown

        payload["plot"] = save_figure(energy_breakdown(prof), plot_path)
    if as_json:
        emit_json("energy", payload)
        return
    c = console()
    c.print(prof.summary(), markup=False)
    if plot_path:
        c.print(f"plot: {payload['plot']}", markup=False)


# -- compile -----------------------------------------------------------------------------------------------

@click.command("compile")
@graph_argument
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="cpu: descriptor file (.json readable, .thd binary); fpga: project folder.")
@click.option("--target", type=click.Choice(["cpu", "fpga"]), default="cpu", show_default=True, help="cpu: hardware descriptor; fpga: an HLS C++ project.")
@click.option("--part", default="zynq7020", show_default=True, help="fpga: part preset (zynq7020, zu9eg) or part string.")
@click.option("--format", "fmt", type=click.Choice(["json", "binary"]), default=None, help="cpu: default by the output's suffix.")
@click.option("--calibrate", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=str), default=None, help="Calibration stimulus (.npy/.npz, as for simulate).")
@steps_option
@json_option
@command_options
def compile_cmd(graph_path: str, output: str, target: str, part: str, fmt: str | None, input_path: str | None, n_steps: int | None, as_json: bool) -> None:
    """Compile MODEL.t1c to a fixed-point hardware descriptor, or (--target fpga) an HLS C++ project."""
    g = load_graph(graph_path)
    inputs = load_inputs(input_path, g)
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
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False, path_type=str), default=None, help="Stimulus (.npy/.npz, as for simulate).")
@steps_option
@json_option
@command_options
def verify_cmd(graph_path: str, target: str, part: str, input_path: str | None, n_steps: int | None, as_json: bool) -> None:
    """Generate the FPGA project, run its C simulation with g++ and compare it bit for bit with
    the CPU backend's fixed-point simulation. Exit 1 when anything differs."""
    g = load_graph(graph_path)
    result = get_backend(target).verify(g, load_inputs(input_path, g), n_steps, part=part)
    if as_json:
        emit_json("verify", {"file": graph_path, "target": target, "ok": result.ok, "n_steps": result.n_steps,
                             "batch_size": result.batch_size, "compared": result.compared, "mismatches": result.mismatches})
    else:
        console().print(result.summary(), markup=False)
    if not result.ok:
        raise SystemExit(1)


COMMANDS = [simulate, energy, compile_cmd, verify_cmd]
