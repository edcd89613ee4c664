"""Jupyter's rich display of a Graph (`Graph._repr_html_`): its nodes in order with their type, output
shape and fields, and its edges. Layer 0 like the rest of talon.ir (talon._html, the standard library,
numpy); the interactive view is talon.viz.html."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from talon._html import card, table

_SKIP = {"input_shapes", "output_shapes"}


def _field_text(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{list(value.shape)}" if value.size > 4 else np.array2string(value, precision=4, separator=", ")
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def _fields(node: Any) -> str:
    if not dataclasses.is_dataclass(node):
        return ""
    parts = []
    for f in dataclasses.fields(node):
        if f.name in _SKIP or f.name.startswith("_"):
            continue
        v = getattr(node, f.name, None)
        if v is None:
            continue
        parts.append(f"{f.name}={_field_text(v)}")
    text = ", ".join(parts)
    return text if len(text) <= 160 else text[:157] + "…"


def graph_html(graph: Any) -> str:
    """An HTML card: one row per node (name, type, output shape, fields) and the edges."""
    try:
        shapes = graph.copy().infer_shapes()  # on a copy: inference writes shapes onto the nodes
        problem = ""
    except Exception as exc:  # noqa: BLE001 - an invalid graph still displays, with the reason
        shapes, problem = {}, f"shapes not inferred: {exc}"
    rows = []
    for name, node in graph.nodes.items():
        out = shapes.get(name)
        shape = " ".join(str(tuple(int(d) for d in s)) for s in out) if out else "?"
        rows.append([name, node.type_name, shape, _fields(node) if node.type_name != "Graph" else f"nested graph, {len(node.nodes)} nodes"])
    edges = ", ".join(f"{s} → {d}" for s, d in graph.edges[:60]) + (f", … {len(graph.edges) - 60} more" if len(graph.edges) > 60 else "")
    parts = [table(["node", "type", "output shape", "fields"], rows), f"edges: {edges or 'none'}"]
    if problem:
        parts.append(problem)
    return card(f"TALON Graph: {len(graph.nodes)} nodes, {len(graph.edges)} edges, dt={graph.dt:g}", parts)
