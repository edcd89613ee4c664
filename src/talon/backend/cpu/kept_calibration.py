"""A kept calibration: the fixed-point plan of a graph from a `Calibration` made earlier (a previous
fixed result's `fixed_point.calibration`, or `CPUBackend.calibrate`), with no calibration run.

A user calibrates once, on calibration data, and then evaluates many batches in fixed point; the plan a
kept calibration gives is exactly the plan the same calibration run would give inside the call
(`plan_fixed_point` on the same ranges). This module checks that the calibration fits the graph (the
ranges of exactly its nodes) and how it is used, refusing by name what does not fit, and keeps the
plans it made per graph content (talon.backend.cpu.graph_memo). numpy only.
"""

from __future__ import annotations

import math
import numbers
import pickle
from typing import Any

from talon.backend.cpu.fixed_format import Calibration, FixedPointConfig, FixedPointPlan
from talon.backend.cpu import graph_memo
from talon.backend.cpu.fixed_plan import plan_fixed_point
from talon.backend.cpu.fixed_registry import fixed_rule_for
from talon.errors import BackendError
from talon.ir import Graph
from talon.ir.node import DICT

_HOW = "make one for this graph with backend.calibrate(graph, calibration_inputs), or pass calibration_inputs= instead"


def check_kept_calibration_use(mode: str, calibration_inputs: Any) -> None:
    """Refuse `calibration=` where it has no meaning: in float mode, or beside `calibration_inputs=`."""
    if mode != "fixed":
        raise BackendError(f"calibration= holds fixed-point ranges and applies to mode='fixed' only; drop it to simulate in mode={mode!r}")
    if calibration_inputs is not None:
        raise BackendError(
            "pass either calibration= (a kept Calibration: no calibration run) or calibration_inputs= (calibrate on a "
            "float run of them), not both"
        )


def check_calibration(graph: Graph, calibration: Any) -> None:
    """Refuse a calibration that is not one of `graph`'s: every node needs its output range, every neuron its
    membrane range and every neuron with a synaptic current that range, and no other node may appear."""
    if not isinstance(calibration, Calibration):
        raise BackendError(
            f"calibration must be a talon.backend.cpu.fixed.Calibration (a fixed result's fixed_point.calibration or "
            f"backend.calibrate(graph, calibration_inputs)), got {type(calibration).__name__}"
        )
    wanted = {  # in graph order: the first node at fault is named
        "output": list(graph.nodes),
        "membrane": [n for n, node in graph.nodes.items() if node.state_fields],
        "synaptic current": [n for n, node in graph.nodes.items() if node.has_current],
    }
    given = {"output": calibration.max_abs_output, "membrane": calibration.max_abs_state,
             "synaptic current": calibration.max_abs_current}  # fmt: skip
    for what, names in wanted.items():
        ranges = given[what]
        if not isinstance(ranges, dict):
            raise BackendError(f"calibration: its {what} ranges must be a dict of node name -> largest |value|, got {type(ranges).__name__}")
        missing = [n for n in names if n not in ranges]
        if missing:
            raise BackendError(f"calibration does not match the graph: node {missing[0]!r} has no calibrated {what} range "
                               f"(the calibration was made for another graph, or the graph changed since); {_HOW}")
        known = set(names)
        extra = [n for n in ranges if n not in known]
        if extra:
            where = "the graph has no node" if extra[0] not in graph.nodes else f"the graph's node has no {what}"
            raise BackendError(f"calibration does not match the graph: it holds a {what} range for {extra[0]!r}, but {where} "
                               f"of that name (the calibration was made for another graph); {_HOW}")
        for n, v in ranges.items():
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not (math.isnan(v) or v >= 0):
                raise BackendError(f"calibration: the {what} range of node {n!r} must be a largest |value| (a float >= 0), got {v!r}")


def plan_from_calibration(graph: Graph, calibration: Calibration, config: FixedPointConfig | None = None, *,
                          costs: dict | None = None, memo: dict | None = None) -> FixedPointPlan:
    """The fixed-point plan of `graph` on a kept calibration, checked against the graph first.

    The plan is kept with the graph (talon.backend.cpu.graph_memo: the graph's structure, fields and
    array bytes) under everything else it is made from: the calibration's ranges and description, the
    config, the graph's dt, its metadata and its nodes' dict fields (copied into the plan's graph), and
    the fixed-point rule of each node type. Any change to one of them makes a new plan; the last
    `KEPT_PLANS` plans of a graph are kept. A kept plan is shared by the results of the calls that use
    it (`result.fixed_point`): read it, never change it. `memo`: graph_memo.derived(graph), when the
    caller has it already."""
    check_calibration(graph, calibration)
    config = config or FixedPointConfig()
    key = _plan_key(graph, calibration, config)
    if memo is None:
        memo = graph_memo.derived(graph)
    plans = memo.setdefault("kept_calibration_plans", {}) if key is not None else {}
    hit = plans.get(key)
    if hit is not None:
        return hit
    own = Calibration(dict(calibration.max_abs_output), dict(calibration.max_abs_state), calibration.description,
                      dict(calibration.max_abs_current))  # the plan's own copy: later changes to the caller's are not its
    plan = plan_fixed_point(graph, own, config, costs=costs)
    if key is not None:
        while len(plans) >= KEPT_PLANS:
            del plans[next(iter(plans))]
        plans[key] = plan
    return plan


#: plans kept per graph (one per calibration and config in use)
KEPT_PLANS = 4


def _plan_key(graph: Graph, calibration: Calibration, config: FixedPointConfig) -> tuple | None:
    """What a plan is made from beyond graph_memo's content key; None where it cannot be keyed (a node
    type without a fixed-point rule, which planning refuses, or dict fields that cannot be pickled)."""
    try:
        rules = tuple(fixed_rule_for(node.type_name) for node in graph.nodes.values())
    except (BackendError, AttributeError):  # no rule, or a nested graph: planning refuses it by name
        return None
    try:
        dicts = pickle.dumps((graph.metadata, [[getattr(node, f) for f in graph_memo.fields_of_kind(type(node), DICT)] for node in graph.nodes.values()]), protocol=5)
    except Exception:  # noqa: BLE001  (any object pickle refuses: no key, the plan is made afresh)
        return None
    ranges = tuple(tuple(d.items()) for d in (calibration.max_abs_output, calibration.max_abs_state, calibration.max_abs_current))
    # the rules themselves (not their ids) are held in the key, so that a replaced rule's id cannot be reused
    key = (calibration.description, ranges, config, repr(graph.dt), dicts, rules)
    try:
        hash(key)
    except TypeError:  # a description or range of a type without a hash: the plan is made afresh
        return None
    return key


