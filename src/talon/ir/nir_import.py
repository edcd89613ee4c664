"""NIR -> TALON: `from_nir`, `read_nir`, `read_nir_hdf5` and `is_nir_file` (docs/nir.md).

Each NIR node becomes the TALON type its class's registered import names by default (nir_registry; the
built-ins in nir_neurons and nir_layers), a NIRGraph a nested Graph; a TALON hint in the node's metadata
restores the exact node TALON wrote, used only after checking that it re-exports to the same NIR node.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from talon.errors import GraphValidationError, MissingDependencyError, PrimitiveError, TalonFormatError
from talon.ir import primitives as P
from talon.ir._hdf5_safety import MAX_GRAPH_DEPTH
from talon.ir.graph import Graph, check_name
from talon.ir.nir_common import (
    DEFAULT_DT, HINT_KEY, NIRConversionError, array_of, check_cycles, declared_shape, decode, foreign_metadata, read_hint,
    reduce_to, require_nir, warn_nir,
)
from talon.ir.nir_export import coerced_fields, export_node, imported_fields
from talon.ir.nir_fit import fit_foreign_shapes
from talon.ir.nir_layers import same_depthwise
from talon.ir.nir_registry import NIRImportContext, nir_default_type, nir_import_classes, nir_importer
from talon.ir.nir_units import TimeUnitAdvice, advise_dt
from talon.ir.node import Node, get_node_class, node_sums_inputs

__all__ = ["from_nir", "read_nir", "read_nir_hdf5", "is_nir_file"]


def _construct(ttype: str, fields: dict, where: str) -> Node:
    cls = get_node_class(ttype)
    if cls is None:
        raise NIRConversionError(f"{where}: unknown TALON type {ttype!r}")
    try:
        return cls(**fields)
    except (PrimitiveError, TypeError) as exc:
        raise NIRConversionError(f"{where}: the NIR node does not make a valid {ttype}: {exc}") from None


def _apply_hint(base: dict, hint: dict, ttype: str, where: str) -> Node:
    fields = coerced_fields(ttype, base)
    for name in hint.get("none", []):
        fields[name] = None
    for name, shape in hint.get("shapes", {}).items():
        red = reduce_to(np.asarray(fields.get(name)), tuple(shape)) if fields.get(name) is not None else None
        if red is None:
            raise NIRConversionError(f"{where}: {name} is not a broadcast of shape {tuple(shape)}")
        fields[name] = red
    for name, value in hint.get("arrays", {}).items():
        fields[name] = decode(value)
    for name, value in hint.get("fields", {}).items():
        fields[name] = decode(value)
    if "metadata" in hint:
        fields["metadata"] = decode(hint["metadata"])
    return _construct(ttype, fields, where)


def _nir_equal(a: Any, b: Any) -> bool:
    """Do two NIR nodes describe the same computation (metadata and derived types aside)?"""
    if type(a) is not type(b):
        return False
    if same_depthwise(a, b):  # a SepConv2d's depthwise stage, in the grouped or the block-diagonal form
        return True
    if type(a).__name__ == "NIRGraph":
        # Node order is not part of a NIR graph (HDF5 files return it sorted); edge order is kept.
        return (set(a.nodes) == set(b.nodes) and [tuple(map(str, e)) for e in a.edges] == [tuple(map(str, e)) for e in b.edges]
                and all(_nir_equal(a.nodes[k], b.nodes[k]) for k in a.nodes))
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        d.pop("metadata", None)
    if set(da) != set(db):
        return False
    for k in da:
        x, y = da[k], db[k]
        if isinstance(x, dict) or isinstance(y, dict):
            x, y = (next(iter(v.values())) if isinstance(v, dict) and len(v) == 1 else v for v in (x, y))
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
            continue
        if x is None or y is None:
            if x is not y:
                return False
            continue
        try:
            xa, ya = array_of(x, k), array_of(y, k)
        except NIRConversionError:
            return False
        if xa.dtype.kind == "f" or ya.dtype.kind == "f":
            if xa.dtype != ya.dtype or xa.shape != ya.shape or xa.tobytes() != ya.tobytes():
                return False
        elif xa.shape != ya.shape or not np.array_equal(xa, ya):
            return False
    return True


def _nir_in_shape(nn: Any) -> tuple[int, ...] | None:
    """The sample shape a NIR node declares it receives."""
    if type(nn).__name__ == "NIRGraph":
        ins = [v for v in nn.nodes.values() if type(v).__name__ == "Input"]
        return declared_shape(ins[0].input_type, "input") if len(ins) == 1 else None
    if type(nn).__name__ == "Input":
        return None
    return declared_shape(getattr(nn, "input_type", None), "input_type")


def _import_node(nir: Any, name: str, nn: Any, dt: float, opts: dict, where: str) -> Node:
    """The TALON node for NIR node `nn`: its hint's restoration when that re-exports to `nn` exactly, else the
    conversion its class's registered default import makes (a NIRGraph without one: a nested Graph)."""
    nt = type(nn).__name__
    hint = read_hint(getattr(nn, "metadata", None), where)
    natural = nir_default_type(nt)
    if natural is None and nt != "NIRGraph":
        raise NIRConversionError(f"{where}: NIR type {nt!r} has no TALON equivalent (supported: "
                                 f"{', '.join(sorted([*nir_import_classes(), 'NIRGraph']))}); a primitive's import is "
                                 "registered with talon.ir.nir.register_nir_import (docs/nir.md, 'Adding a primitive')")
    if hint is not None:
        ttype = hint.get("type", natural)
        if ttype is not None and nir_importer(nt, ttype) is not None:
            node = _restore(nir, nn, hint, ttype, dt, where)
            if node is not None:
                return node
        elif ttype is not None:
            warn_nir(f"{where}: ignoring a TALON hint that names type {ttype!r} for a NIR {nt}")
    if natural is None:
        return _import_graph(nir, nn, dt, opts, top=False, where=where)
    importer = nir_importer(nt, natural)
    made = None if importer is None else importer(nn, NIRImportContext(nir, dt, where, natural=True))
    if isinstance(made, Node):  # a NIR primitive TALON builds from several of its own (a nested Graph)
        return made
    if made is None:
        raise NIRConversionError(f"{where}: the NIR {nt} cannot be read as a {natural}")
    made["metadata"] = _nir_node_metadata(nn, where)
    return _construct(natural, made, where)


