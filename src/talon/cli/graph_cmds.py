"""Commands about a graph file itself: info, primitives, validate, hash, stamp, inspect, node, trace, compare."""

from __future__ import annotations

import os
import platform
from typing import Any

import click

from talon.cli._common import (
    CheckFailed,
    InputFile,
    command_options,
    console,
    emit_json,
    esc,
    graph_argument,
    json_option,
    load_graph,
    print_table,
    safe_text,
    shape_str,
    shapes_str,
)

_PACKAGES = ("t1c-talon", "numpy", "h5py", "scipy", "torch", "snntorch", "click", "rich", "matplotlib", "pymetis", "nir", "hls4ml")


def _environment() -> dict[str, Any]:
    import talon
    from talon._versions import package_versions
    from talon.ir import list_primitives

    env: dict[str, Any] = {
        "version": talon.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(_PACKAGES),
        "primitives": len(list_primitives()),
    }
    try:  # the registry itself never imports torch (backends are registered lazily)
        from talon.backend.registry import list_backends

        env["backends"] = list_backends()
    except Exception:  # noqa: BLE001 - info reports what it can
        env["backends"] = []
    try:
        from talon.backend.energy import list_energy_presets

        env["energy_presets"] = list_energy_presets()
    except Exception:  # noqa: BLE001
        env["energy_presets"] = []
    return env


def _io_shapes(graph: Any, names: list[str]) -> dict[str, list[int] | None]:
    out = {}
    for n in names:
        node = graph.nodes[n]
        shape = getattr(node, "shape", None)
        if shape is None:
            shape = node.output_shape
        out[n] = list(shape) if shape is not None else None
    return out


def model_summary(path: str, graph: Any) -> dict[str, Any]:
    from talon.ir import read_version
    from talon.sdk import fingerprint_graph, get_stamp

    stamp = get_stamp(graph)
    type_counts: dict[str, int] = {}
    for node in graph.nodes.values():
        type_counts[node.type_name] = type_counts.get(node.type_name, 0) + 1
    return {
        "file": os.fspath(path),
        "file_bytes": os.path.getsize(path),
        "format_version": read_version(path),
        "dt": graph.dt,
        "num_nodes": len(graph.nodes),
        "num_edges": len(graph.edges),
        "inputs": _io_shapes(graph, graph.input_names),
        "outputs": _io_shapes(graph, graph.output_names),
        "type_counts": type_counts,
        "fingerprint": fingerprint_graph(graph, True),
        "structure_fingerprint": fingerprint_graph(graph, False),
        "stamp": stamp.to_dict() if stamp is not None else None,
        "metadata_keys": sorted(str(k) for k in graph.metadata),
    }


# -- info --------------------------------------------------------------------------------------------------

@click.command("info")
@click.argument("graph_path", metavar="[MODEL.t1c]", required=False, type=InputFile())
@json_option
@command_options
def info(graph_path: str | None, as_json: bool) -> None:
    """The TALON installation (versions, backends), and a model file's summary when one is given."""
    env = _environment()
    model = None
    if graph_path is not None:
        model = model_summary(graph_path, load_graph(graph_path))
    if as_json:
        emit_json("info", {"talon": env, "model": model})
        return
    from rich.table import Table

    c = console()
    c.print(f"[bold]TALON[/bold] {env['version']} on Python {env['python']} ({env['platform']})")
    t = Table(show_header=False, box=None, pad_edge=False)
    for name, ver in env["packages"].items():
        t.add_row(f"  {name}", ver or "[dim]not installed[/dim]")
    c.print(t)
    c.print(f"  primitives: {env['primitives']}   backends: {', '.join(env['backends']) or '-'}   energy presets: {', '.join(env['energy_presets']) or '-'}")
    if model is not None:
        c.print()
        c.print(f"[bold]{esc(model['file'])}[/bold]  ({model['file_bytes']:,} bytes, format {model['format_version']})")
        c.print(f"  {model['num_nodes']} nodes, {model['num_edges']} edges, dt {model['dt']:g}")
        for kind in ("inputs", "outputs"):
            items = ", ".join(f"{n} {shape_str(s)}" for n, s in model[kind].items())
            c.print(f"  {kind:<8} {items}", markup=False)
        c.print("  types    " + ", ".join(f"{k} x{v}" for k, v in model["type_counts"].items()))
        c.print(f"  fingerprint {model['fingerprint']}")
        st = model["stamp"]
        if st:
            c.print(f"  stamped {st.get('created_utc', '')} commit {st.get('git_commit') or '-'} notes {st.get('notes') or '-'}", markup=False)


