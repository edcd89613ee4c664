"""The support matrix of `talon primitives`: which concern registries know each primitive type.

Every answer is read from the registries themselves (docs/primitives.md), never from a list kept here:
runtime, cost, value bounds, fixed-point rule, FPGA emitter, hls4ml layer, NIR export and import, the
export converters that declare they produce the type, the functional ops and Tensor methods the exporter
traces into it (talon.bridge.export.functional_ops, read from the exporter's own tables), mapping
connectivity, and the neurons mapping places (from the class's traits). Each concern is one entry `{"status": ..., "detail": ...}`:

- "registered": the type's own registration;
- "traits": derived from the class's traits (a neuron's cost, spike bounds, mapping populations);
- "refused": registered as a refusal, `detail` saying why;
- "missing": nothing registered; where it is needed the pass fails naming the node and this registry;
- "none": the concern does not apply (a primitive that holds no neurons is placed by no one).

Imports the bridge (torch) and the backends: only `talon primitives` uses it, never analyze or lint.
"""

from __future__ import annotations

from typing import Any

CONCERNS = ("runtime", "cost", "bounds", "fixed_point", "fpga_emitter", "hls4ml", "nir_export", "nir_import",
            "converters", "functional", "connectivity", "mapping")

TRAITS = ("stateful", "spiking", "state_fields", "has_current", "neurons_per_element", "ops_per_step", "grid_preserving",
          "sums_inputs", "min_inputs", "max_inputs")


def _entry(status: str, detail: str = "") -> dict[str, str]:
    return {"status": status, "detail": detail}


def _load_registries() -> None:
    """Import the modules whose import registers the built-ins (the same imports the passes make)."""
    import talon.backend.cpu.fixed_rules  # noqa: F401
    import talon.backend.fpga.emitters  # noqa: F401
    import talon.backend.fpga.hls4ml_config  # noqa: F401
    import talon.bridge  # noqa: F401  (the runtimes, the nested-graph runtime of the executor)
    import talon.bridge.export  # noqa: F401  (loads the snnTorch converters)
    import talon.ir.nir  # noqa: F401  (the built-in NIR registrations)
    import talon.mapping.connectivity  # noqa: F401


def _snn_converters() -> None:
    try:
        import talon.bridge.snntorch  # noqa: F401
    except ImportError:  # snnTorch is optional: its converters are then simply not registered
        pass


def traits(cls: Any) -> dict[str, Any]:
    """The class attributes every pass reads (docs/primitives.md, 'Traits')."""
    out: dict[str, Any] = {}
    for t in TRAITS:
        v = getattr(cls, t, None)
        # a nested Graph computes some traits from its nodes: "per graph"
        out[t] = list(v) if isinstance(v, tuple) else "per graph" if isinstance(v, property) else v
    return out


