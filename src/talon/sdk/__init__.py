"""talon.sdk: analysis, profiling, linting, fingerprints, comparison, queries and transforms of IR graphs.

Every function takes a `talon.ir.Graph` or a path to a .t1c file. Transforms return new graphs and never
modify their argument. All counts come from one cost table, `talon.sdk.cost`. This package never imports
torch, so command-line tools built on it start fast.

Names are resolved lazily (PEP 562 `__getattr__`): `from talon.sdk import analyze_graph` imports
talon.sdk.analyze and what it needs, not compare, convert or stamp (which reads installed versions with
importlib.metadata); `talon analyze` and `talon lint` start faster for it (docs/performance.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, for type checkers, readers and the import-cycle checks
    from talon.sdk import cost
    from talon.sdk._bounds import bounds_types, register_bounds
    from talon.sdk.analyze import GraphStats, LayerStats, analyze_graph
    from talon.sdk.compare import FieldDiff, GraphDiff, NodeDiff, assert_graphs_equal, compare_graphs
    from talon.sdk.convert import (
        AccumulatorRange,
        QuantizationReport,
        TensorQuantization,
        accumulator_ranges,
        convert_to_spiking,
        fold_batchnorm,
        prune_disconnected,
        quantize_weights,
        remove_dropout,
    )
    from talon.sdk.cost import NodeCost, graph_costs, node_cost, register_cost
    from talon.sdk.fingerprint import fingerprint_graph
    from talon.sdk.lint import CODES, LintIssue, LintResult, Severity, lint_graph
    from talon.sdk._load import as_graph
    from talon.sdk.profile import HardwareProfile, profile_graph, spike_valued_nodes
    from talon.sdk.query import ArrayInfo, NodeInfo, extract_subgraph, find_pattern, inspect_node, trace_path
    from talon.sdk.stamp import Stamp, get_stamp, stamp_graph, verify_fingerprint

# the module of each public name (a submodule's own name maps to itself)
_HOME = {
    "cost": "cost",
    **dict.fromkeys(("GraphStats", "LayerStats", "analyze_graph"), "analyze"),
    **dict.fromkeys(("FieldDiff", "GraphDiff", "NodeDiff", "assert_graphs_equal", "compare_graphs"), "compare"),
    **dict.fromkeys(("AccumulatorRange", "QuantizationReport", "TensorQuantization", "accumulator_ranges", "convert_to_spiking",
                     "fold_batchnorm", "prune_disconnected", "quantize_weights", "remove_dropout"), "convert"),
    **dict.fromkeys(("NodeCost", "graph_costs", "node_cost", "register_cost"), "cost"),
    "fingerprint_graph": "fingerprint",
    **dict.fromkeys(("CODES", "LintIssue", "LintResult", "Severity", "lint_graph"), "lint"),
    "as_graph": "_load",
    **dict.fromkeys(("bounds_types", "register_bounds"), "_bounds"),
    **dict.fromkeys(("HardwareProfile", "profile_graph", "spike_valued_nodes"), "profile"),
    **dict.fromkeys(("ArrayInfo", "NodeInfo", "extract_subgraph", "find_pattern", "inspect_node", "trace_path"), "query"),
    **dict.fromkeys(("Stamp", "get_stamp", "stamp_graph", "verify_fingerprint"), "stamp"),
}

__all__ = [
    "analyze_graph", "GraphStats", "LayerStats",
    "profile_graph", "HardwareProfile", "spike_valued_nodes", "as_graph",
    "lint_graph", "LintResult", "LintIssue", "Severity", "CODES",
    "fingerprint_graph", "verify_fingerprint", "stamp_graph", "get_stamp", "Stamp",
    "compare_graphs", "assert_graphs_equal", "GraphDiff", "NodeDiff", "FieldDiff",
    "inspect_node", "trace_path", "find_pattern", "extract_subgraph", "NodeInfo", "ArrayInfo",
    "convert_to_spiking", "quantize_weights", "fold_batchnorm", "remove_dropout", "prune_disconnected",
    "QuantizationReport", "TensorQuantization", "accumulator_ranges", "AccumulatorRange",
    "cost", "node_cost", "graph_costs", "register_cost", "NodeCost", "register_bounds", "bounds_types",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'talon.sdk' has no attribute {name!r}")
    module = importlib.import_module(f"talon.sdk.{home}")
    value = module if home == name else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