# -- primitives --------------------------------------------------------------------------------------------

def _field_doc(name: str, spec: Any, default: Any) -> dict[str, Any]:
    from dataclasses import MISSING

    d: dict[str, Any] = {"name": name, "kind": spec.kind, "dtype": spec.dtype, "optional": spec.optional, "doc": spec.doc}
    d["required"] = default is MISSING and not spec.optional
    d["default"] = None if default is MISSING else default
    if spec.choices:
        d["choices"] = list(spec.choices)
    if spec.minimum is not None:
        d["minimum"] = spec.minimum
    return d


def primitive_info(type_name: str) -> dict[str, Any]:
    import dataclasses
    import inspect

    from talon.cli import _support
    from talon.ir import get_node_class
    from talon.ir.nir import nir_support
    from talon.sdk.cost import cost_entry

    cls = get_node_class(type_name)
    fields = []
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            spec = f.metadata.get("talon")
            if spec is None or f.name == "metadata":
                continue
            default = f.default if f.default is not dataclasses.MISSING else (f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)  # type: ignore[misc]
            fields.append(_field_doc(f.name, spec, default))
    entry = cost_entry(type_name)
    doc = inspect.getdoc(cls) or ""
    return {
        "name": type_name,
        "module": cls.__module__,
        "summary": doc.splitlines()[0] if doc else "",
        "doc": doc,
        "stateful": bool(cls.stateful) if isinstance(cls.stateful, bool) else None,
        "spiking": bool(cls.spiking) if isinstance(cls.spiking, bool) else None,
        "min_inputs": cls.min_inputs if isinstance(cls.min_inputs, int) else None,
        "max_inputs": cls.max_inputs if isinstance(cls.max_inputs, (int, type(None))) else None,
        "fields": fields,
        "cost_formula": entry.formula if entry else None,
        "weight_fields": list(entry.weight_fields) if entry else [],
        "nir": nir_support(type_name),
        "traits": _support.traits(cls),
        "support": _support.support(type_name),
    }


@click.command("primitives")
@click.argument("type_name", required=False, metavar="[TYPE]")
@json_option
@command_options
def primitives(type_name: str | None, as_json: bool) -> None:
    """The support matrix of every registered IR primitive (which concerns each has), or one TYPE in detail
    (fields, defaults, traits, cost formula, and each concern's registration)."""
    from talon.errors import TalonUsageError
    from talon.ir import list_primitives

    names = list_primitives()
    if type_name is not None and type_name not in names:
        import difflib

        close = difflib.get_close_matches(type_name, names, n=3)
        raise TalonUsageError(f"unknown primitive {type_name!r}" + (f"; did you mean {', '.join(close)}?" if close else "; see 'talon primitives'"))
    from talon.cli import _support

    infos = [primitive_info(n) for n in ([type_name] if type_name else names)]
    if as_json:
        emit_json("primitives", {"concerns": list(_support.CONCERNS), "primitives": infos,
                                 "undeclared_converters": _support.undeclared_converters(),
                                 "identity_ops": _support.identity_ops()})
        return
    from rich.table import Table

    c = console()
    if type_name is None:
        t = Table(title=f"{len(infos)} primitives: support matrix", caption=(
            "yes: registered; traits: from the class's traits; refused: registered as a refusal; -: missing; n/a: does not apply. "
            "Traits: st stateful, sp spiking, cur synaptic current, grid grid-preserving, sum sums its inputs, nK neurons per element. "
            "'talon primitives TYPE' for details"))
        for col in ("type", "traits", *_support.CONCERNS):
            t.add_column(_support.HEADERS.get(col, col), overflow="fold")
        for p in infos:
            t.add_row(p["name"], _trait_flags(p["traits"]),
                      *(_support.SHORT[p["support"][k]["status"]] for k in _support.CONCERNS))
        c.print(t)
        undeclared = _support.undeclared_converters()
        if undeclared:
            c.print(f"converters that declare no produced types (not in the matrix): {', '.join(undeclared)}", markup=False)
        c.print(f"functional ops exported as the identity (no node): {', '.join(_support.identity_ops())}", markup=False)
        return
    p = infos[0]
    c.print(f"[bold]{p['name']}[/bold] ({p['module']})" + (" stateful" if p["stateful"] else "") + (" spiking" if p["spiking"] else ""))
    c.print(p["doc"], markup=False)
    t = Table()
    for col in ("field", "kind", "dtype", "default", "doc"):
        t.add_column(col)
    for f in p["fields"]:
        default = "[bold]required[/bold]" if f["required"] else repr(f["default"])
        kind = f["kind"] + (f" {f['choices']}" if f.get("choices") else "")
        t.add_row(f["name"], esc(kind), f["dtype"] or "", esc(default) if not f["required"] else default, esc(f["doc"]))
    c.print(t)
    if p["cost_formula"]:
        c.print(f"cost: {p['cost_formula']}", markup=False)
    nir = p["nir"]
    c.print("NIR: " + ("exported" if nir["export"] else f"refused ({nir['refused']})" if nir["refused"] else "no export registered")
            + (f"; read from NIR {', '.join(nir['imports_from'])}" if nir["imports_from"] else ""), markup=False)
    c.print("traits: " + ", ".join(f"{k}={v}" for k, v in p["traits"].items()), markup=False)
    t = Table(title="support")
    for col in ("concern", "status", "detail"):
        t.add_column(col)
    for k in _support.CONCERNS:
        e = p["support"][k]
        t.add_row(k, e["status"], esc(e["detail"]))
    c.print(t)