def _nir_node_metadata(nn: Any, where: str) -> dict | None:
    foreign = foreign_metadata(getattr(nn, "metadata", None), where)
    return {"nir_metadata": foreign} if foreign else None


def _restore(nir: Any, nn: Any, hint: dict, ttype: str, dt: float, where: str) -> Node | None:
    """The TALON node a hint describes, if it re-exports to exactly `nn`; otherwise None (with a warning)."""
    try:
        base = imported_fields(nir, nn, ttype, dt, where)
        if base is None:
            raise NIRConversionError(f"the NIR {type(nn).__name__} does not have the structure of an exported {ttype}")
        node = _apply_hint(base, hint, ttype, where)
        shape = _nir_in_shape(nn)
        out_shape = declared_shape(getattr(nn, "output_type", None), "output_type")
        # approx: a neuron whose hint names a reset NIR cannot hold was written approximated; so is its re-export
        again = export_node(nir, where, node, shape, out_shape, dt, approx=True)
        if not _nir_equal(again, nn):
            raise NIRConversionError("it does not re-export to the same NIR node (edited after export?)")
        return node
    except MissingDependencyError:
        raise
    except Exception as exc:  # any failure to restore means: fall back to the plain conversion
        warn_nir(f"{where}: TALON hint ({ttype}) not used: {exc}")
        return None


