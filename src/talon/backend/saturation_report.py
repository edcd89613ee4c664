"""The warning a fixed-point run gives where it saturated values its formats cannot hold, and the one
rule for an input word, shared by the cpu simulator (talon.backend.cpu.clip_watch) and the fpga C
simulation (talon.backend.fpga.csim). numpy only.

Rule (docs/fixed_point.md, "Saturation is said, never silent"): a value rounded half up to `Qb.f` is
reported when it reaches `2^(b-1)` integer units before rounding (beyond any calibrated range) or rounds
below `-2^(b-1)`; the one-LSB saturation of a calibrated largest value rounding up to `2^(b-1)` is the
power-of-two rule's own and is not reported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

HOW = ("Calibrate on data that reaches these values (calibration_inputs= or calibrate(graph, data)), or widen "
       "the format (FixedPointConfig: accumulator_bits for an accumulator, membrane_headroom_bits or membrane_bits "
       "for a membrane or current, activation_bits otherwise)")  # fmt: skip


class FixedPointSaturationWarning(UserWarning):
    """A fixed-point run saturated values its formats could not hold; the message names each node."""


def describe(node: str, what: str, bits: int, frac: int, far: float) -> str:
    """'node ... reached ..., outside its format Qb.f range [lo, hi]'."""
    lo, hi = math.ldexp(-(1 << (bits - 1)), -frac), math.ldexp((1 << (bits - 1)) - 1, -frac)
    return f"node {node!r} {what} reached {far:.6g}, outside its format Q{bits}.{frac} range [{lo:.6g}, {hi:.6g}]"


def message(parts: list[str]) -> str:
    return "fixed-point simulation saturated values its formats cannot hold (the hardware would clip them the same way): " + "; ".join(parts) + ". " + HOW


def silent_top(bits: int) -> float:
    """The largest value (integer units, before rounding half up) whose saturation the rule leaves unsaid:
    just below 2^(b-1), which may round up to 2^(b-1) and lose one LSB."""
    return math.nextafter(float(1 << (bits - 1)), -math.inf)


def half_up_clip(x: Any, bits: int, frac: int) -> float | None:
    """The furthest value of the float array `x` that rounding half up to Q`bits`.`frac` saturates beyond
    the rule's one LSB (real units), or None when none does."""
    a = np.asarray(x, dtype=np.float64)
    if not a.size:
        return None
    low, high = float(np.min(a)), float(np.max(a))
    top = (1 << (bits - 1))
    hi_over = math.ldexp(high, frac) > silent_top(bits)
    lo_over = math.floor(math.ldexp(low, frac) + 0.5) < -top
    if not (hi_over or lo_over):
        return None
    if hi_over and lo_over:
        return high if math.ldexp(high, frac) - top >= -top - math.ldexp(low, frac) else low
    return high if hi_over else low
