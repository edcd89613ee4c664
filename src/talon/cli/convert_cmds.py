"""`talon convert`: graph transforms from talon.sdk (spiking, quantize, fold-batchnorm, prune, remove-dropout)."""

from __future__ import annotations

from typing import Any, Callable

import click

from talon.cli._common import InputFile, command_options, console, emit_json, graph_argument, json_option, load_graph, write_graph

output_option = click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str), help="Where to write the converted .t1c file.")
nodes_option = click.option("--node", "nodes", multiple=True, metavar="NAME", help="Only these nodes (repeatable; default: all that apply).")


def _finish(transform: str, src_path: str, out_path: str, before: Any, after: Any, as_json: bool, report: dict | None = None, text: str | None = None) -> None:
    from talon.sdk import compare_graphs

    d = compare_graphs(before, after)
    write_graph(out_path, after)
    payload = {
        "transform": transform,
        "input": src_path,
        "output": out_path,
        "nodes_before": len(before.nodes),
        "nodes_after": len(after.nodes),
        "nodes_removed": list(d.nodes_removed),
        "nodes_added": list(d.nodes_added),
        "nodes_modified": {n: {"type_before": nd.type_a, "type_after": nd.type_b, "fields": nd.fields} for n, nd in d.nodes_modified.items()},
        "report": report,
    }
    if as_json:
        emit_json("convert", payload)
        return
    c = console()
    changed = len(d.nodes_modified) + len(d.nodes_removed) + len(d.nodes_added)
    c.print(f"{transform}: {src_path} -> {out_path} ({len(before.nodes)} -> {len(after.nodes)} nodes, {changed} changed)", markup=False)
    for n, nd in d.nodes_modified.items():
        kind = nd.type_a if nd.type_a == nd.type_b else f"{nd.type_a} -> {nd.type_b}"
        c.print(f"  ~ {n} ({kind}): {', '.join(nd.fields)}", markup=False)
    for n in d.nodes_removed:
        c.print(f"  - {n}", markup=False)
    if text:
        c.print(text, markup=False)


