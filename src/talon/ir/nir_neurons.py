"""NIR conversions of the neuron family (LIF, IF, CubaLIF, LI, Integrator, Threshold, Delay, NIR's CubaLI),
registered through talon.ir.nir_registry exactly as a user's primitive registers its own.

NIR's reset ("v = v_reset when v > v_threshold") is TALON's reset_mode "zero"; reset_mode "none" travels as
the neuron's integrator followed by a Threshold; a graded spike factor other than 1 as a Scale after it
(a small nir.NIRGraph). The helpers `spike_reset_ok` and `spiking_neuron_export` serve any spiking neuron
with these fields, a user's too. This module imports no primitive module (only the node registry), so
a primitive's own module may import it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from talon.ir.graph import Graph
from talon.ir.nir_common import NIRConversionError, broadcast_full, chain, foreign_metadata
from talon.ir.nir_registry import NIRExportContext, NIRImportContext, register_nir_export, register_nir_import
from talon.ir.nir_resets import approximated, needs_approximation
from talon.ir.node import Node, get_node_class

__all__ = ["spike_reset_ok", "spiking_neuron_export", "composite_neuron_fields"]

#: (fn(node, ctx, shape) -> NIR node): one part of a neuron, its parameters broadcast to `shape`.
Part = Callable[[Node, NIRExportContext, tuple], Any]


def spike_reset_ok(node: Node, ctx: NIRExportContext) -> None:
    """reset_mode "zero" (NIR's reset) or "none"; reset_delay=False only where it changes no spike."""
    mode = node.reset_mode
    if mode == "subtract":
        raise ctx.refuse("reset_mode 'subtract' (v -= v_threshold after a spike, snnTorch's default) has no NIR "
                         "equivalent: NIR neurons reset to v_reset. Pass approximate_resets=True (talon convert "
                         "--approximate-resets) to write NIR's reset anyway, with the effect on the spikes measured; or retrain "
                         "with reset_mechanism='zero'; or keep the model in .t1c")
    if mode == "zero_post":
        raise ctx.refuse("reset_mode 'zero_post' (the membrane after the step following a spike is cleared, "
                         "snnTorch Synaptic/RLeaky 'zero') has no NIR equivalent: NIR resets at the spike and integrates the "
                         "next input from v_reset. Pass approximate_resets=True (talon convert --approximate-resets) to write "
                         "NIR's reset anyway, with the effect on the spikes measured")
    if not node.reset_delay and mode == "zero":
        v_reset_zero = node.v_reset is None or bool(np.all(node.v_reset == 0))
        if not (v_reset_zero and bool(np.all(node.v_threshold > 0))):
            raise ctx.refuse("reset_delay=False with a non-zero v_reset or a threshold <= 0 spikes differently "
                             "from NIR's reset; only reset_delay=False with v_reset 0 and positive thresholds is exact")


def spiking_neuron_export(core_name: str, core: Part, integrator_name: str, integrator: Part) -> Callable[[Node, NIRExportContext], Any]:
    """The export of a spiking neuron with fields reset_mode, reset_delay, v_threshold, v_reset and
    graded_spikes_factor: `core` (NIR's neuron with its reset, for reset "zero") or `integrator` then a
    Threshold (reset "none"), followed by a Scale for graded spikes; parts named `core_name`,
    `integrator_name`, "threshold" and "scale" (composite_neuron_fields reads them back)."""

    def export(node: Node, ctx: NIRExportContext) -> Any:
        shape = ctx.need()
        if ctx.approximate_resets and needs_approximation(node):
            node = approximated(node)  # the hint still records the true reset (the hint compares with the original)
        spike_reset_ok(node, ctx)
        nir = ctx.nir
        gsf = [] if node.graded_spikes_factor == 1.0 else [
            ("scale", nir.Scale(scale=np.full(shape, np.float32(node.graded_spikes_factor), dtype=np.float32)))]
        if node.reset_mode == "zero":
            nn = core(node, ctx, shape)
            return nn if not gsf else chain(nir, shape, [(core_name, nn)] + gsf)
        # reset_mode "none": the membrane never resets, so the neuron is its integrator followed by a Threshold.
        threshold = ("threshold", nir.Threshold(threshold=broadcast_full(node.v_threshold, shape)))
        return chain(nir, shape, [(integrator_name, integrator(node, ctx, shape)), threshold] + gsf)

    return export


def composite_neuron_fields(type_name: str, core_name: str, core_class: str, integrator_name: str, integrator_class: str,
                            integrator_fields: tuple[str, ...]) -> Callable[[Any, NIRImportContext], dict | None]:
    """The import of a `type_name` neuron from the NIRGraph spiking_neuron_export writes: its core (`core_name`, a
    NIR `core_class`, read by the import registered for it) or its integrator (`integrator_name`, a NIR
    `integrator_class` whose `integrator_fields` become the neuron's) then "threshold"; "scale" optionally."""

    def fields(nn: Any, ctx: NIRImportContext) -> dict | None:
        inner = {k: v for k, v in nn.nodes.items() if type(v).__name__ not in ("Input", "Output")}
        kinds = {k: type(v).__name__ for k, v in inner.items()}
        out: dict = {}
        scale = inner.pop("scale", None)
        kinds.pop("scale", None)
        if scale is not None:
            if type(scale).__name__ != "Scale":
                return None
            s = _part(ctx, "scale").get(scale, "scale").reshape(-1)
            if s.size == 0 or not np.all(s == s[0]):
                return None
            out["graded_spikes_factor"] = float(s[0])
        if kinds == {core_name: core_class}:
            base = ctx.fields(inner[core_name], type_name, f"{ctx.where}/{core_name}")
            return None if base is None else {**base, **out}
        if kinds != {integrator_name: integrator_class, "threshold": "Threshold"}:
            return None
        src = inner[integrator_name]
        out.update(v_threshold=_part(ctx, "threshold").get(inner["threshold"], "threshold"), reset_mode="none")
        sub = _part(ctx, integrator_name)
        out.update({f: sub.get(src, f) for f in integrator_fields})
        return out

    return fields


def _part(ctx: NIRImportContext, name: str) -> NIRImportContext:
    return NIRImportContext(ctx.nir, ctx.dt, f"{ctx.where}/{name}", ctx.natural)


# ----------------------------------------------------------------------------------------------------
# Export: the parts of each neuron
# ----------------------------------------------------------------------------------------------------


def _thr_reset(node: Node, shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    thr = broadcast_full(node.v_threshold, shape)
    v_reset = broadcast_full(np.zeros((), dtype=node.v_threshold.dtype) if node.v_reset is None else node.v_reset, shape)
    return thr, v_reset


def _lif_core(node: Node, ctx: NIRExportContext, shape: tuple) -> Any:
    thr, v_reset = _thr_reset(node, shape)
    return ctx.nir.LIF(tau=broadcast_full(node.tau, shape), r=broadcast_full(node.r, shape), v_leak=broadcast_full(node.v_leak, shape),
                       v_threshold=thr, v_reset=v_reset)


def _li(node: Node, ctx: NIRExportContext, shape: tuple) -> Any:
    return ctx.nir.LI(tau=broadcast_full(node.tau, shape), r=broadcast_full(node.r, shape), v_leak=broadcast_full(node.v_leak, shape))


def _if_r(node: Node) -> np.ndarray:
    return np.ones((), dtype=node.v_threshold.dtype) if node.r is None else node.r


def _if_core(node: Node, ctx: NIRExportContext, shape: tuple) -> Any:
    thr, v_reset = _thr_reset(node, shape)
    return ctx.nir.IF(r=broadcast_full(_if_r(node), shape), v_threshold=thr, v_reset=v_reset)


def _i(node: Node, ctx: NIRExportContext, shape: tuple) -> Any:
    return ctx.nir.I(r=broadcast_full(_if_r(node), shape))


def _w_in(node: Node, ctx: NIRExportContext) -> np.ndarray:
    return np.asarray(np.asarray(node.tau_syn, dtype=np.float64) / ctx.dt if node.w_in is None else node.w_in)


def _cubalif_core(node: Node, ctx: NIRExportContext, shape: tuple) -> Any:
    thr, v_reset = _thr_reset(node, shape)
    return ctx.nir.CubaLIF(tau_syn=broadcast_full(node.tau_syn, shape), tau_mem=broadcast_full(node.tau_mem, shape),
                           r=broadcast_full(node.r, shape), v_leak=broadcast_full(node.v_leak, shape), v_threshold=thr,
                           v_reset=v_reset, w_in=broadcast_full(_w_in(node, ctx), shape))


def _cubali(node: Node, ctx: NIRExportContext, shape: tuple) -> Any:
    return ctx.nir.CubaLI(tau_syn=broadcast_full(node.tau_syn, shape), tau_mem=broadcast_full(node.tau_mem, shape),
                          r=broadcast_full(node.r, shape), v_leak=broadcast_full(node.v_leak, shape),
                          w_in=broadcast_full(_w_in(node, ctx), shape))


# ----------------------------------------------------------------------------------------------------
# Import: the fields each NIR neuron determines
# ----------------------------------------------------------------------------------------------------


def _v_reset(nn: Any, ctx: NIRImportContext) -> np.ndarray:
    v = getattr(nn, "v_reset", None)
    return np.zeros_like(ctx.get(nn, "v_threshold")) if v is None else ctx.get(nn, "v_reset")


def _lif_fields(nn: Any, ctx: NIRImportContext) -> dict:
    g = lambda a: ctx.get(nn, a)  # noqa: E731
    return {"tau": g("tau"), "r": g("r"), "v_leak": g("v_leak"), "v_threshold": g("v_threshold"),
            "v_reset": _v_reset(nn, ctx), "reset_mode": "zero"}


def _if_fields(nn: Any, ctx: NIRImportContext) -> dict:
    return {"r": ctx.get(nn, "r"), "v_threshold": ctx.get(nn, "v_threshold"), "v_reset": _v_reset(nn, ctx), "reset_mode": "zero"}


def _cubalif_fields(nn: Any, ctx: NIRImportContext) -> dict:
    g = lambda a: ctx.get(nn, a)  # noqa: E731
    return {"tau_syn": g("tau_syn"), "tau_mem": g("tau_mem"), "r": g("r"), "v_leak": g("v_leak"), "v_threshold": g("v_threshold"),
            "w_in": g("w_in"), "v_reset": _v_reset(nn, ctx), "reset_mode": "zero"}


def _delay_fields(nn: Any, ctx: NIRImportContext) -> dict:
    raw = ctx.get(nn, "delay")
    d = raw.astype(np.float64) / ctx.dt
    steps = np.rint(d)
    if np.any(~np.isfinite(d)) or np.any(np.abs(d - steps) > 1e-6 * np.maximum(1.0, np.abs(steps))) or np.any(steps < 0):
        raise NIRConversionError(f"{ctx.where}: Delay of {np.unique(raw)[:4]} is not a whole number of steps of dt={ctx.dt:g}; "
                                 "TALON delays by whole steps (choose dt accordingly)")
    return {"delay": steps.astype(np.int64)}


def _node_class(type_name: str) -> Any:
    cls = get_node_class(type_name)
    if cls is None:
        raise NIRConversionError(f"reading NIR's CubaLI needs TALON's {type_name} primitive, which is not registered")
    return cls


def _cubali_graph(nn: Any, ctx: NIRImportContext) -> Graph:
    """NIR CubaLI (no TALON primitive) as a nested graph: synaptic LI (tau_syn, r=w_in, v_leak=0), then membrane LI."""
    li, inp, outp = (_node_class(t) for t in ("LI", "Input", "Output"))
    tau_syn, w_in = ctx.get(nn, "tau_syn"), ctx.get(nn, "w_in")
    shape = tuple(np.broadcast_shapes(tau_syn.shape, w_in.shape, ctx.get(nn, "tau_mem").shape))
    syn = li(tau=tau_syn, r=w_in, v_leak=np.zeros((), dtype=tau_syn.dtype))
    mem = li(tau=ctx.get(nn, "tau_mem"), r=ctx.get(nn, "r"), v_leak=ctx.get(nn, "v_leak"))
    g = Graph({"input": inp(shape=shape), "synapse": syn, "membrane": mem, "output": outp(shape=shape)},
              [("input", "synapse"), ("synapse", "membrane"), ("membrane", "output")], dt=ctx.dt)
    foreign = foreign_metadata(getattr(nn, "metadata", None), ctx.where)
    g.metadata = {"nir_type": "CubaLI", **({"nir_metadata": foreign} if foreign else {})}
    return g


# ----------------------------------------------------------------------------------------------------
# Registrations
# ----------------------------------------------------------------------------------------------------

_SPIKING = (  # TALON type, NIR core (name in chains, class, fields), NIR integrator (name, class, its fields)
    ("LIF", "lif", "LIF", _lif_core, _lif_fields, "li", "LI", _li, ("tau", "r", "v_leak")),
    ("IF", "if", "IF", _if_core, _if_fields, "i", "I", _i, ("r",)),
    ("CubaLIF", "cubalif", "CubaLIF", _cubalif_core, _cubalif_fields, "cubali", "CubaLI", _cubali,
     ("tau_syn", "tau_mem", "r", "v_leak", "w_in")),
)

for _type, _core_name, _core_class, _core, _core_fields, _int_name, _int_class, _int, _int_fields in _SPIKING:
    register_nir_export(_type, spiking_neuron_export(_core_name, _core, _int_name, _int))
    register_nir_import(_core_class, _type, _core_fields, default=True)
    register_nir_import("NIRGraph", _type, composite_neuron_fields(_type, _core_name, _core_class, _int_name, _int_class, _int_fields))

register_nir_export("LI", lambda node, ctx: _li(node, ctx, ctx.need()))
register_nir_import("LI", "LI", lambda nn, ctx: {"tau": ctx.get(nn, "tau"), "r": ctx.get(nn, "r"), "v_leak": ctx.get(nn, "v_leak")},
                    default=True)
register_nir_export("Integrator", lambda node, ctx: ctx.nir.I(r=ctx.full(node.r)))
register_nir_import("I", "Integrator", lambda nn, ctx: {"r": ctx.get(nn, "r")}, default=True)
register_nir_export("Threshold", lambda node, ctx: ctx.nir.Threshold(threshold=ctx.full(node.v_threshold)))
register_nir_import("Threshold", "Threshold", lambda nn, ctx: {"v_threshold": ctx.get(nn, "threshold")}, default=True)
register_nir_export("Delay", lambda node, ctx: ctx.nir.Delay(delay=ctx.full(node.delay).astype(np.float64) * ctx.dt))
register_nir_import("Delay", "Delay", _delay_fields, default=True)
register_nir_import("CubaLI", "Graph", _cubali_graph, default=True)
