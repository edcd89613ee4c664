"""Forms other NIR exporters write whose meaning only the shape a node receives settles (docs/nir.md,
"Shapes and batch dimensions"): read exactly, with a NIRConversionWarning saying what was read.

* Per-element parameters with leading dimensions of size 1 beyond the input's rank (sinabs takes `IF.r` and
  `v_threshold` from its membrane state, batch dimension included: shape (1, N) behind an Affine of N outputs).
  Broadcasting makes the leading 1s the batch dimension, so dropping them computes the same.
* A nested graph whose Input declares the empty shape () (NIR's type of a node built from 0-d parameters,
  such as Norse's scalar `CubaLI`): its sample shape is the one it receives.
* A Flatten whose declared input type is a placeholder of zeros one rank longer than its input (sinabs writes
  `Flatten(input_type=[0, 0, 0, 0], start_dim=1)` from `nn.Flatten()`): its dimensions count the batch.

A dense weight stored (in, out) (haiku/Spyx) is no such form: it contradicts NIR's (out, in), so a node whose
input size matches only the transposed weight is refused, naming the transposition.

Only nodes that carry no TALON hint are touched (files from other tools); TALON's own files read back exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from talon.errors import GraphValidationError, PrimitiveError
from talon.ir import primitives as P
from talon.ir.graph import Graph
from talon.ir.nir_common import HINT_KEY, NIRConversionError, declared_shape, warn_nir
from talon.ir.node import Node

__all__ = ["fit_foreign_shapes"]

#: NIR classes whose parameters hold one value per element of the (sample) input.
_ELEMENTWISE = ("LIF", "IF", "LI", "I", "CubaLIF", "Threshold", "Scale", "Delay")


def fit_foreign_shapes(g: Graph, nodes_in: dict, where: str) -> None:
    """Rewrite, in place, the nodes of `g` (imported from NIR nodes `nodes_in`; `where`: the graph's path, "" at the
    top) that the forms above need."""
    flattened: set[str] = set()
    for _ in range(len(g.nodes) + 1):
        failures: dict = {}
        try:
            g.infer_shapes(failures=failures)
        except GraphValidationError:
            return  # a structural problem: validate() reports it
        if _fit_flattens(g, nodes_in, where, flattened):
            continue  # what follows a Flatten is judged on its new shape
        foreign = {name: (nodes_in[name], tuple(ins[0])) for name, (ins, _) in failures.items()
                   if name in nodes_in and not _has_hint(nodes_in[name]) and len(ins) == 1}
        changed = False
        for name, (nn, in_shape) in foreign.items():
            new = _fit_node(g.nodes[name], nn, in_shape, _here(where, name))
            if new is not None:
                g.nodes[name] = new
                changed = True
        if not changed:
            for name, (nn, in_shape) in foreign.items():
                _refuse_transposed(nn, in_shape, _here(where, name))
                _refuse_reshaped(g.nodes[name], nn, in_shape, _here(where, name))
            return


def _here(where: str, name: str) -> str:
    return f"{where}/{name}" if where else name


def _has_hint(nn: Any) -> bool:
    md = getattr(nn, "metadata", None)
    return isinstance(md, dict) and HINT_KEY in md


def _fit_node(node: Node, nn: Any, in_shape: tuple, where: str) -> Node | None:
    if isinstance(node, Graph):
        return _fit_scalar_subgraph(node, in_shape, where)
    if type(nn).__name__ in _ELEMENTWISE:
        return _drop_leading_ones(node, in_shape, where)
    return None


def _refuse_transposed(nn: Any, in_shape: tuple, where: str) -> None:
    """A dense weight stored (in, out) (haiku/Spyx) fails on its input's size: say so rather than only that it fails."""
    w = getattr(nn, "weight", None)
    if type(nn).__name__ not in ("Linear", "Affine") or w is None or len(getattr(w, "shape", ())) != 2 or not in_shape:
        return
    rows, cols = (int(d) for d in w.shape)
    if in_shape[-1] == rows != cols:
        raise NIRConversionError(f"{where}: {type(nn).__name__} weight {(rows, cols)} receives inputs of size {in_shape[-1]}: the "
                                 "weight is stored (in, out), as haiku/Spyx keep it, but NIR's weight is (out, in); transpose "
                                 "it in the exporter (or the NIR graph) before reading it")


