"""TALON -> NIR: `to_nir` and `write_nir` (docs/nir.md).

Each node is written by the export its type registered (nir_registry; the built-ins in nir_neurons and
nir_layers), a nested Graph as a nested NIRGraph. What NIR cannot hold travels as TALON's hint in the NIR
node's metadata: the smallest difference between the node and what the NIR node's registered import
restores (nir_import checks that the restored node re-exports to exactly the same NIR node).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any

import numpy as np

from talon.errors import GraphValidationError, PrimitiveError, TalonFormatError
from talon.ir import nir_layers, nir_neurons  # noqa: F401  (the built-in primitives register their conversions)
from talon.ir import primitives as P
from talon.ir._atomic import atomic_path
from talon.ir.graph import Graph
from talon.ir.nir_common import (
    HINT_KEY, HINT_VERSION, NIRConversionError, NIRConversionWarning, Unencodable, check_cycles, encode, nir_metadata_out,
    reduce_to, require_nir, warn_nir,
)
from talon.ir.nir_registry import NIRExportContext, NIRImportContext, nir_default_type, nir_exporter, nir_importer
from talon.ir.nir_resets import ResetMeasure, approximation_message, reset_approximation, reset_measure
from talon.ir.node import ARRAY, Node, _coerce, get_node_class, values_equal

__all__ = ["to_nir", "write_nir", "export_node", "imported_fields", "coerced_fields", "node_hint"]


def export_node(nir: Any, name: str, node: Node, in_shape: tuple | None, out_shape: tuple | None, dt: float,
                approx: bool = False) -> Any:
    """The NIR node computing exactly what `node` computes, given its (sample) input and output shapes
    (approx: subtract/zero_post neurons as NIR's reset, see nir_resets)."""
    if isinstance(node, Graph):
        return _export_graph(nir, node, dt, top=False, where=name, approx=approx)
    ctx = NIRExportContext(nir, name, node.type_name, None if in_shape is None else tuple(in_shape),
                        None if out_shape is None else tuple(out_shape), dt, bool(approx))
    return nir_exporter(node.type_name, ctx)(node, ctx)


def imported_fields(nir: Any, nn: Any, type_name: str, dt: float, where: str) -> dict | None:
    """The fields of a `type_name` node that NIR node `nn` determines (its registered import), None if none."""
    fn = nir_importer(type(nn).__name__, type_name)
    out = None if fn is None else fn(nn, NIRImportContext(nir, dt, where))
    return out if isinstance(out, dict) else None


def coerced_fields(ttype: str, fields: dict) -> dict:
    """Field values as the TALON node would hold them (dtype and container canonical)."""
    cls = get_node_class(ttype)
    specs = cls.field_specs() if cls is not None else {}
    out = {}
    for k, v in fields.items():
        try:
            out[k] = _coerce(ttype, k, specs[k], v)
        except (PrimitiveError, KeyError):
            out[k] = v
    return out


# ----------------------------------------------------------------------------------------------------
# Hints: what the NIR node cannot say about the TALON node, as the difference from the restored fields
# ----------------------------------------------------------------------------------------------------

def node_hint(nir: Any, node: Node, nn: Any, dt: float, where: str) -> dict:
    """The smallest hint that turns the fields NIR node `nn` determines back into `node`, exactly."""
    hint: dict = {}
    if isinstance(node, Graph):
        return hint
    natural = nir_default_type(type(nn).__name__)
    if node.type_name != natural:
        hint["type"] = node.type_name
    base = imported_fields(nir, nn, node.type_name, dt, where) or {}
    base = coerced_fields(node.type_name, base)
    defaults = type(node).field_defaults()
    none, shapes, arrays, fields = [], {}, {}, {}
    for name, spec in node.field_specs().items():
        if name == "metadata":
            continue
        value = getattr(node, name)
        ref = base.get(name, defaults.get(name))
        if values_equal(value, ref):
            continue
        if value is None:
            none.append(name)
        elif spec.kind == ARRAY and isinstance(ref, np.ndarray) and ref.dtype == value.dtype and _same(reduce_to(ref, value.shape), value):
            shapes[name] = list(value.shape)
        elif spec.kind == ARRAY:
            arrays[name] = encode(value)
        else:
            fields[name] = encode(value)
    if none:
        hint["none"] = none
    if shapes:
        hint["shapes"] = shapes
    if arrays:
        hint["arrays"] = arrays
    if fields:
        hint["fields"] = fields
    if node.metadata is not None:
        try:
            hint["metadata"] = encode(node.metadata)
        except Unencodable as exc:
            warn_nir(f"{where}: node metadata is not exported to NIR ({exc})")
    return hint


def _same(a: np.ndarray | None, b: np.ndarray) -> bool:
    return a is not None and values_equal(a, b)

# ----------------------------------------------------------------------------------------------------
# Graphs
# ----------------------------------------------------------------------------------------------------


def _export_graph(nir: Any, g: Graph, dt: float, *, top: bool, where: str, approx: bool = False) -> Any:
    try:
        g.validate()
    except GraphValidationError as exc:
        raise NIRConversionError(f"{where or 'graph'}: cannot export an invalid graph: {exc}") from None
    check_cycles(g, where or "graph")
    if not top:
        if len(g.input_names) != 1 or len(g.output_names) != 1:
            raise NIRConversionError(
                f"nested graph {where!r} has {len(g.input_names)} inputs and {len(g.output_names)} outputs: NIR cannot address "
                "one input or output of a subgraph (its edges name whole nodes), so only nested graphs with one Input and one "
                "Output export")
    nodes: dict[str, Any] = {}
    for name, node in g.nodes.items():
        here = f"{where}/{name}" if where else name
        in_shape = node.input_shapes[0] if node.input_shapes else None
        out_shape = node.output_shapes[0] if node.output_shapes else None
        nn = export_node(nir, here, node, in_shape, out_shape, dt, approx)
        if not isinstance(node, Graph):
            hint = node_hint(nir, node, nn, dt, here)
            md = nir_metadata_out(node.metadata)
            if hint:
                md[HINT_KEY] = json.dumps({"v": HINT_VERSION, **hint}, separators=(",", ":"))
            nn.metadata = md
        nodes[name] = nn
    ghint: dict = {"v": HINT_VERSION, "dt": g.dt, "order": list(g.nodes)}
    for key in ("metadata", "extras"):
        value = getattr(g, key)
        if value:
            try:
                ghint[key] = encode(value)
            except Unencodable as exc:
                warn_nir(f"{where or 'graph'}: graph {key} is not exported to NIR ({exc})")
    md = nir_metadata_out(g.metadata)
    if top:
        md["dt"] = float(g.dt)
    md[HINT_KEY] = json.dumps(ghint, separators=(",", ":"))
    out = nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in g.edges], metadata=md, type_check=False)
    return out


