"""Approximate neuron resets for NIR: what `to_nir(..., approximate_resets=True)` changes, and how it is measured.

NIR neurons reset to a value (`v = v_reset` at the spike). snnTorch's default reset subtracts the threshold
(TALON reset_mode "subtract"), and Synaptic/RLeaky's "zero" clears the membrane after the next integration
("zero_post"); neither has a NIR form, so by default they are refused. With the opt-in, such a neuron is
written as NIR's reset, `reset_approximation` gives the TALON graph a reader that ignores TALON's metadata
then runs (reset_mode "zero", reset_delay True, v_reset unchanged), and the effect is measured by running
both graphs.

Measuring needs TALON's float runtime, which lives above talon.ir (talon.bridge, torch). talon.ir may not
import it, so the measure is a callback: passed as `measure=`, or registered once by the runtime
(`register_reset_measure`, done when talon.bridge is imported). Without one, the warning names the
approximated neurons and says how to measure.
"""

from __future__ import annotations

from typing import Any, Callable

from talon.ir.graph import Graph

__all__ = ["APPROXIMATED_RESETS", "reset_approximation", "register_reset_measure", "reset_measure", "approximation_message"]

#: Reset modes that NIR cannot express and the opt-in writes as NIR's reset to v_reset.
APPROXIMATED_RESETS = ("subtract", "zero_post")

#: (true graph, approximated graph) -> a result whose str() is one sentence about the spike agreement.
ResetMeasure = Callable[[Graph, Graph], Any]

_MEASURE: ResetMeasure | None = None


def register_reset_measure(fn: ResetMeasure | None) -> None:
    """Set the default measure used by to_nir/write_nir(approximate_resets=True) (None clears it)."""
    global _MEASURE
    _MEASURE = fn


def reset_measure() -> ResetMeasure | None:
    """The registered default measure, if the runtime registered one."""
    return _MEASURE


def approximated(node: Any) -> Any:
    """The neuron a NIR reader reconstructs from `node` written with NIR's reset."""
    return node.replace(reset_mode="zero", reset_delay=True)


def needs_approximation(node: Any) -> bool:
    return getattr(node, "reset_mode", None) in APPROXIMATED_RESETS


def reset_approximation(graph: Graph, where: str = "") -> tuple[Graph, dict[str, str]]:
    """(the graph with every subtract/zero_post neuron replaced by NIR's reset, {"outer/inner" name: true reset mode}).

    The approximated graph is what a NIR reader that ignores TALON's metadata gets from the file."""
    nodes: dict[str, Any] = {}
    changed: dict[str, str] = {}
    for name, node in graph.nodes.items():
        here = f"{where}/{name}" if where else name
        if isinstance(node, Graph):
            node, inner = reset_approximation(node, here)
            changed.update(inner)
        elif needs_approximation(node):
            changed[here] = node.reset_mode
            node = approximated(node)
        nodes[name] = node
    if not changed:
        return graph, changed
    return Graph(nodes, list(graph.edges), dt=graph.dt, metadata=graph.metadata, extras=graph.extras), changed


def approximation_message(changed: dict[str, str], effect: Any) -> str:
    """The warning to_nir emits for an approximated graph."""
    names = ", ".join(f"{n!r} ({mode})" for n, mode in changed.items())
    measured = (f"Measured effect: {effect}" if effect is not None else
                "Effect not measured: load TALON's runtime first (import talon.bridge, which needs torch) or pass "
                "measure=talon.bridge.reset_effect.measure_reset_effect; `talon convert --approximate-resets` measures it")
    return (f"approximate_resets: {len(changed)} neuron layer(s) reset in a way NIR cannot express: {names}. They are "
            "written as NIR's reset to v_reset (reset_mode 'zero'), which other tools run; TALON's metadata in the file "
            f"records the true reset, so TALON reads the file back exactly. {measured}")
