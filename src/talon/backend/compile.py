"""From a fixed-point plan to a HardwareDescriptor (shared by every backend that targets hardware)."""

from __future__ import annotations

import numpy as np

import talon
from talon._json import jsonable
from talon.backend.descriptor import DESCRIPTOR_VERSION, FIXED_POINT_VERSION, HardwareDescriptor, descriptor_value, smallest_int_dtype
from talon.ir import Graph, Node
from talon.ir.node import ARRAY
from talon.sdk._graph import infer_shapes


def scalar_params(name: str, node: Node) -> dict:
    """The descriptor's `params` of node `name`: every set scalar (non-array) field but metadata, as
    descriptor_value encodes it (BackendError naming the node and field for a non-finite number)."""
    params = {}
    for fname, spec in node.field_specs().items():
        if spec.kind == ARRAY or fname == "metadata":
            continue
        value = getattr(node, fname)
        if value is not None:
            params[fname] = descriptor_value(name, fname, value)
    return params


def build_descriptor(graph: Graph, plan, *, core_assignment: dict | None = None, routes: dict | None = None) -> HardwareDescriptor:
    """Describe `graph` realised by `plan` (a talon.backend.cpu.fixed.FixedPointPlan).

    Scalar fields of each primitive (stride, padding, kernel size, reset mode, ...) are copied as they
    are (a non-finite one raises BackendError naming the node and field); array fields are replaced by
    the plan's integers (`<node>/<field>` arrays, each at the narrowest integer dtype that holds it).
    `core_assignment` and `routes` come from a talon.mapping result (None for an unmapped graph); they
    are informational and follow the project's JSON policy (talon._json). `graph` is not modified.
    """
    # sdk's inference works on copies of the nodes: the caller's graph keeps the shapes it had
    shapes = infer_shapes(graph)
    nodes = []
    arrays: dict[str, np.ndarray] = {}
    for name in plan.order:
        node = graph.nodes[name]
        p = plan.nodes[name]
        scalars = scalar_params(name, node)
        for key, ints in p.ints.items():
            a = np.asarray(ints)
            arrays[f"{name}/{key}"] = a.astype(smallest_int_dtype(a))
        ins, outs = shapes[name]
        record = p.to_dict()
        record.update(
            {
                "input_shapes": [list(s) for s in ins],
                "output_shape": list(outs[0]) if outs else None,
                "inputs": graph.predecessors(name),
                "params": scalars,
                "arrays": sorted(p.ints),
            }
        )
        nodes.append(record)
    meta = {
        "format": "talon-hardware-descriptor",
        "descriptor_version": DESCRIPTOR_VERSION,
        "fixed_point_version": FIXED_POINT_VERSION,
        "talon_version": talon.__version__,
        "dt": float(graph.dt),
        "inputs": graph.input_names,
        "outputs": graph.output_names,
        "edges": [[s, d] for s, d in graph.edges],
        "layer_order": list(plan.order),
        "fixed_point": plan.config.to_dict(),
        "calibration": plan.calibration.description,
        "nodes": nodes,
        "mapping": {"core_assignment": jsonable(core_assignment), "routes": jsonable(routes)},
    }
    return HardwareDescriptor(meta, arrays)