def to_nir(graph: Graph, *, dt: float | None = None, approximate_resets: bool = False, measure: ResetMeasure | None = None) -> Any:
    """The `nir.NIRGraph` computing exactly what `graph` computes.

    Node names, edges and their order are kept. Neuron parameters are broadcast to one value per neuron
    (NIR's convention); time constants keep their units, and `graph.dt` is recorded in the metadata.
    `dt`: write the graph for a reader that steps by `dt` in its own time unit instead (snnTorch's NIR
    importer assumes 1e-4): time constants are scaled by dt/graph.dt and IF/Integrator gains by its
    inverse (primitives.neurons.in_time_unit), so the dynamics are the same up to rounding.
    `approximate_resets=True`: write neurons with reset modes NIR cannot express (subtract, snnTorch's default;
    zero_post) as NIR's reset to v_reset instead of refusing them, and warn (NIRConversionWarning) with the
    effect on the spikes, measured by `measure(graph, approximated graph)` (default: the one TALON's runtime
    registers, talon.bridge.reset_effect). The true reset travels in TALON's metadata: from_nir restores it
    exactly; readers that ignore the metadata run NIR's reset (nir_resets.reset_approximation).
    Raises NIRConversionError naming the node for anything NIR cannot express exactly (reset modes
    subtract/zero_post unless approximated, MaxPool2d, activations, normalisation, ...), and
    MissingDependencyError without `nir`.
    """
    nir = require_nir()
    if not isinstance(graph, Graph):
        raise NIRConversionError(f"to_nir expects a talon.ir.Graph, got {type(graph).__name__}")
    original = graph
    if dt is not None:
        if not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and math.isfinite(dt) and dt > 0):
            raise NIRConversionError(f"to_nir: dt must be a positive number, got {dt!r}")
        graph = _in_time_unit(graph, float(dt))
    out = _export_graph(nir, graph, graph.dt, top=True, where="", approx=bool(approximate_resets))
    if approximate_resets:  # measured once the export succeeded, on the graph as the caller gave it
        _warn_approximation(original, measure)
    try:  # other tools read NIR files with type checking on; say so if they would refuse this one
        out.check_types()
    except Exception as exc:  # pragma: no cover - depends on nir's checker
        warn_nir(f"nir's type checker rejects the exported graph ({exc}); other tools may need nir.read(..., type_check=False)")
    return out


def _warn_approximation(graph: Graph, measure: ResetMeasure | None) -> None:
    approx_graph, changed = reset_approximation(graph)
    if not changed:
        return
    measure = measure if measure is not None else reset_measure()
    effect = None if measure is None else measure(graph, approx_graph)
    warnings.warn(approximation_message(changed, effect), NIRConversionWarning, stacklevel=3)


def _in_time_unit(graph: Graph, dt: float) -> Graph:
    """`graph` stepped by `dt`: every neuron (nested graphs included) in the new time unit."""
    k = dt / graph.dt
    nodes = {n: (_in_time_unit(node, node.dt * k) if isinstance(node, Graph) else P.in_time_unit(node, k)) for n, node in graph.nodes.items()}
    return Graph(nodes, list(graph.edges), dt=dt, metadata=graph.metadata, extras=graph.extras)



def write_nir(path: str | os.PathLike, graph: Graph, *, compression: str | None = None, durable: bool = False, dt: float | None = None,
              approximate_resets: bool = False, measure: ResetMeasure | None = None) -> None:
    """Write `graph` as a `.nir` file (atomically: a temporary file in the same folder, then renamed).

    compression: None, "gzip" or "lzf" for the arrays (NIR's writer applies it to every array).
    durable: flush the file and the rename to disk before returning (see talon.ir.write).
    dt: the timestep, in the reader's time unit, to write the time constants for (see to_nir).
    approximate_resets, measure: write resets NIR cannot express as NIR's, with a measured warning (see to_nir).
    """
    nir = require_nir()
    if compression not in (None, "gzip", "lzf"):
        raise TalonFormatError(f"write_nir({str(path)!r}): compression must be None, 'gzip' or 'lzf', got {compression!r}")
    ng = to_nir(graph, dt=dt, approximate_resets=approximate_resets, measure=measure)
    with atomic_path(path, durable=durable) as tmp:
        nir.write(str(tmp), ng, compression=compression)