class _ConvertGroup(click.Group):
    """`talon convert IN -o OUT` (no transform named) converts the file format by extension."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["format", *args]
        return super().parse_args(ctx, args)


@click.group("convert", cls=_ConvertGroup)
def convert() -> None:
    """Transform a graph and write the result: spiking, quantize, fold-batchnorm, prune, remove-dropout;
    or, as `talon convert IN -o OUT`, convert between .t1c and .nir (by the files' extensions)."""


@convert.command("format")
@click.argument("graph_path", metavar="IN", type=InputFile(exists=True))
@output_option
@click.option("--dt", type=float, default=None,
              help="Reading .nir: the timestep to discretise with, in the unit of the file's time constants (default: the "
                   "file's, else 1e-4, snnTorch's; Norse 1.1 files need 1e-6, sinabs files, in steps, 1; TALON warns with the "
                   "value when the file shows it). Writing .nir: the timestep, in the reader's time unit, to write the time "
                   "constants for (e.g. 1e-4 for snnTorch's importer; default: the graph's own).")
@click.option("--approximate-resets", is_flag=True,
              help="Writing .nir: write neurons whose reset NIR cannot express (snnTorch's default subtract reset; "
                   "Synaptic/RLeaky 'zero') as NIR's reset to v_reset instead of refusing them, and report the measured "
                   "spike agreement. TALON reads such a file back exactly; other tools run the approximation.")
@json_option
@command_options
def format_cmd(graph_path: str, output: str, dt: float | None, approximate_resets: bool, as_json: bool) -> None:
    """Convert IN to OUT by extension: .t1c <-> .nir (NIR needs the `nir` extra)."""
    from pathlib import Path

    from talon.errors import TalonUsageError
    from talon.ir import nir as nir_io

    reading_nir = nir_io.is_nir_file(graph_path)
    writing_nir = Path(output).suffix.lower() == ".nir"
    if dt is not None and not reading_nir and not writing_nir:
        raise TalonUsageError("--dt applies to .nir files (reading one, or writing one); neither IN nor OUT is")
    if approximate_resets and not writing_nir:
        raise TalonUsageError("--approximate-resets applies to writing a .nir file; OUT is not one")
    graph = nir_io.read_nir(graph_path, dt=dt) if reading_nir else load_graph(graph_path)
    effects: list = []
    if writing_nir:
        measure = _recording_measure(effects) if approximate_resets else None
        nir_io.write_nir(output, graph, dt=None if reading_nir else dt, approximate_resets=approximate_resets, measure=measure)
    else:
        write_graph(output, graph)
    payload = {"input": graph_path, "output": output, "from": Path(graph_path).suffix.lstrip(".") or "t1c",
               "to": Path(output).suffix.lstrip(".") or "t1c", "nodes": len(graph.nodes), "edges": len(graph.edges),
               "approximated_resets": effects[0].to_dict() if effects else None}
    if as_json:
        emit_json("convert.format", payload)
        return
    console().print(f"converted {graph_path} -> {output} ({payload['nodes']} nodes, {payload['edges']} edges)", markup=False)
    if effects:
        console().print(f"approximated resets (NIR's reset to v_reset): {effects[0]}", markup=False)


def _recording_measure(effects: list) -> Callable:
    """talon.bridge's measure of an approximated reset (torch), keeping the result for the report."""
    from talon.bridge.reset_effect import measure_reset_effect

    def measure(true_graph: Any, approx_graph: Any) -> Any:
        effects.append(measure_reset_effect(true_graph, approx_graph))
        return effects[-1]

    return measure


@convert.command("spiking")
@graph_argument
@output_option
@click.option("--bits", "weight_bits", type=click.IntRange(2, 32), default=8, show_default=True, help="Weight bits of the SpikingAffine layers.")
@click.option("--accumulator-bits", type=click.IntRange(2, 64), default=None, help="Accumulator bits (default: the narrowest that cannot overflow).")
@click.option("--quantize/--no-quantize", default=False, show_default=True, help="Also snap the weights to the --bits grid (quantize_weights).")
@nodes_option
@json_option
@command_options
def spiking(graph_path: str, output: str, weight_bits: int, accumulator_bits: int | None, quantize: bool, nodes: tuple[str, ...], as_json: bool) -> None:
    """Replace Affine/Linear layers by SpikingAffine (fixed-point hardware layers)."""
    from talon.sdk import convert_to_spiking, quantize_weights

    g = load_graph(graph_path)
    out = convert_to_spiking(g, weight_bits, accumulator_bits, nodes=list(nodes) or None)
    report = text = None
    if quantize:
        out, rep = quantize_weights(out, weight_bits, nodes=list(nodes) or None, return_report=True)
        report, text = _quant_report(rep), str(rep)
    _finish("spiking", graph_path, output, g, out, as_json, report, text)


def _quant_report(rep: Any) -> dict[str, Any]:
    import numpy as np

    return {
        "bits": rep.bits,
        "per_channel": rep.per_channel,
        "max_abs_error": rep.max_abs_error,
        "worst_relative_error": rep.worst_relative_error,
        "tensors": [
            {
                "node": t.node, "field": t.field, "bits": t.bits, "per_channel": t.per_channel,
                "scale": float(t.scale) if np.ndim(t.scale) == 0 else np.asarray(t.scale).tolist(),
                "max_abs_error": t.max_abs_error, "rms_error": t.rms_error, "relative_error": t.relative_error,
            }
            for t in rep.tensors
        ],
    }


@convert.command("quantize")
@graph_argument
@output_option
@click.option("--bits", type=click.IntRange(2, 32), default=8, show_default=True)
@click.option("--per-channel", is_flag=True, help="One scale per output channel instead of per tensor.")
@click.option("--power-of-two", is_flag=True, help="Use the hardware's power-of-two scale rule (docs/fixed_point.md section 5).")
@nodes_option
@json_option
@command_options
def quantize(graph_path: str, output: str, bits: int, per_channel: bool, power_of_two: bool, nodes: tuple[str, ...], as_json: bool) -> None:
    """Snap synaptic weights to a symmetric BITS-bit grid and report each tensor's error."""
    from talon.sdk import quantize_weights

    g = load_graph(graph_path)
    out, rep = quantize_weights(g, bits, per_channel=per_channel, power_of_two=power_of_two, nodes=list(nodes) or None, return_report=True)
    _finish("quantize", graph_path, output, g, out, as_json, _quant_report(rep), str(rep))


def _simple(name: str, fn_name: str, doc: str) -> click.Command:
    @convert.command(name, help=doc)
    @graph_argument
    @output_option
    @json_option
    @command_options
    def cmd(graph_path: str, output: str, as_json: bool) -> None:
        import talon.sdk

        fn: Callable = getattr(talon.sdk, fn_name)
        g = load_graph(graph_path)
        _finish(name, graph_path, output, g, fn(g), as_json)

    return cmd


_simple("fold-batchnorm", "fold_batchnorm", "Fold batch norms that follow a conv/affine layer into its weights.")
_simple("prune", "prune_disconnected", "Drop nodes that lie on no path from an Input to an Output.")
_simple("remove-dropout", "remove_dropout", "Remove Dropout nodes (the identity at inference).")

COMMANDS = [convert]