def _trait_flags(traits: dict[str, Any]) -> str:
    flags = [short for name, short in (("stateful", "st"), ("spiking", "sp"), ("has_current", "cur"), ("grid_preserving", "grid"),
                                       ("sums_inputs", "sum")) if traits.get(name) is True]
    if traits.get("neurons_per_element"):
        flags.append(f"n{traits['neurons_per_element']}")
    return " ".join(flags)


# -- validate ----------------------------------------------------------------------------------------------

@click.command("validate")
@graph_argument
@json_option
@command_options
def validate(graph_path: str, as_json: bool) -> None:
    """Read MODEL.t1c and check names, edges, cycles and shapes. Exit 1 if the graph is invalid."""
    from talon.errors import GraphValidationError

    g = load_graph(graph_path)
    error = None
    try:
        g.validate()
    except GraphValidationError as exc:
        error = str(exc)
    payload = {
        "file": graph_path,
        "valid": error is None,
        "error": error,
        "num_nodes": len(g.nodes),
        "num_edges": len(g.edges),
        "inputs": _io_shapes(g, g.input_names) if error is None else None,
        "outputs": _io_shapes(g, g.output_names) if error is None else None,
    }
    if as_json:
        emit_json("validate", payload)
    else:
        c = console()
        if error is None:
            outs = ", ".join(f"{n} {shape_str(s)}" for n, s in payload["outputs"].items())
            c.print(f"[green]valid[/green]: {esc(graph_path)} ({len(g.nodes)} nodes, {len(g.edges)} edges; outputs {esc(outs)})")
        else:
            c.print(f"[red]invalid[/red]: {esc(graph_path)}: {esc(error)}")
    if error is not None:
        raise CheckFailed(error)


# -- hash --------------------------------------------------------------------------------------------------