def _edge_end(end: str, nodes_in: dict, port: str, what: str) -> str:
    """The node an edge end names: a node of this graph, or "sub.<its Input>" / "sub.<its Output>" for a nested
    graph `sub` (the dotted form NIR's discussions use for the ports of a subgraph), which is `sub` itself when
    it has exactly one such port."""
    if end in nodes_in:
        return end
    for i, ch in enumerate(end):
        if ch != "." or end[:i] not in nodes_in or type(nodes_in[end[:i]]).__name__ != "NIRGraph":
            continue
        sub, inner = end[:i], end[i + 1:]
        ports = [k for k, v in nodes_in[sub].nodes.items() if type(v).__name__ == port]
        if inner not in ports:
            raise NIRConversionError(f"{what} refers to {inner!r} inside the nested graph {sub!r}, which is not one of its "
                                     f"{port} nodes {sorted(ports)}; an edge may only enter a nested graph at an Input and "
                                     "leave it at an Output")
        if len(ports) != 1:
            raise NIRConversionError(f"{what} addresses {port} {inner!r} of the nested graph {sub!r}, which has "
                                     f"{len(ports)} {port} nodes; TALON's nested graphs have one Input and one Output")
        return sub
    raise NIRConversionError(f"{what} refers to unknown node {end!r}")


def _input_successors(edges: list[tuple[str, str]], nodes_in: dict) -> dict[str, list]:
    succ: dict[str, list] = {}
    for s, d in edges:
        succ.setdefault(s, []).append(nodes_in.get(d))
    return succ


def _shape_from_successors(successors: list, where: str) -> tuple[int, ...]:
    """The shape of an Input that declares none (nirtorch writes Input(input_type=None) and copies its successor's
    type, which a Conv2d without input_shape does not have): the one its successors all declare."""
    declared = {_nir_in_shape(s) for s in successors if s is not None}
    shape = declared.pop() if len(declared) == 1 else None
    if shape is not None:
        warn_nir(f"{where}: the NIR Input declares no shape; using {shape}, the input shape its successors declare")
        return shape
    raise NIRConversionError(
        f"{where}: the NIR Input declares no shape and its successors do not settle one (nirtorch writes Input(input_type=None) "
        "when the first layer, such as a Conv2d without input_shape, declares none); set it before reading, e.g. "
        f"graph.nodes[{where.rsplit('/', 1)[-1]!r}].input_type = {{'input': np.array(shape)}}")


def _batch_leak(shape: tuple, successors: list) -> bool:
    """Does the Input's first dimension look like a batch dimension the exporter forgot to drop?"""
    if not shape:
        return False
    declared = [_nir_in_shape(s) for s in successors if s is not None]
    if any(d == shape for d in declared if d):
        return False
    if any(d == shape[1:] for d in declared if d):
        return True
    for s in successors:
        t = type(s).__name__
        if _nir_in_shape(s) is None and ((t in ("Conv2d", "SumPool2d", "AvgPool2d") and len(shape) == 4) or (t == "Conv1d" and len(shape) == 3)):
            return True
    return False


