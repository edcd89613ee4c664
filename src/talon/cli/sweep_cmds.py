"""`talon sweep MODEL --data DATA --grid KEY=V1,V2 ... --out DIR`: a grid of hardware settings (talon.sweep)."""

from __future__ import annotations

import click

from talon.cli._common import command_options, console, emit_json, graph_argument, json_option, load_graph


@click.command("sweep")
@graph_argument
@click.argument("more_grid", metavar="[KEY=V1,V2 ...]", nargs=-1)
@click.option("--data", required=True, type=click.Path(exists=True, path_type=str), help="The data set, as 'talon eval' takes it (.npz or a folder of event files).")
@click.option("--grid", "grid", multiple=True, metavar="KEY=V1,V2", help="A swept parameter and its values; more may follow as plain words. "
              "Keys: weight_bits, accumulator_bits, hardware (preset), mesh (RxC), neurons_per_core, algorithm.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=str), help="Folder for results.json, results.csv, pareto.csv, pareto.png.")
@click.option("--steps", "n_steps", type=click.IntRange(min=1), default=None, help="Timesteps per sample (as 'talon eval').")
@click.option("--encode", type=click.Choice(["rate", "latency", "delta", "direct"]), default=None, help="How (N, *S) samples become spike trains.")
@click.option("--dt", type=click.FloatRange(min=0, min_open=True), default=None, help="Event files: microseconds per step.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Samples simulated together.")
@click.option("--shard-size", type=click.IntRange(min=1), default=256, show_default=True, help="Samples per task: the unit Ray spreads over workers.")
@click.option("--calibration-samples", type=click.IntRange(min=1), default=64, show_default=True,
              help="The fixed-point formats are calibrated on the data set's first N samples.")
@click.option("--readout", type=click.Choice(["count", "last"]), default="count", show_default=True, help="count: argmax of the output summed over steps; last: of the last step.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --encode rate.")
@click.option("--preset", "energy_preset", default="45nm_cmos", show_default=True, help="Energy preset (see 'talon info').")
@click.option("--max-samples", type=click.IntRange(min=1), default=None, help="Use only the first N samples.")
@click.option("--ray", "use_ray", is_flag=True, help="Run on Ray (pip install 't1c-talon[distributed]'): a local cluster, or --ray-address.")
@click.option("--ray-address", default=None, help="An existing Ray cluster (e.g. 'auto' or ray://HOST:10001); implies --ray.")
@click.option("--workers", type=click.IntRange(min=1), default=None, help="--ray without --ray-address: CPUs of the local cluster (default: all).")
@click.option("--retries", type=click.IntRange(min=0), default=3, show_default=True, help="--ray: how often a task whose worker died is run again.")
@click.option("--no-plot", is_flag=True, help="Skip pareto.png.")
@json_option
@command_options
def sweep_cmd(graph_path: str, more_grid: tuple[str, ...], data: str, grid: tuple[str, ...], out: str, n_steps: int | None, encode: str | None, dt: float | None,
              batch_size: int, shard_size: int, calibration_samples: int, readout: str, seed: int, energy_preset: str, max_samples: int | None, use_ray: bool, ray_address: str | None,
              workers: int | None, retries: int, no_plot: bool, as_json: bool) -> None:  # fmt: skip
    """Convert, map, simulate in fixed point and profile MODEL.t1c at every point of a grid of weight width,
    accumulator width, hardware preset, mesh, core size and mapping algorithm; write results.json (every
    point, written as each finishes; running again skips finished points), results.csv, the Pareto front
    of accuracy against energy (pareto.csv, pareto.png) to --out. Progress on stderr.

    Example: talon sweep m.t1c --data test.npz --steps 20 --encode rate --grid weight_bits=4,6,8 accumulator_bits=16,24 --out sweep/"""
    from talon.sweep import sweep

    if not grid and not more_grid:
        raise click.UsageError("give the grid: --grid KEY=V1,V2 [KEY=V1,V2 ...]")
    g = load_graph(graph_path)
    err = console(stderr=True)
    # on a terminal the bar shows progress, and the notes come with the table below
    log = None if as_json or err.is_terminal else (lambda line: err.print(line, markup=False))
    res = sweep(g, data, [*grid, *more_grid], out, steps=n_steps, encode=encode, dt=dt, batch_size=batch_size, shard_size=shard_size, readout=readout,
                seed=seed, energy_preset=energy_preset, max_samples=max_samples, ray=use_ray or ray_address is not None, ray_address=ray_address,
                workers=workers, retries=retries, calibration_samples=calibration_samples, progress=None if not as_json else False, log=log, plots=not no_plot)  # fmt: skip
    payload = {"file": graph_path, "out": out, "points": res.points, "pareto": [p["id"] for p in res.pareto], "skipped": res.skipped,
               "float_accuracy": res.reference.get("accuracy"), "files": res.files, "wall_time_s": res.wall_time_s, "notes": res.notes}  # fmt: skip
    if as_json:
        emit_json("sweep", payload)
        return
    c = console()
    c.print(f"sweep of {len(res.points)} points ({res.skipped} from an earlier run) in {res.wall_time_s:.1f} s; float accuracy {res.reference['accuracy']:.2%}", markup=False)
    c.print(f"  {'point':<50} {'accuracy':>9} {'agreement':>9} {'energy uJ':>11} {'latency us':>11} {'cores':>5}", markup=False)
    front = {p["id"] for p in res.pareto}
    for p in res.points:
        m = p["metrics"]
        mark = "*" if p["id"] in front else " "
        if p["status"] == "ok":
            c.print(f"{mark} {p['id']:<50} {m['accuracy']:>9.2%} {m['agreement']:>9.2%} {m['energy_uj']:>11.4g} {m['latency_us']:>11.4g} {m['cores']:>5}", markup=False)
        else:
            c.print(f"{mark} {p['id']:<50} {p['status']}: {p['reason']}", markup=False)
    c.print("* on the Pareto front (accuracy against energy)", markup=False)
    for note in res.notes if log is None else []:
        c.print(note, markup=False)
    for name, path in res.files.items():
        c.print(f"wrote: {path}", markup=False)


COMMANDS = [sweep_cmd]