@click.command("hash")
@graph_argument
@click.option("--structure", is_flag=True, help="Print the structure-only fingerprint (array contents left out).")
@click.option("--verify", "expected", metavar="HEX", default=None, help="Exit 1 unless the fingerprint equals HEX.")
@click.option("--check-stamp", is_flag=True, help="Exit 1 unless the fingerprint equals the one its stamp recorded.")
@json_option
@command_options
def hash_cmd(graph_path: str, structure: bool, expected: str | None, check_stamp: bool, as_json: bool) -> None:
    """The SHA-256 fingerprint of a graph (stable across files; metadata and node order excluded)."""
    from talon.errors import TalonError
    from talon.sdk import fingerprint_graph, get_stamp

    g = load_graph(graph_path)
    full, struct = fingerprint_graph(g, True), fingerprint_graph(g, False)
    chosen = struct if structure else full
    verified = None
    stamp_fp = None
    if check_stamp:
        stamp = get_stamp(g)
        if stamp is None:
            raise TalonError(f"{graph_path} carries no stamp (add one with 'talon stamp')")
        stamp_fp = stamp.structure_fingerprint if structure else stamp.fingerprint
        verified = chosen == stamp_fp.lower()
    if expected is not None:
        ok = chosen == expected.strip().lower()
        verified = ok if verified is None else (verified and ok)
    if as_json:
        emit_json("hash", {"file": graph_path, "fingerprint": full, "structure_fingerprint": struct, "expected": expected, "stamp_fingerprint": stamp_fp, "verified": verified})
    else:
        line = f"{chosen}  {graph_path}"
        if verified is not None:
            line += "  OK" if verified else "  MISMATCH"
        click.echo(safe_text(line))
    if verified is False:
        raise CheckFailed("fingerprint mismatch")


# -- stamp -------------------------------------------------------------------------------------------------

def _parse_meta(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--meta")
        key, value = item.split("=", 1)
        v: Any = value
        for conv in (int, float):
            try:
                v = conv(value)
                break
            except ValueError:
                continue
        out[key.strip()] = v
    return out


@click.command("stamp")
@graph_argument
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=str), default=None, help="Write the stamped graph here (default: in place).")
@click.option("--notes", default="", help="Free text recorded in the stamp.")
@click.option("--meta", multiple=True, metavar="KEY=VALUE", help="Extra metadata (repeatable); numbers stay numbers.")
@click.option("--no-git", is_flag=True, help="Do not record the git commit.")
@json_option
@command_options
def stamp(graph_path: str, output: str | None, notes: str, meta: tuple[str, ...], no_git: bool, as_json: bool) -> None:
    """Record provenance in the model: fingerprints, UTC time, versions, git commit, notes."""
    from talon.sdk import get_stamp, stamp_graph

    from talon.ir._atomic import replacing_input

    metadata = _parse_meta(meta)
    target = output or graph_path
    with replacing_input(graph_path):  # stamping in place is what the command is for
        g = stamp_graph(load_graph(graph_path), notes=notes, metadata=metadata, git=not no_git, output=target)
    st = get_stamp(g)
    if as_json:
        emit_json("stamp", {"file": target, "stamp": st.to_dict() if st else None})
    else:
        console().print(f"stamped {esc(target)}: fingerprint {st.fingerprint[:16]}..., {st.created_utc}, commit {st.git_commit or '-'}")


# -- inspect -----------------------------------------------------------------------------------------------

def _graph_shapes(g: Any) -> dict[str, tuple[list, list]] | None:
    from talon.errors import GraphValidationError
    from talon.sdk._graph import infer_shapes

    try:  # on a shallow copy (arrays shared): a deep copy of a large model costs more than the shapes
        return infer_shapes(g)
    except GraphValidationError:
        return None