def _import_graph(nir: Any, ng: Any, dt: float, opts: dict, *, top: bool, where: str) -> Graph:
    label = where or "NIR graph"
    nodes_in = getattr(ng, "nodes", None)
    if not isinstance(nodes_in, dict):
        raise NIRConversionError(f"{label}: not a NIR graph (no nodes dict)")
    ghint = read_hint(getattr(ng, "metadata", None), label)
    edges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for e in ng.edges:
        try:
            s, d = (x.decode() if isinstance(x, bytes) else str(x) for x in e)
        except Exception:
            raise NIRConversionError(f"{label}: malformed edge {e!r}") from None
        s, d = _edge_end(s, nodes_in, "Output", f"{label}: edge {s!r} -> {d!r}"), _edge_end(d, nodes_in, "Input", f"{label}: edge {s!r} -> {d!r}")
        if (s, d) in seen:
            raise NIRConversionError(f"{label}: duplicate edge {s!r} -> {d!r} (NIR forbids them; its simulators disagree on their meaning)")
        seen.add((s, d))
        edges.append((s, d))

    nodes: dict[str, Node] = {}
    succ = _input_successors(edges, nodes_in)
    for name, nn in nodes_in.items():
        name = str(name)
        try:
            check_name(name)
        except GraphValidationError as exc:
            raise NIRConversionError(f"{label}: {exc}") from None
        here = f"{where}/{name}" if where else name
        node: Node
        if type(nn).__name__ == "Input" and declared_shape(getattr(nn, "input_type", None), "input_type") is None:
            node = P.Input(shape=_shape_from_successors(succ.get(name, []), here))
        else:
            node = _import_node(nir, name, nn, dt, opts, here)
        if isinstance(node, P.Input):
            strip = opts["strip_batch"]
            leak = _batch_leak(tuple(node.shape), succ.get(name, []))
            if strip is True or (strip is None and leak):
                if not node.shape:
                    raise NIRConversionError(f"{here}: strip_batch=True but the Input has no dimension to strip")
                if strip is None:
                    warn_nir(f"{here}: NIR Input shape {tuple(node.shape)} starts with a batch dimension (an exporter without "
                          f"ignore_dims=[0]); using {tuple(node.shape[1:])}. Pass strip_batch=False to keep it")
                node = node.replace(shape=tuple(node.shape[1:]))
        if isinstance(node, Graph) and (len(node.input_names) != 1 or len(node.output_names) != 1):
            raise NIRConversionError(
                f"{here}: subgraph with {len(node.input_names)} Input and {len(node.output_names)} Output nodes; NIR edges "
                "name whole nodes, so which input an edge feeds (or which output it carries) is undefined")
        nodes[name] = node

    # NIR's own type inference adds Input/Output nodes to dangling ends; do the same.
    has_in = {d for _, d in edges}
    has_out = {s for s, _ in edges}
    for name in list(nodes):
        node = nodes[name]
        if name not in has_in and not isinstance(node, P.Input):
            shape = _nir_in_shape(nodes_in[name])
            if shape is None:
                raise NIRConversionError(f"{label}: node {name!r} has no input edge and no declared input shape")
            new = _fresh(f"input_{name}", nodes)
            nodes[new] = P.Input(shape=shape)
            edges.append((new, name))
        if name not in has_out and not isinstance(node, P.Output):
            new = _fresh(f"output_{name}", nodes)
            nodes[new] = P.Output()
            edges.append((name, new))

    # Several edges into a node that takes one input: NIR sums them; TALON says so with a Skip(residual).
    indegree: dict[str, int] = {}
    for _, d in edges:
        indegree[d] = indegree.get(d, 0) + 1
    sums: dict[str, str] = {}  # inserted sum node -> the node it feeds
    into: dict[str, str] = {}
    for name, node in list(nodes.items()):
        if indegree.get(name, 0) > 1 and not node_sums_inputs(node):
            s_name = _fresh(f"{name}_sum", nodes)
            nodes[s_name] = P.Skip(skip_type="residual")
            sums[s_name], into[name] = name, s_name
    if into:
        edges = [(s, into.get(d, d)) for s, d in edges] + [(s_name, name) for s_name, name in sums.items()]

    metadata: dict = {}
    extras: dict = {}
    own_dt = dt
    order = None
    if ghint is not None:
        try:
            metadata = decode(ghint["metadata"]) if "metadata" in ghint else {}
            extras = decode(ghint["extras"]) if "extras" in ghint else {}
            if not top:
                own_dt = float(ghint.get("dt", dt))
            order = ghint.get("order")
        except Exception as exc:
            warn_nir(f"{label}: TALON graph hint not used ({exc})")
            metadata, extras, order = {}, {}, None
    foreign = foreign_metadata(getattr(ng, "metadata", None), label)
    if ghint is None and foreign:
        metadata = {"nir_metadata": foreign}
    if not (isinstance(order, list) and sorted(order) == sorted(nodes)):
        order = None
    try:
        g = Graph({n: nodes[n] for n in (order or nodes)}, edges, dt=own_dt if own_dt > 0 else dt, metadata=metadata, extras=extras)
        check_cycles(g, label)
        fit_foreign_shapes(g, {str(k): v for k, v in nodes_in.items()}, where)
        if order is None and (sums or opts.get("reorder")):
            g = Graph({n: g.nodes[n] for n in _pretty_order(g, sums, opts.get("reorder", False))}, edges, dt=g.dt,
                      metadata=metadata, extras=extras)
        g.validate()
    except NIRConversionError:
        raise
    except GraphValidationError as exc:
        raise NIRConversionError(f"{label}: the NIR graph does not make a valid TALON graph: {exc}") from None

    # Output nodes record their shape (NIR declares one), unless the hint says the TALON node had none.
    changed = False
    for name, node in g.nodes.items():
        if isinstance(node, P.Output) and node.shape is None and name in nodes_in and not _hint_says_none(nodes_in[name], label):
            inferred = node.input_shape
            declared = declared_shape(getattr(nodes_in[name], "output_type", None), "output_type")
            if declared and inferred is not None and declared != inferred and int(np.prod(declared)) != int(np.prod(inferred)):
                warn_nir(f"{label}/{name}: NIR Output declares shape {declared}, but the graph computes {inferred}; using {inferred}")
            g.nodes[name] = node.replace(shape=inferred)
            changed = True
    if changed:
        g.infer_shapes()
    return g


