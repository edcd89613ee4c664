"""The power-of-two quantisation rule: one definition for the fixed-point planner
(talon.backend.cpu.fixed) and for `quantize_weights(power_of_two=True)` (talon.sdk.convert).

docs/fixed_point.md section 5 is the specification. It lives here, in the torch-free sdk layer, because
the backend may import the sdk but the sdk may never import the backend (docs ARCHITECTURE.md, layers).
A change to either function changes the integers hardware loads: bump
talon.backend.descriptor.FIXED_POINT_VERSION with it.
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np

@overload
def frac_for_range(max_abs: float, bits: int) -> int: ...
@overload
def frac_for_range(max_abs: np.ndarray, bits: int) -> int | np.ndarray: ...
def frac_for_range(max_abs: float | np.ndarray, bits: int) -> int | np.ndarray:
    """Fractional bits so that `max_abs` fits `bits` signed bits: frac = bits - 1 - e, where
    max_abs = m * 2**e with 0.5 <= m < 1 (frexp); 0 (or a non-finite value) gives frac = bits - 1.

    So `max_abs * 2**frac < 2**(bits - 1)`: the largest magnitude lands in the top half of the signed
    range (it may round up to 2**(bits - 1), which saturation turns into 2**(bits - 1) - 1, of either sign).
    A scalar gives an int; an array (one range per channel, say) an int64 array of the same shape."""
    r = np.asarray(max_abs, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        _, e = np.frexp(r)
        frac = np.where((r > 0) & np.isfinite(r), bits - 1 - e.astype(np.int64), bits - 1)
    return int(frac) if frac.ndim == 0 else frac.astype(np.int64)


def quantize_to_ints(x: np.ndarray, bits: int, frac: int | np.ndarray) -> np.ndarray:
    """Offline constants: int64 = round_half_even(x * 2**frac) saturated to the symmetric range
    [-(2**(bits-1) - 1), 2**(bits-1) - 1]. `frac` may be an array broadcasting against `x` (per-channel
    formats). Multiplying by 2**frac is exact in float64, so the integers do not depend on the caller's
    float dtype.

    Symmetric, so that the rule is stable: the quantised constants' largest magnitude is at most
    (2**(bits-1) - 1) * 2**-frac, for which frac_for_range gives `frac` again, so quantising an already
    quantised tensor (or planning a graph quantised this way) changes no integer. -2**(bits-1) would
    be a power of two, one grid step coarser."""
    hi = (1 << (bits - 1)) - 1
    scaled = scale_pow2(np.asarray(x, dtype=np.float64), frac)
    return np.clip(np.rint(scaled), -hi, hi).astype(np.int64)


def scale_pow2(x: np.ndarray, frac: int | np.ndarray) -> np.ndarray:
    """x * 2**frac for float64 `x`: exactly np.ldexp(x, frac). A product by a power of two that is itself a
    normal float64 (-1022 <= frac <= 1023) is the exact value correctly rounded, as ldexp's result is
    (subnormal and overflowing results included), and costs a fraction of np.ldexp's int64-exponent
    loop; any other frac (an array: per-channel formats) goes through np.ldexp."""
    if isinstance(frac, (int, np.integer)) and -1022 <= frac <= 1023:
        return x * math.ldexp(1.0, int(frac))
    return np.ldexp(x, np.asarray(frac, dtype=np.int64))


def exact_sum_bits(in_bits: int, weight_bits: int, fan_in: float) -> int:
    """Bits that hold a synaptic layer's exact sum of `fan_in` products (plus the bias) without wrapping:
    b_in + w + ceil(log2(fan_in + 1)) + 1 (docs/fixed_point.md section 2). `weight_bits` is the sum of
    the widths of the factors after the input (SepConv2d multiplies two weights)."""
    return in_bits + weight_bits + math.ceil(math.log2(max(fan_in, 1.0) + 1)) + 1


def spike_frac(graded_spikes_factor: float, bits: int) -> int | None:
    """Fractional bits g of a spike's format Q(bits).g: the smallest g >= 0 that holds the graded spike
    factor exactly within the symmetric range, else the power-of-two rule's g when that is exact (large
    factors, g < 0); None when no g does (docs/fixed_point.md section 5, rule 5). A spike of factor 1 is
    the integer 1 (g = 0)."""
    gsf = float(graded_spikes_factor)
    hi = (1 << (bits - 1)) - 1
    candidates = [g for g in range(bits - 1) if math.ldexp(gsf, g).is_integer()][:1] + [frac_for_range(abs(gsf), bits)]
    for g in candidates:
        if math.ldexp(gsf, g).is_integer() and abs(math.ldexp(gsf, g)) <= hi:
            return g
    return None


#: Bit widths of the default hardware datapath (talon.backend.cpu.FixedPointConfig's defaults; lint
#: predicts the plan's formats with them, so the two read one definition).
DEFAULT_BITS = {"weight_bits": 8, "activation_bits": 8, "accumulator_bits": 32, "bias_bits": 24, "membrane_bits": 24, "coefficient_frac_bits": 16}


def saturation(x: np.ndarray, bits: int, frac: int) -> tuple[float, float] | None:
    """(the worst value, the nearest value `Q(bits).frac` holds) when quantising `x` to that format would
    move some value by more than one step (it saturates), else None. Rounding a peak that lands just under
    2**(bits - 1) steps to the symmetric range's end moves it by less than a step: that is rounding."""
    a = np.asarray(x, dtype=np.float64).ravel()
    if not a.size:
        return None
    hi = (1 << (bits - 1)) - 1
    scaled = np.abs(np.ldexp(a, int(frac)))
    i = int(np.argmax(scaled))
    if not scaled[i] >= hi + 1:
        return None
    return float(a[i]), math.copysign(math.ldexp(float(hi), -int(frac)), float(a[i]))