@click.command("inspect")
@graph_argument
@click.option("--pattern", default=None, metavar="PATTERN", help="Only list chains matching PATTERN, e.g. 'Affine->LIF' or 'Conv2d|Affine->*'.")
@json_option
@command_options
def inspect_cmd(graph_path: str, pattern: str | None, as_json: bool) -> None:
    """The graph's nodes in order: type, inputs, shapes and fields (arrays as dtype[shape])."""
    g = load_graph(graph_path)
    shapes = _graph_shapes(g)
    matches = None
    if pattern is not None:
        from talon.sdk import find_pattern

        matches = [list(m) for m in find_pattern(g, pattern)]
    nodes = []
    for name, node in g.nodes.items():
        fields = {}
        for fname, value in node.field_values().items():
            if fname == "metadata" or value is None:
                continue
            if hasattr(value, "dtype") and hasattr(value, "shape"):
                fields[fname] = {"dtype": str(value.dtype), "shape": list(value.shape)}
            else:
                fields[fname] = value
        ins, outs = shapes[name] if shapes else (None, None)
        nodes.append({
            "name": name, "type": node.type_name, "inputs": g.predecessors(name), "outputs": g.successors(name),
            "input_shapes": ins, "output_shapes": outs, "stateful": bool(node.stateful), "spiking": bool(getattr(node, "spiking", False)),
            "fields": fields,
        })
    if as_json:
        emit_json("inspect", {
            "file": graph_path, "dt": g.dt, "shapes_inferred": shapes is not None, "nodes": nodes,
            "edges": [list(e) for e in g.edges], "metadata_keys": sorted(map(str, g.metadata)), "pattern": pattern, "matches": matches,
        })
        return

    c = console()
    if matches is not None:
        c.print(f"{len(matches)} match(es) of {pattern!r}", markup=False)
        for m in matches:
            c.print("  " + " -> ".join(m), markup=False)
        return
    rows = []
    for i, n in enumerate(nodes):
        fs = ", ".join(
            f"{k}={v['dtype']}{v['shape']}" if isinstance(v, dict) and "dtype" in v else f"{k}={v!r}" for k, v in n["fields"].items()
        )
        flags = (" *" if n["stateful"] else "")
        rows.append([str(i), n["name"] + flags, n["type"], ", ".join(n["inputs"]), shapes_str(n["input_shapes"]), shapes_str(n["output_shapes"]), fs])
    title = f"{graph_path}: {len(g.nodes)} nodes, {len(g.edges)} edges, dt {g.dt:g}" + ("" if shapes else " (shapes not inferable)")
    print_table(c, title, ["#", "name", "type", "inputs", "in shape", "out shape", "fields"], rows)
    c.print("[dim]* stateful[/dim]")


# -- node --------------------------------------------------------------------------------------------------

def cost_dict(cost: Any) -> dict[str, Any] | None:
    if cost is None:
        return None
    keys = ("params", "param_bytes", "weight_elements", "macs", "event_macs", "flops", "input_elements", "activation_elements",
            "state_elements", "neurons", "synapses", "fan_in", "fan_out")
    return {k: getattr(cost, k) for k in keys}


def node_payload(info: Any) -> dict[str, Any]:
    arrays = {
        k: {"shape": list(a.shape), "dtype": a.dtype, "min": a.min, "max": a.max, "mean": a.mean, "std": a.std, "nonzero": a.nonzero, "nonfinite": a.nonfinite}
        for k, a in info.arrays.items()
    }
    return {
        "name": info.name, "type": info.type_name, "stateful": info.stateful, "spiking": info.spiking,
        "inputs": info.inputs, "outputs": info.outputs, "input_shapes": info.input_shapes, "output_shapes": info.output_shapes,
        "fields": info.fields, "arrays": arrays, "cost": cost_dict(info.cost), "metadata": info.metadata,
    }


@click.command("node")
@graph_argument
@click.argument("name")
@click.option("--values", "show_values", metavar="FIELD", default=None, help="Also print the values of array FIELD.")
@json_option
@command_options
def node_cmd(graph_path: str, name: str, show_values: str | None, as_json: bool) -> None:
    """Everything about node NAME: fields, array statistics, neighbours, shapes and cost."""
    from talon.errors import TalonUsageError
    from talon.sdk import inspect_node

    g = load_graph(graph_path)
    info = inspect_node(g, name)
    values = None
    if show_values is not None:
        arr = getattr(g.nodes[name], show_values, None)
        if not hasattr(arr, "tolist"):
            raise TalonUsageError(f"node {name!r} has no array field {show_values!r} (arrays: {list(info.arrays)})")
        values = arr
    payload = node_payload(info)
    if as_json:
        emit_json("node", {"file": graph_path, **payload, "values": {show_values: values} if values is not None else None})
        return
    from rich.table import Table

    c = console()
    c.print(f"[bold]{esc(info.name)}[/bold]: {info.type_name}" + (" (stateful)" if info.stateful else "") + (" (spiking)" if info.spiking else ""))
    c.print(f"  inputs  {', '.join(info.inputs) or '-'}   shapes {shapes_str(info.input_shapes)}", markup=False)
    c.print(f"  outputs {', '.join(info.outputs) or '-'}   shapes {shapes_str(info.output_shapes)}", markup=False)
    for k, v in info.fields.items():
        c.print(f"  {k} = {v!r}", markup=False)
    if info.arrays:
        t = Table()
        for col in ("array", "dtype", "shape", "min", "max", "mean", "std", "nonzero", "nonfinite"):
            t.add_column(col, justify="right" if col not in ("array", "dtype") else "left")
        for k, a in info.arrays.items():
            t.add_row(k, a.dtype, shape_str(a.shape), f"{a.min:.4g}", f"{a.max:.4g}", f"{a.mean:.4g}", f"{a.std:.4g}", f"{a.nonzero:,}", str(a.nonfinite))
        c.print(t)
    if info.cost is not None:
        k = info.cost
        c.print(f"  cost: {k.params:,} params ({k.param_bytes:,} bytes), {k.macs:,} MACs, {k.flops:,} FLOPs, {k.neurons:,} neurons, {k.state_elements:,} state")
    if values is not None:
        import numpy as np

        with np.printoptions(threshold=2000, linewidth=120, precision=5):
            c.print(f"{show_values} =\n{values}", markup=False)


