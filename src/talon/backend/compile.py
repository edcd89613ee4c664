"""From a fixed-point plan to a HardwareDescriptor (shared by every backend that targets hardware)."""

from __future__ import annotations

import numpy as np

import talon
from talon.backend.descriptor import DESCRIPTOR_VERSION, HardwareDescriptor, jsonable, smallest_int_dtype
from talon.ir import Graph
from talon.ir.node import ARRAY


def build_descriptor(graph: Graph, plan, *, core_assignment: dict | None = None, routes: dict | None = None) -> HardwareDescriptor:
    """Describe `graph` realised by `plan` (a talon.backend.cpu.fixed.FixedPointPlan).

    Scalar fields of each primitive (stride, padding, kernel size, reset mode, ...) are copied as they
    are; array fields are replaced by the plan's integers (`<node>/<field>` arrays, each at the
    narrowest integer dtype that holds it). `core_assignment` and `routes` come from a talon.mapping result
    (None for an unmapped graph).
    """
    from talon.backend.cpu.fixed import FIXED_POINT_VERSION

    shapes = graph.infer_shapes()
    nodes = []
    arrays: dict[str, np.ndarray] = {}
    for name in plan.order:
        node = graph.nodes[name]
        p = plan.nodes[name]
        scalars = {}
        for fname, spec in node.field_specs().items():
            if spec.kind == ARRAY or fname == "metadata":
                continue
            value = getattr(node, fname)
            if value is not None:
                scalars[fname] = jsonable(value)
        for key, ints in p.ints.items():
            a = np.asarray(ints)
            arrays[f"{name}/{key}"] = a.astype(smallest_int_dtype(a))
        record = p.to_dict()
        record.update(
            {
                "input_shapes": [list(s) for s in (node.input_shapes or [])],
                "output_shape": list(shapes[name][0]) if shapes[name] else None,
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
        "mapping": {"core_assignment": core_assignment, "routes": routes},
    }
    return HardwareDescriptor(meta, arrays)