def _refuse_reshaped(node: Node, nn: Any, in_shape: tuple, where: str) -> None:
    """Per-element parameters with as many values as the input has elements, in another shape (flattened, or
    another layout): which value belongs to which element is the exporter's convention, so say that."""
    if type(nn).__name__ not in _ELEMENTWISE or not in_shape:
        return
    size = int(np.prod(in_shape))
    odd = {k: a.shape for k, a in node.arrays() if a.size == size and a.shape != tuple(in_shape)}
    if odd:
        raise NIRConversionError(f"{where}: {type(nn).__name__} parameters {odd} hold one value per element of its input "
                                 f"{tuple(in_shape)} but in another shape, so which value belongs to which element is the "
                                 f"exporter's layout convention; reshape them to {tuple(in_shape)} in that layout (or put a "
                                 "Flatten before the node) before reading the graph")


def _shapes_ok(node: Node, in_shape: tuple) -> bool:
    try:
        node.infer_output_shapes([in_shape])
        return True
    except (GraphValidationError, PrimitiveError, ValueError):
        return False


def _drop_leading_ones(node: Node, in_shape: tuple, where: str) -> Node | None:
    changes = {}
    for name, arr in node.arrays():
        extra = arr.ndim - len(in_shape)
        if extra > 0 and all(d == 1 for d in arr.shape[:extra]):
            changes[name] = np.ascontiguousarray(arr.reshape(arr.shape[extra:]))
    if not changes:
        return None
    try:
        new = node.replace(**changes)
    except (PrimitiveError, TypeError, ValueError):
        return None
    if not _shapes_ok(new, in_shape):
        return None
    shapes = ", ".join(f"{k} {node_arr.shape}" for k, node_arr in node.arrays() if k in changes)
    warn_nir(f"{where}: parameters {shapes} carry leading dimensions of size 1 that its input {in_shape} lacks (a batch "
             "dimension the exporter kept, as sinabs does); reading them without it, which computes the same")
    return new


def _fit_scalar_subgraph(sub: Graph, in_shape: tuple, where: str) -> Graph | None:
    ins = sub.input_names
    if len(ins) != 1 or tuple(sub.nodes[ins[0]].shape) != ():
        return None
    nodes = dict(sub.nodes)
    nodes[ins[0]] = nodes[ins[0]].replace(shape=in_shape)
    for name in sub.output_names:
        if nodes[name].shape == ():
            nodes[name] = nodes[name].replace(shape=None)
    new = Graph(nodes, list(sub.edges), dt=sub.dt, metadata=sub.metadata, extras=sub.extras)
    try:
        new.infer_shapes()
    except GraphValidationError:
        return None
    for name in new.output_names:
        if new.nodes[name].shape is None:
            new.nodes[name] = new.nodes[name].replace(shape=new.nodes[name].input_shape)
    return new


def _fit_flattens(g: Graph, nodes_in: dict, where: str, done: set[str]) -> bool:
    changed = False
    for name, node in list(g.nodes.items()):
        nn = nodes_in.get(name)
        if name in done or not isinstance(node, P.Flatten) or nn is None or _has_hint(nn) or not node.input_shapes:
            continue
        declared = declared_shape(getattr(nn, "input_type", None), "input_type")
        rank = len(node.input_shapes[0])
        if not declared or any(declared) or len(declared) != rank + 1:
            continue
        start, end = node.start_dim, node.end_dim
        if start < 1 and end < 1:
            continue
        new_start = start - 1 if start >= 1 else start
        new_end = end - 1 if end >= 1 else end
        warn_nir(f"{_here(where, name)}: Flatten declares a placeholder input type {declared} one dimension longer than its "
                 f"input {tuple(node.input_shapes[0])}, so its start_dim/end_dim ({start}, {end}) count the batch dimension "
                 f"(as sinabs writes them); reading them as ({new_start}, {new_end})")
        g.nodes[name] = node.replace(start_dim=new_start, end_dim=new_end)
        done.add(name)
        changed = True
    return changed
