"""Visualization commands: export-html (write the offline page) and visualize (write it and open it)."""

from __future__ import annotations

import os
from typing import Any

import click

from talon.cli._common import command_options, console, emit_json, graph_argument, json_option, load_graph
from talon.cli.map_cmds import build_hardware, hardware_options


def _page(graph_path: str, output: str, do_map: bool, hw: tuple, title: str | None) -> dict[str, Any]:
    from talon.viz.html import export_html

    g = load_graph(graph_path)
    mapping = None
    if do_map:
        from talon.mapping import map_graph

        mapping = map_graph(g, build_hardware(*hw))
    path = export_html(g, output, mapping=mapping, title=title or os.path.basename(graph_path))
    shown = mapping is not None or "talon_mapping" in g.metadata
    return {"file": graph_path, "output": os.path.abspath(path), "bytes": os.path.getsize(path), "nodes": len(g.nodes), "mapping": shown}


_map_option = click.option("--map", "do_map", is_flag=True, help="Map the graph (talon.mapping) and show the cores on the mesh; a mapping stored in the file is shown anyway.")
_title_option = click.option("--title", default=None, help="Page title (default: the file name).")


@click.command("export-html")
@graph_argument
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str), help="The .html file to write.")
@_map_option
@hardware_options
@_title_option
@json_option
@command_options
def export_html_cmd(graph_path: str, output: str, do_map: bool, hardware_file, hw_preset, mesh, neurons_per_core, weight_memory, hw_weight_bits, title, as_json: bool) -> None:
    """Write a self-contained HTML view of MODEL.t1c (works offline; click nodes for details)."""
    info = _page(graph_path, output, do_map, (hardware_file, hw_preset, mesh, neurons_per_core, weight_memory, hw_weight_bits), title)
    if as_json:
        emit_json("export-html", info)
    else:
        console().print(f"wrote {info['output']} ({info['bytes']:,} bytes)", markup=False)


@click.command("visualize")
@graph_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str), default=None, help="Where to write the page (default: MODEL.html next to the model).")
@click.option("--open/--no-open", "open_browser", default=True, show_default=True, help="Open the page in a web browser.")
@_map_option
@hardware_options
@_title_option
@json_option
@command_options
def visualize(graph_path: str, output: str | None, open_browser: bool, do_map: bool, hardware_file, hw_preset, mesh, neurons_per_core, weight_memory, hw_weight_bits, title, as_json: bool) -> None:
    """Write the HTML view of MODEL.t1c and open it in a browser."""
    out = output or (os.path.splitext(graph_path)[0] + ".html")
    info = _page(graph_path, out, do_map, (hardware_file, hw_preset, mesh, neurons_per_core, weight_memory, hw_weight_bits), title)
    opened = False
    if open_browser:
        import pathlib
        import webbrowser

        try:
            opened = bool(webbrowser.open(pathlib.Path(info["output"]).as_uri()))
        except Exception:  # noqa: BLE001 - no browser is not an error: the page is written
            opened = False
    info["opened"] = opened
    if as_json:
        emit_json("visualize", info)
        return
    c = console()
    c.print(f"wrote {info['output']}", markup=False)
    if open_browser and not opened:
        c.print("no web browser found: open the file above by hand", markup=False)


COMMANDS = [visualize, export_html_cmd]
