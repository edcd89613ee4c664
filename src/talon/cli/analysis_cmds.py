"""Static analysis commands (talon.sdk; never import torch): analyze, profile, lint."""

from __future__ import annotations

import click

from talon.cli._common import (
    ByteSize,
    CheckFailed,
    cli_advice,
    command_options,
    console,
    emit_json,
    esc,
    graph_argument,
    human_bytes,
    json_option,
    load_graph,
    plot_option,
    prepare_plot,
    print_table,
    save_figure,
    shapes_str,
)
from talon.report import analyze_payload, lint_payload, profile_payload  # stdlib-only: analyze stays fast


# -- analyze -----------------------------------------------------------------------------------------------

@click.command("analyze")
@graph_argument
@json_option
@command_options
def analyze(graph_path: str, as_json: bool) -> None:
    """Size and arithmetic: parameters, MACs, FLOPs, neurons, depth, width, and the layer table."""
    from talon.sdk import analyze_graph
    from talon.sdk.analyze import spike_input_note

    stats = analyze_graph(load_graph(graph_path))
    payload = analyze_payload(stats)
    if as_json:
        emit_json("analyze", {"file": graph_path, **payload})
        return
    c = console()
    rows = [[s.name, s.type_name, shapes_str(s.output_shapes), f"{s.params:,}", f"{s.macs:,}", f"{s.flops:,}", f"{s.neurons:,}" if s.neurons else ""]
            for s in stats.layers.values()]
    print_table(c, graph_path, ["name", "type", "output", "params", "MACs", "FLOPs", "neurons"], rows, right=("params", "MACs", "FLOPs", "neurons"))
    tot = payload["totals"]
    c.print(
        f"total: {tot['params']:,} params ({tot['neuron_params']:,} of them neuron constants; {human_bytes(tot['param_bytes'])}), "
        f"{tot['macs']:,} MACs, {tot['flops']:,} FLOPs, "
        f"{tot['neurons']:,} neurons in {tot['spiking_layers']} spiking layer(s); depth {tot['depth']}, width {tot['width']}; per sample per step (dt {stats.dt:g})"
    )
    for name in stats.spike_inputs:
        c.print(spike_input_note(name), markup=False)


# -- profile -----------------------------------------------------------------------------------------------

@click.command("profile")
@graph_argument
@click.option("--activation-bytes", type=click.IntRange(1, 8), default=4, show_default=True, help="Bytes per activation element.")
@click.option("--state-bytes", type=click.IntRange(1, 8), default=4, show_default=True, help="Bytes per neuron-state element.")
@click.option("--budget", "memory_budget", type=ByteSize(), default=None, metavar="SIZE",
              help="Memory budget to check the total against: bytes (1000, 1e6) or 64KiB, 1MB, ... (KB/MB/GB x1000, KiB/MiB/GiB x1024). "
                   "Exit 1 when the model does not fit.")
@plot_option("Save a memory-breakdown plot to PATH.")
@json_option
@command_options
def profile(graph_path: str, activation_bytes: int, state_bytes: int, memory_budget: int | None, plot_path: str | None, as_json: bool) -> None:
    """Static hardware profile: memory (weights, peak activations, state), MAC and spike operations,
    recommendations. For measured energy and latency, see 'talon energy'.

    With --budget, the total memory is checked against it: exit 1 when it does not fit."""
    from talon.sdk import profile_graph

    prepare_plot(plot_path)
    g = load_graph(graph_path)
    p = profile_graph(g, activation_bytes=activation_bytes, state_bytes=state_bytes, memory_budget=memory_budget)
    payload = profile_payload(p, memory_budget)
    if plot_path:
        from talon.viz.plots import memory_breakdown

        payload["plot"] = save_figure(memory_breakdown(g, profile=p), plot_path)
    budget = payload["budget"]
    if as_json:
        emit_json("profile", {"file": graph_path, **payload})
    else:
        c = console()
        c.print(cli_advice(p.summary()), markup=False)
        if budget is not None:
            size = f"{budget['bytes']:,} bytes" + (f" ({human_bytes(budget['bytes'])})" if budget["bytes"] >= 1024 else "")
            if budget["fits"]:
                c.print(f"[green]fits[/green] the budget: total memory {budget['total']:,} bytes of {size}")
            else:
                bits = budget["fits_with_quantized_weights"]
                also = f"; with {bits[0]}-bit weights it would fit" if bits else ""
                c.print(f"[red]does not fit[/red] the budget: total memory {budget['total']:,} bytes exceeds {size} by {budget['over_by']:,}{also}")
        if plot_path:
            c.print(f"plot: {payload['plot']}", markup=False)
    if budget is not None and not budget["fits"]:
        raise CheckFailed("over the memory budget")


# -- lint --------------------------------------------------------------------------------------------------

def _parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not LOW,HIGH", param_hint="--input-range") from None
    if not lo <= hi:
        raise click.BadParameter(f"LOW must be <= HIGH, got {text!r}", param_hint="--input-range")
    return lo, hi


@click.command("lint")
@graph_argument
@click.option("--strict", is_flag=True, help="Exit 1 when there are errors.")
@click.option("--warnings-as-errors", "werror", is_flag=True, help="Exit 1 when there are errors or warnings (implies --strict).")
@click.option("--ignore", multiple=True, metavar="CODE", help="Leave out issues with this code (repeatable; codes in docs/sdk.md).")
@click.option("--input-range", default="0,1", show_default=True, metavar="LOW,HIGH", help="Assumed range of the graph inputs.")
@json_option
@command_options
def lint(graph_path: str, strict: bool, werror: bool, ignore: tuple[str, ...], input_range: str, as_json: bool) -> None:
    """Check a graph for mistakes before it reaches hardware (errors, warnings, notes; codes in docs/sdk.md).

    Exit 0 whatever it finds, unless --strict (exit 1 on errors) or --warnings-as-errors (exit 1 on
    errors or warnings)."""
    from talon.sdk import lint_graph

    rng = _parse_range(input_range)
    _check_codes(ignore)
    result = lint_graph(load_graph(graph_path), input_range=rng, ignore=ignore)
    payload = lint_payload(result)
    if as_json:
        emit_json("lint", {"file": graph_path, **payload})
    else:
        c = console()
        colour = {"error": "red", "warning": "yellow", "info": "cyan"}
        for i in result.issues:
            sev = i.severity.value
            where = f" ({i.node})" if i.node else ""
            c.print(f"[{colour.get(sev, 'white')}]{sev:<7}[/] {i.code}{esc(where)}: ", end="")
            c.print(i.message, markup=False)
        n = payload["counts"]
        status = "[green]valid[/green]" if result.is_valid else "[red]invalid[/red]"
        c.print(f"{esc(graph_path)}: {status}; {n['error']} error(s), {n['warning']} warning(s), {n['info']} note(s)")
    if (strict or werror) and (result.errors or (werror and result.warnings)):
        raise CheckFailed("lint failed")


def _check_codes(ignore: tuple[str, ...]) -> None:
    """--ignore takes lint codes only: an unknown one is an error listing the valid codes."""
    from talon.sdk import CODES

    unknown = sorted(set(ignore) - set(CODES))
    if unknown:
        import difflib

        close = sorted({m for u in unknown for m in difflib.get_close_matches(u.upper(), list(CODES), n=1)})
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise click.BadParameter(f"unknown lint code(s) {', '.join(unknown)}; {hint}valid codes: {', '.join(CODES)}", param_hint="--ignore")


COMMANDS = [analyze, profile, lint]
