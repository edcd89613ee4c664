"""Static analysis commands (talon.sdk; never import torch): analyze, profile, lint."""

from __future__ import annotations

from typing import Any

import click

from talon.cli._common import (
    CheckFailed,
    command_options,
    console,
    emit_json,
    esc,
    graph_argument,
    human_bytes,
    json_option,
    load_graph,
    plot_option,
    save_figure,
    shapes_str,
)


# -- analyze -----------------------------------------------------------------------------------------------

def analyze_payload(stats: Any) -> dict[str, Any]:
    return {
        "totals": {
            "params": stats.total_params,
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


@click.command("analyze")
@graph_argument
@json_option
@command_options
def analyze(graph_path: str, as_json: bool) -> None:
    """Size and arithmetic: parameters, MACs, FLOPs, neurons, depth, width, and the layer table."""
    from talon.sdk import analyze_graph

    stats = analyze_graph(load_graph(graph_path))
    payload = analyze_payload(stats)
    if as_json:
        emit_json("analyze", {"file": graph_path, **payload})
        return
    from rich.table import Table

    c = console()
    t = Table(title=esc(graph_path))
    for col in ("name", "type", "output", "params", "MACs", "FLOPs", "neurons"):
        t.add_column(col, justify="right" if col in ("params", "MACs", "FLOPs", "neurons") else "left")
    for s in stats.layers.values():
        t.add_row(esc(s.name), s.type_name, shapes_str(s.output_shapes), f"{s.params:,}", f"{s.macs:,}", f"{s.flops:,}", f"{s.neurons:,}" if s.neurons else "")
    c.print(t)
    tot = payload["totals"]
    c.print(
        f"total: {tot['params']:,} params ({human_bytes(tot['param_bytes'])}), {tot['macs']:,} MACs, {tot['flops']:,} FLOPs, "
        f"{tot['neurons']:,} neurons in {tot['spiking_layers']} spiking layer(s); depth {tot['depth']}, width {tot['width']}; per sample per step (dt {stats.dt:g})"
    )


# -- profile -----------------------------------------------------------------------------------------------

def profile_payload(p: Any) -> dict[str, Any]:
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
        "recommendations": list(p.recommendations),
    }


@click.command("profile")
@graph_argument
@click.option("--activation-bytes", type=click.IntRange(1, 8), default=4, show_default=True, help="Bytes per activation element.")
@click.option("--state-bytes", type=click.IntRange(1, 8), default=4, show_default=True, help="Bytes per neuron-state element.")
@click.option("--budget", "memory_budget", type=click.IntRange(min=1), default=None, metavar="BYTES", help="A memory budget to check against.")
@plot_option("Save a memory-breakdown plot to PATH.")
@json_option
@command_options
def profile(graph_path: str, activation_bytes: int, state_bytes: int, memory_budget: int | None, plot_path: str | None, as_json: bool) -> None:
    """Static hardware profile: memory (weights, peak activations, state), MAC and spike operations,
    recommendations. For measured energy and latency, see 'talon energy'."""
    from talon.sdk import profile_graph

    g = load_graph(graph_path)
    p = profile_graph(g, activation_bytes=activation_bytes, state_bytes=state_bytes, memory_budget=memory_budget)
    payload = profile_payload(p)
    if plot_path:
        from talon.viz.plots import memory_breakdown

        payload["plot"] = save_figure(memory_breakdown(g, profile=p), plot_path)
    if as_json:
        emit_json("profile", {"file": graph_path, **payload})
        return
    c = console()
    c.print(p.summary(), markup=False)
    if plot_path:
        c.print(f"plot: {payload['plot']}", markup=False)


# -- lint --------------------------------------------------------------------------------------------------

def lint_payload(result: Any) -> dict[str, Any]:
    return {
        "valid": result.is_valid,
        "counts": {"error": len(result.errors), "warning": len(result.warnings), "info": len(result.infos)},
        "issues": [{"severity": i.severity.value, "code": i.code, "node": i.node, "message": i.message} for i in result.issues],
    }


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
@click.option("--warnings-as-errors", "werror", is_flag=True, help="With --strict, warnings fail too.")
@click.option("--ignore", multiple=True, metavar="CODE", help="Leave out issues with this code (repeatable).")
@click.option("--input-range", default="0,1", show_default=True, metavar="LOW,HIGH", help="Assumed range of the graph inputs.")
@json_option
@command_options
def lint(graph_path: str, strict: bool, werror: bool, ignore: tuple[str, ...], input_range: str, as_json: bool) -> None:
    """Check a graph for mistakes before it reaches hardware (errors, warnings, notes; codes in docs/sdk.md)."""
    from talon.sdk import lint_graph

    rng = _parse_range(input_range)
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
    if strict and (result.errors or (werror and result.warnings)):
        raise CheckFailed("lint failed")


COMMANDS = [analyze, profile, lint]