def support(type_name: str) -> dict[str, dict[str, str]]:
    """{concern: {"status", "detail"}} for the registered primitive `type_name` (module docstring)."""
    from talon.backend.cpu.fixed_registry import _RULES as FIXED
    from talon.backend.cpu.fixed_rules import Unsupported
    from talon.backend.fpga.emitters import emitter_types
    from talon.backend.fpga.hls4ml_config import hls4ml_layer_types
    from talon.bridge.converters import producers_of
    from talon.bridge.export import functional_ops
    from talon.bridge.modules import RUNTIME_BUILDERS, _unsupported
    from talon.ir import get_node_class
    from talon.ir.nir_registry import nir_support
    from talon.mapping.connectivity import connectivity_rule
    from talon.sdk._bounds import bounds_types
    from talon.sdk.cost import _TABLE, cost_entry

    _load_registries()
    _snn_converters()
    cls = get_node_class(type_name)
    if cls is None:
        raise KeyError(type_name)
    s: dict[str, dict[str, str]] = {}

    builder = RUNTIME_BUILDERS.get(type_name)
    source = cls.max_inputs == 0  # takes no inputs: the executor feeds it the graph's input
    s["runtime"] = (_entry("none", "a graph input: the executor feeds it") if builder is None and source
                    else _entry("missing") if builder is None
                    else _entry("refused", "stored but not run (an existing-SDK detection block)") if builder is _unsupported
                    else _entry("registered"))

    entry = cost_entry(type_name)
    s["cost"] = (_entry("missing") if entry is None
                 else _entry("registered" if type_name in _TABLE else "traits", entry.formula))

    s["bounds"] = (_entry("registered") if type_name in bounds_types()
                   else _entry("traits", "its class's membrane_bounds: proves neurons that never fire")
                   if cls.spiking and callable(getattr(cls, "membrane_bounds", None))
                   else _entry("traits", "spikes lie in [0, graded factor]; no proof of silence") if cls.spiking
                   else _entry("missing"))

    rule = FIXED.get(type_name)
    s["fixed_point"] = (_entry("missing") if rule is None
                        else _entry("refused", rule.why) if isinstance(rule, Unsupported)
                        else _entry("registered", type(rule).__name__))

    s["fpga_emitter"] = _entry("registered") if type_name in emitter_types() else _entry("missing")
    s["hls4ml"] = _entry("registered") if type_name in hls4ml_layer_types() else _entry("missing")

    nir = nir_support(type_name)
    s["nir_export"] = (_entry("registered") if nir["export"] else _entry("refused", nir["refused"]) if nir["refused"]
                       else _entry("missing"))
    s["nir_import"] = (_entry("registered", "from NIR " + ", ".join(nir["imports_from"])) if nir["imports_from"]
                       else _entry("missing"))

    producers = producers_of(type_name)
    s["converters"] = (_entry("registered", ", ".join(f"{t.__module__}.{t.__qualname__}" for t in producers)) if producers
                       else _entry("missing"))
    ops = functional_ops().get(type_name)
    s["functional"] = _entry("registered", ", ".join(ops)) if ops else _entry("missing")

    if cls.__dict__.get("type_name") == "Graph" or isinstance(cls.__dict__.get("stateful"), property):
        # a nested graph is no primitive of its own: cost sums its nodes, mapping wants it inlined
        s["cost"] = _entry("none", "the sum of its nodes' costs")
        s["connectivity"] = _entry("none", "mapping maps flat graphs")
        s["mapping"] = _entry("refused", "a nested graph: inline its nodes first")
        return s
    per = int(cls.neurons_per_element)
    if source:
        s["connectivity"] = _entry("none", "a graph input: mapping places it as a population")
        s["mapping"] = _entry("traits", "places one input per output element")
        return s
    if connectivity_rule(type_name) is not None:
        s["connectivity"] = _entry("registered")
    elif per > 0:
        s["connectivity"] = _entry("none", "a neuron layer: mapping places it as a population")
    else:
        s["connectivity"] = _entry("missing")
    if per > 0 and entry is not None:
        s["mapping"] = _entry("traits", f"places {per} neuron{'s' if per > 1 else ''} per output element")
    elif (per > 0 or cls.stateful or cls.spiking) and entry is None:
        s["mapping"] = _entry("refused", "a neuron by its traits with no cost rule: mapping cannot count its neurons")
    elif cls.stateful and cls.spiking:
        s["mapping"] = _entry("registered", "the neurons its cost rule counts")
    else:
        s["mapping"] = _entry("none", "holds no neurons")
    return s


def identity_ops() -> list[str]:
    """The functional ops and Tensor methods the exporter traces as the identity (no node of their own)."""
    from talon.bridge.export import functional_ops

    return functional_ops().get("", [])


def undeclared_converters() -> list[str]:
    """Module types with a registered converter that declares nothing it produces (listed apart)."""
    from talon.bridge.converters import undeclared_converters as undeclared

    _load_registries()
    _snn_converters()
    return [f"{t.__module__}.{t.__qualname__}" for t in undeclared()]


HEADERS = {"runtime": "run", "cost": "cost", "bounds": "bnds", "fixed_point": "fixed", "fpga_emitter": "fpga", "hls4ml": "hls4ml",
           "nir_export": "nir out", "nir_import": "nir in", "converters": "conv", "functional": "func", "connectivity": "conn", "mapping": "map"}
SHORT = {"registered": "yes", "traits": "traits", "refused": "refused", "missing": "-", "none": "n/a"}