def _hint_says_none(nn: Any, label: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hint = read_hint(getattr(nn, "metadata", None), label)
    return hint is not None and "shape" in hint.get("none", [])


def _fresh(base: str, taken: dict) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def _pretty_order(g: Graph, sums: dict[str, str], topological: bool) -> list[str]:
    """NIR's node order, or a topological one (for files, whose node order HDF5 does not keep), with
    inserted sum nodes just before the node they feed."""
    order = [n for n in (g.topological_order() if topological else g.nodes) if n not in sums]
    out: list[str] = []
    feeds: dict[str, list[str]] = {}
    for s, d in sums.items():
        feeds.setdefault(d, []).append(s)
    for n in order:
        out.extend(feeds.get(n, []))
        out.append(n)
    return out


def _resolve_dt(ng: Any, dt: float | None, advice: TimeUnitAdvice | None = None) -> float:
    if dt is not None:
        value = float(dt)
        if not (np.isfinite(value) and value > 0):
            raise NIRConversionError(f"dt must be a positive number, got {dt!r}")
        return value
    md = getattr(ng, "metadata", None)
    if isinstance(md, dict) and "dt" in md:
        try:
            value = float(np.asarray(md["dt"]).reshape(-1)[0])
            if np.isfinite(value) and value > 0:
                return value
        except Exception:
            pass
        warn_nir(f"ignoring the NIR graph's metadata dt={md['dt']!r}: not a positive number")
    if advice is not None:
        warn_nir(advice.message(DEFAULT_DT))
        return DEFAULT_DT
    warn_nir(f"the NIR graph does not say which timestep it was made for; using dt={DEFAULT_DT:g} (snnTorch's export "
          "convention). NIR time constants are in the exporter's time unit, so pass dt= in that unit (e.g. dt=1e-3 for "
          "Norse after 1.1, whose time constants are in seconds, run with its default 1 ms step; files from Norse 1.1 "
          "need dt=1e-6 and files from sinabs, in steps, dt=1)")
    return DEFAULT_DT


def _foreign_time_unit(ng: Any) -> TimeUnitAdvice | None:
    """What a file without TALON's record of dt says about its time unit (nir_units)."""
    md = getattr(ng, "metadata", None)
    if isinstance(md, dict) and ("dt" in md or HINT_KEY in md):
        return None
    return advise_dt(ng)


def _check_stability(g: Graph, dt: float, where: str = "", advice: TimeUnitAdvice | None = None) -> None:
    """Forward Euler with dt > tau overshoots (beta < 0): legal, but rarely what the exporter meant.
    (Nested graphs run with their parent's dt.)"""
    for name, node in g.nodes.items():
        here = f"{where}/{name}" if where else name
        if isinstance(node, Graph):
            _check_stability(node, dt, here, advice)
            continue
        for field in ("tau", "tau_syn", "tau_mem"):
            tau = getattr(node, field, None)
            if isinstance(tau, np.ndarray) and tau.size and np.any(dt > tau):
                better = (f"; {advice.evidence}: pass dt={advice.dt:g}" if advice is not None and advice.dt < dt
                          else "; choose a smaller dt")
                warn_nir(f"{here}: dt={dt:g} exceeds {field}={float(np.min(tau)):g}, so beta = 1 - dt/{field} < 0 and the "
                      f"discretised neuron oscillates{better}")
                break


def from_nir(nir_graph_or_path: Any, *, dt: float | None = None, strip_batch: bool | None = None, _reorder: bool = False) -> Graph:
    """A talon.ir Graph computing what a NIR graph (or `.nir` file) describes, discretised with step `dt`.

    dt: the timestep, in the unit of the graph's time constants. Default: the graph's metadata `dt` (set
        by to_nir), else 1e-4 (snnTorch's export convention) with a NIRConversionWarning.
    strip_batch: drop the first dimension of Input shapes (True), keep it (False), or (None) drop it where
        it is evidently a batch dimension leaked by the exporter, with a warning.

    Raises NIRConversionError naming the node for anything TALON cannot run exactly as NIR specifies it,
    and MissingDependencyError without `nir`.
    """
    if isinstance(nir_graph_or_path, (str, os.PathLike)):
        return read_nir(nir_graph_or_path, dt=dt, strip_batch=strip_batch)
    nir = require_nir()
    ng = nir_graph_or_path
    if not isinstance(ng, nir.NIRGraph):
        if not isinstance(ng, nir.NIRNode):
            raise NIRConversionError(f"from_nir expects a nir.NIRGraph, a NIR node or a path, got {type(ng).__name__}")
        try:
            ng = nir.NIRGraph.from_list(ng, type_check=False)
        except Exception as exc:
            raise NIRConversionError(f"cannot wrap the single {type(ng).__name__} node into a graph ({exc}); wrap it in a "
                                     "nir.NIRGraph with Input and Output nodes") from None
    advice = _foreign_time_unit(ng)
    step = _resolve_dt(ng, dt, advice)
    g = _import_graph(nir, ng, step, {"strip_batch": strip_batch, "reorder": _reorder}, top=True, where="")
    g.dt = step
    _check_stability(g, step, advice=advice)
    return g


# ----------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------


def is_nir_file(path: str | os.PathLike) -> bool:
    """True for a `.nir` path, or an HDF5 file holding NIR's top-level `node` group and no TALON `graph`."""
    p = Path(path)
    if p.suffix.lower() == ".nir":
        return True
    if not p.is_file():
        return False
    import h5py

    from talon.ir import _hdf5_safety

    try:  # links are looked at, never followed: an external link may name a FIFO
        with _hdf5_safety.opened(p) as (raw, _), _hdf5_safety.hdf5_file(raw, p) as f:
            return "graph" not in f and isinstance(f.get("node", getlink=True), h5py.HardLink) and isinstance(f.get("node"), h5py.Group)
    except Exception:
        return False


def _nir_read(nir: Any, f: Any) -> Any:
    """nir.read with type checking off at every level (nested graphs too): TALON checks shapes itself, and
    files from older exporters often carry inconsistent declared types. `f` is an open, checked h5py file."""
    import h5py

    from nir.serialization import hdf2dict

    def no_check(d: dict) -> None:
        if isinstance(d, dict) and d.get("type") in ("NIRGraph", b"NIRGraph"):
            d["type_check"] = False
            for child in (d.get("nodes") or {}).values():
                no_check(child)

    if not isinstance(f.get("node"), h5py.Group):
        if isinstance(f.get("graph"), h5py.Group):  # a .t1c file under a .nir name
            raise TalonFormatError("it holds a TALON graph (/graph), not NIR content (/node): name it .t1c to read it as one")
        raise ValueError("no top-level 'node' group")
    data = hdf2dict(f["node"])
    if _nir_depth(data) > MAX_GRAPH_DEPTH:
        raise TalonFormatError(f"graphs nested more than {MAX_GRAPH_DEPTH} levels deep (the limit, see docs/format.md)")
    no_check(data)
    _check_nodes(nir, data, "")
    return nir.dict2NIRNode(data)


def _check_nodes(nir: Any, d: dict, where: str) -> None:
    """Name the node of a NIR file that `nir` cannot build (its own errors name none: a bare AssertionError for an
    unknown type), and fill in what older nir did not write: convolutions without `input_shape` (nir < 1.0);
    read integer edges as the names of index-named nodes."""
    nodes = d.get("nodes")
    if not isinstance(nodes, dict):
        raise NIRConversionError(f"{where or 'the top-level graph'}: a NIRGraph without a 'nodes' group")
    edges = d.get("edges")
    if isinstance(edges, np.ndarray) and edges.dtype.kind in "iu":
        # nodes named by their index, edges written as integers (Lava's netx exporter); nir reads only names
        d["edges"] = [(str(int(a)), str(int(b))) for a, b in edges.reshape(-1, 2)]
    for name, child in nodes.items():
        here = f"{where}/{name}" if where else str(name)
        kind = child.get("type") if isinstance(child, dict) else None
        if kind in ("NIRGraph", b"NIRGraph"):
            _check_nodes(nir, child, here)
            continue
        if kind in ("Conv1d", "Conv2d") and "input_shape" not in child:
            child["input_shape"] = None  # nir < 1.0 did not record it; TALON infers shapes itself
        try:
            nir.dict2NIRNode(dict(child))
        except AssertionError:
            known = ", ".join(sorted([*nir_import_classes(), "NIRGraph"]))
            raise NIRConversionError(f"node {here!r} has type {kind!r}, which nir {getattr(nir, '__version__', '')} does not "
                                     f"define (TALON reads: {known}); the file needs a newer nir or comes from a tool's own "
                                     "extension of NIR") from None
        except Exception as exc:
            raise NIRConversionError(f"node {here!r} ({kind}) cannot be built by nir: {type(exc).__name__}: {exc}") from None


def _nir_depth(d: Any, limit: int = MAX_GRAPH_DEPTH + 1) -> int:
    """How deep NIRGraphs nest inside the NIRGraph dict `d` (counted up to `limit`)."""
    inner = [c for c in ((d.get("nodes") if isinstance(d, dict) else None) or {}).values()
             if isinstance(c, dict) and c.get("type") in ("NIRGraph", b"NIRGraph")]
    if not inner or limit <= 0:
        return 0
    return 1 + max(_nir_depth(c, limit - 1) for c in inner)


def read_nir(path: str | os.PathLike, *, dt: float | None = None, strip_batch: bool | None = None) -> Graph:
    """Read a `.nir` file into a talon.ir Graph (see from_nir for dt and strip_batch).

    The file is opened once and checked as a .t1c is (docs/format.md, "Opening untrusted files").
    Raises TalonFormatError (NIRConversionError for a readable file TALON cannot convert exactly), naming the file.
    """
    from talon.ir import _hdf5_safety

    p = Path(path)
    if not p.exists():
        raise _hdf5_safety.TalonFileNotFoundError(f"{str(p)!r}: no such file")
    if p.is_dir():
        raise TalonFormatError(f"{str(p)!r} is a folder, not a .nir file")
    require_nir()
    with _hdf5_safety.checked_hdf5(p) as (f, census, size):
        return read_nir_hdf5(f, p, census, size, dt=dt, strip_batch=strip_batch, checked=True)


def read_nir_hdf5(f: Any, p: Path, census: Any, size: int, *, dt: float | None = None, strip_batch: bool | None = None,
                  checked: bool = False) -> Graph:
    """The Graph in an open HDF5 file holding NIR content, whose links and heaps `census` has checked."""
    from talon.ir import _hdf5_safety

    nir = require_nir()
    if not checked:
        _hdf5_safety.check_declared_sizes(census, size, lambda m: TalonFormatError(f"{p.name}: {m}"))
    try:
        ng = _nir_read(nir, f)
    except TalonFormatError as exc:
        raise type(exc)(f"{p.name}: {exc}") from None
    except Exception as exc:
        raise TalonFormatError(f"cannot read {p.name} as a NIR file: {type(exc).__name__}: {exc}") from None
    try:
        return from_nir(ng, dt=dt, strip_batch=strip_batch, _reorder=True)
    except NIRConversionError as exc:
        raise NIRConversionError(f"{p.name}: {exc}") from None

