"""Constants the fixed-point hardware cannot hold, found without running anything (lint's
CONSTANT_SATURATES): the rules of talon.sdk.fixed_point applied to the formats that are known before a
calibration run. The planner (talon.backend.cpu.fixed) raises BackendError with the same message
(`saturation_message`) for the same constants; lint reports them first.

Known statically: neuron coefficients (Q(c+2).c words), and the accumulator of a synaptic layer whose
input format is fixed by the graph alone: spikes (the graded spike factor's format), or a graph Input
(the assumed input range, as a calibration run on it would find) through grid-preserving nodes. A layer
fed by real-valued activations depends on calibration; the planner checks it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from talon.ir import Graph
from talon.ir.primitives.neurons import coefficients
from talon.sdk.cost import cost_entry
from talon.sdk.fixed_point import (
    DEFAULT_BITS, MIN_WEIGHT_BITS_FOR_BIAS, frac_for_range, saturation_message, spike_frac, weight_frac_holding_bias,
)

_BIAS_OF = {"weight": "bias", "depthwise_weight": "depthwise_bias", "pointwise_weight": "pointwise_bias"}


def _input_peak(name: str, input_range: Any) -> float | None:
    rng = input_range.get(name) if isinstance(input_range, dict) else input_range
    if rng is None:
        return None
    return float(max(abs(float(rng[0])), abs(float(rng[1]))))


def _static_frac(g: Graph, name: str, preds: dict[str, list[str]], input_range: Any, seen: set[str]) -> int | None:
    """The fractional bits of `name`'s output format when the graph alone fixes them, else None."""
    if name in seen:
        return None
    seen.add(name)
    node = g.nodes[name]
    t = node.type_name
    bits = DEFAULT_BITS["activation_bits"]
    if t == "Input":
        peak = _input_peak(name, input_range)
        return None if peak is None else frac_for_range(peak, bits)
    if node.spiking and getattr(node, "graded_spikes_factor", None) is not None:
        return spike_frac(node.graded_spikes_factor, bits)
    if node.grid_preserving and len(preds[name]) == 1:
        return _static_frac(g, preds[name][0], preds, input_range, seen)
    return None


def saturating_constants(g: Graph, input_range: Any) -> list[tuple[str, str]]:
    """(node, message) for every constant that would saturate in the default fixed-point datapath."""
    out: list[tuple[str, str]] = []
    preds: dict[str, list[str]] = {n: [] for n in g.nodes}
    for s, d in g.edges:
        if s in g.nodes and d in preds:
            preds[d].append(s)
    c = DEFAULT_BITS["coefficient_frac_bits"]
    for name, node in g.nodes.items():
        if isinstance(node, Graph):
            continue
        t = node.type_name
        if node.state_fields:
            if not hasattr(type(node), "coefficients"):
                continue  # a neuron without the leak/gain form: its fixed rule checks its own constants
            with np.errstate(divide="ignore", invalid="ignore"):  # tau == 0 is NONFINITE/TAU_BELOW_DT's to report
                co = coefficients(node, float(g.dt))
            for key in ("beta", "gain", "alpha", "gain_in"):
                v = getattr(co, key, None)
                if v is None or not np.all(np.isfinite(v)):
                    continue
                msg = saturation_message(name, key, v, c + 2, c, "the neuron coefficient word, range [-2, 2),")
                if msg:
                    out.append((name, f"{msg}; move the gain into the preceding layer's weights"))
            continue
        entry = cost_entry(t)
        if entry is None or not entry.weight_fields or len(preds[name]) != 1:
            continue
        f_in = _static_frac(g, preds[name][0], preds, input_range, set())
        if f_in is None:
            continue
        wbits = int(getattr(node, "weight_bits", DEFAULT_BITS["weight_bits"]))
        abits = int(getattr(node, "accumulator_bits", DEFAULT_BITS["accumulator_bits"]))
        frac = f_in
        for wf in entry.weight_fields:
            w = np.asarray(getattr(node, wf), np.float64)
            b = getattr(node, _BIAS_OF.get(wf, ""), None)
            if not w.size or not np.all(np.isfinite(w)) or (b is not None and not np.all(np.isfinite(b))):
                break
            w_max = float(np.max(np.abs(w)))
            b_max = float(np.max(np.abs(b))) if b is not None and np.size(b) else 0.0
            f_w, ok = weight_frac_holding_bias(w_max, b_max, wbits, abits, frac)
            if not ok and b is not None:  # not ok needs a nonzero bias
                acc_frac = frac + frac_for_range(w_max, wbits)
                why = f"its {abits}-bit accumulator, whose step 2^-{acc_frac} is set by the input format and the weights' ({acc_frac} fractional bits),"
                msg = saturation_message(name, _BIAS_OF[wf], b, abits, acc_frac, why)
                out.append((name, f"{msg}; a coarser weight grid would leave the largest weight fewer than {MIN_WEIGHT_BITS_FOR_BIAS} "
                                  "significant bits: raise accumulator_bits"))
                break
            frac += f_w
    return out