# -- trace -------------------------------------------------------------------------------------------------

@click.command("trace")
@graph_argument
@click.argument("source")
@click.argument("target")
@json_option
@command_options
def trace(graph_path: str, source: str, target: str, as_json: bool) -> None:
    """A shortest path of nodes from SOURCE to TARGET. Exit 1 if TARGET cannot be reached."""
    from talon.sdk import trace_path

    g = load_graph(graph_path)
    path = trace_path(g, source, target)
    shapes = _graph_shapes(g)
    steps = [{"name": n, "type": g.nodes[n].type_name, "output_shapes": shapes[n][1] if shapes else None} for n in path]
    if as_json:
        emit_json("trace", {"file": graph_path, "source": source, "target": target, "found": bool(path), "path": path, "steps": steps})
    else:
        c = console()
        if path:
            c.print(" -> ".join(f"{esc(s['name'])} [dim]{s['type']} {shapes_str(s['output_shapes'])}[/dim]" for s in steps))
            c.print(f"{len(path) - 1} edge(s)")
        else:
            c.print(f"no path from {source!r} to {target!r}", markup=False)
    if not path:
        raise CheckFailed("no path")


# -- compare -----------------------------------------------------------------------------------------------

def diff_payload(d: Any) -> dict[str, Any]:
    return {
        "identical": d.identical,
        "tolerance": d.tolerance,
        "max_weight_diff": d.max_weight_diff,
        "arrays_compared": d.arrays_compared,
        "arrays_not_compared": list(d.arrays_not_compared),
        "dt": list(d.dt) if d.dt else None,
        "nodes_added": list(d.nodes_added),
        "nodes_removed": list(d.nodes_removed),
        "nodes_modified": {
            n: {"type_a": nd.type_a, "type_b": nd.type_b, "diffs": [{"field": f.field, "kind": f.kind, "detail": f.detail, "max_abs_diff": f.max_abs_diff} for f in nd.diffs]}
            for n, nd in d.nodes_modified.items()
        },
        "edges_added": [list(e) for e in d.edges_added],
        "edges_removed": [list(e) for e in d.edges_removed],
        "edge_order_changed": d.edge_order_changed,
        "node_order_changed": d.node_order_changed,
        "metadata_changed": d.metadata_changed,
    }


@click.command("compare")
@click.argument("a_path", metavar="A.t1c", type=InputFile())
@click.argument("b_path", metavar="B.t1c", type=InputFile())
@click.option("--tolerance", type=float, default=0.0, show_default=True, help="Arrays differing by at most this much count as equal.")
@json_option
@command_options
def compare(a_path: str, b_path: str, tolerance: float, as_json: bool) -> None:
    """What differs from A to B: nodes, fields, edges, dt. Exit 1 if they differ."""
    from talon.sdk import compare_graphs

    if tolerance < 0:
        raise click.BadParameter("must be >= 0", param_hint="--tolerance")
    d = compare_graphs(load_graph(a_path), load_graph(b_path), tolerance)
    if as_json:
        emit_json("compare", {"a": a_path, "b": b_path, **diff_payload(d)})
    else:
        console().print(d.summary(), markup=False)
    if not d.identical:
        raise CheckFailed("graphs differ")


COMMANDS = [info, primitives, validate, hash_cmd, stamp, inspect_cmd, node_cmd, trace, compare]
