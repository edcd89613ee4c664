"""Test graphs side by side in one graph, so that one FPGA C simulation build checks them all.

g++ builds are most of the backend tests' CPU time; cases that differ only in a neuron's settings become
branches of one graph fed by the same Input (build_cuba_mlp does this for the CubaLIF resets). Each branch
is the case's own graph, its nodes renamed <node>_<label>, so a mismatch names the case that failed.
"""

from __future__ import annotations

from talon import ir


def side_by_side(cases: dict[str, ir.Graph], shared: str) -> ir.Graph:
    """One graph holding every graph of `cases` (all with the Input node `shared`, which they share)."""
    nodes: dict = {}
    edges: list = []
    for label, g in cases.items():
        name = {n: n if n == shared else f"{n}_{label}" for n in g.nodes}
        nodes.update((name[n], node) for n, node in g.nodes.items() if n not in nodes)
        edges += [(name[a], name[b]) for a, b in g.edges]
    return ir.Graph(nodes, edges)
