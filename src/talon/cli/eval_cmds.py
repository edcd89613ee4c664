"""`talon eval MODEL DATA`: accuracy of a model on a labelled data set, in float and fixed point (talon.eval)."""

from __future__ import annotations

import click

from talon.cli._common import SEED, STEPS, InputFile, command_options, console, emit_json, graph_argument, json_option, load_graph, plot_option, prepare_output, prepare_plot, save_figure


@click.command("eval")
@graph_argument
@click.argument("data", metavar="DATA", type=click.Path(exists=True, path_type=str))
@click.option("--mode", type=click.Choice(["float", "fixed"]), default="float", show_default=True, help="fixed: the hardware's fixed point, with the float run and their agreement beside it.")
@click.option("--steps", "n_steps", type=STEPS, default=None, help="Timesteps per sample (sequences are cut to it; needed with --encode and for event files).")
@click.option("--encode", type=click.Choice(["rate", "latency", "delta", "direct"]), default=None, help="How (N, *S) samples become spike trains (delta: of (N, T, *S) sequences).")
@click.option("--dt", type=click.FloatRange(min=0, min_open=True), default=None, help="Event files: microseconds per step (default: --steps equal bins over each recording).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True, help="Samples simulated together.")
@click.option("--readout", type=click.Choice(["count", "last"]), default="count", show_default=True, help="count: argmax of the output summed over steps; last: of the last step.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of --encode rate.")
@click.option("--preset", "energy_preset", default="45nm_cmos", show_default=True, help="Energy preset (see 'talon info').")
@click.option("--calibrate", "calibrate_path", type=InputFile(exists=True), default=None,
              help="--mode fixed: calibrate the fixed-point formats on this (T, B, *S) .npy (default: the first batch of DATA).")
@click.option("--max-samples", type=click.IntRange(min=1), default=None, help="Evaluate only the first N samples.")
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False, path_type=str), default=None, help="Also write the JSON document to this file.")
@plot_option("Save the confusion matrix to PATH.")
@click.option("--plot-steps", "steps_plot_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Save the accuracy against the number of steps run to PATH (PNG, SVG or PDF).")
@json_option
@command_options
def eval_cmd(graph_path: str, data: str, mode: str, n_steps: int | None, encode: str | None, dt: float | None, batch_size: int, readout: str,
             seed: int, energy_preset: str, calibrate_path: str | None, max_samples: int | None, out_path: str | None, plot_path: str | None, steps_plot_path: str | None, as_json: bool) -> None:
    """Accuracy of MODEL.t1c on DATA: an .npz holding x (N, T, *S) or (N, *S) with --encode, and y (N,)
    labels; or a folder of event files ROOT/<class>/<file> (tonic's layout) framed with --steps and --dt.

    Prints accuracy, per-class accuracy, the confusion matrix, spikes and energy per sample; with
    --mode fixed, the float run and the float/fixed agreement too."""
    from talon.eval import evaluate
    from talon.report import write_document

    prepare_plot(plot_path)
    prepare_plot(steps_plot_path, "--plot-steps")
    out_path = prepare_output(out_path, "--output", (".json",))
    g = load_graph(graph_path)
    calibration = None
    if calibrate_path is not None:
        from talon.cli.run_cmds import load_inputs

        calibration = load_inputs(calibrate_path, g, option="--calibrate")
    res = evaluate(g, data, mode, n_steps, encode=encode, dt=dt, batch_size=batch_size, readout=readout, seed=seed,
                   energy_preset=energy_preset, calibration=calibration, max_samples=max_samples)  # fmt: skip
    payload = {"file": graph_path, **res.to_dict(), "plot": None, "plot_steps": None, "output": out_path}
    if plot_path:
        payload["plot"] = save_figure(res.plot_confusion(), plot_path)
    if steps_plot_path:
        payload["plot_steps"] = save_figure(res.plot_accuracy_by_step(), steps_plot_path)
    if out_path:
        write_document(out_path, "eval", payload)
    if as_json:
        emit_json("eval", payload)
        return
    c = console()
    c.print(res.summary(), markup=False)
    conf = res.confusion
    width = max(5, len(str(int(conf.max()))) + 1)
    c.print("confusion matrix (rows: label, columns: predicted):", markup=False)
    for i, row in enumerate(conf):
        c.print(f"  {i:>3} " + "".join(f"{int(v):>{width}}" for v in row), markup=False)
    for what, path in (("plot", payload["plot"]), ("plot", payload["plot_steps"]), ("wrote", out_path)):
        if path:
            c.print(f"{what}: {path}", markup=False)


COMMANDS = [eval_cmd]