def saturation_message(node: str, field: str, x: np.ndarray, bits: int, frac: int, why: str) -> str | None:
    """The one wording, for the planner's BackendError and lint's CONSTANT_SATURATES, of a constant that
    its hardware word cannot hold (None when it fits): node, field, value, nearest value, and `why` (the
    word and what sets its range, with a way forward)."""
    sat = saturation(x, bits, frac)
    if sat is None:
        return None
    value, nearest = sat
    return (f"node {node!r} {field} {value:.6g} saturates in hardware: {why} holds at most "
            f"{abs(nearest):.6g} in magnitude (Q{bits}.{frac}); the nearest representable value is {nearest:.6g}")


def bias_to_ints(b: np.ndarray, unit_frac: int, bias_bits: int, acc_bits: int) -> tuple[np.ndarray, int]:
    """A bias as integers in the accumulator's units (2**-unit_frac), with at most `bias_bits` significant
    bits (docs/fixed_point.md section 5, rule 2): quantised on the grid 2**-f_b with
    f_b = min(unit_frac, frac_for_range(max|b|, bias_bits)), then shifted left by unit_frac - f_b, and
    held within the `acc_bits` accumulator's symmetric range (the caller checks first, with `saturation`,
    that the bias fits it: what is left is rounding). So a bias larger than `bias_bits` bits at the
    accumulator's fraction keeps its magnitude and loses only low bits instead of saturating.
    Returns (integers, f_b); f_b == unit_frac whenever the bias fits `bias_bits` bits there."""
    b = np.asarray(b, dtype=np.float64)
    f_b = min(int(unit_frac), frac_for_range(float(np.max(np.abs(b))) if b.size else 0.0, bias_bits))
    shift = int(unit_frac) - f_b
    # the accumulator's largest value on the bias grid: a bias rounding up past the accumulator's range
    # stays on its grid, so it keeps at most bias_bits significant bits (float32 on-grid graphs hold it)
    hi = math.ldexp(math.floor(math.ldexp((1 << (acc_bits - 1)) - 1, -shift)), shift)
    # float64 is exact here: the integers times a power of two, clipped below 2**47
    scaled = np.ldexp(quantize_to_ints(b, bias_bits, f_b).astype(np.float64), shift)
    return np.clip(scaled, -hi, hi).astype(np.int64), f_b


#: The fewest significant bits the largest weight keeps when its grid is coarsened to hold the bias.
MIN_WEIGHT_BITS_FOR_BIAS = 2


def weight_frac_holding_bias(w_max: float, b_max: float, weight_bits: int, acc_bits: int, frac_before: int) -> tuple[int, bool]:
    """The weights' fractional bits f_w of a synaptic stage whose bias (units 2**-(frac_before + f_w))
    must fit the `acc_bits` accumulator (docs/fixed_point.md section 5, rule 2): the power-of-two rule's
    frac_for_range(w_max, weight_bits), lowered when needed to frac_for_range(b_max, acc_bits) - frac_before,
    so that the accumulator's step is coarse enough for its range to hold the bias. Returns (f_w, ok);
    ok is False when that grid would leave the largest weight fewer than MIN_WEIGHT_BITS_FOR_BIAS
    significant bits (the layer cannot be built: the caller refuses it)."""
    f_w = frac_for_range(w_max, weight_bits)
    if not b_max > 0 or not math.isfinite(b_max):
        return f_w, True
    cap = frac_for_range(b_max, acc_bits) - frac_before
    if f_w <= cap:
        return f_w, True
    return cap, math.ldexp(w_max, cap) >= (1 << (MIN_WEIGHT_BITS_FOR_BIAS - 1))
