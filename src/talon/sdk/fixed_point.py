"""The power-of-two quantisation rule: one definition for the fixed-point planner
(talon.backend.cpu.fixed) and for `quantize_weights(power_of_two=True)` (talon.sdk.convert).

docs/fixed_point.md section 5 is the specification. It lives here, in the torch-free sdk layer, because
the backend may import the sdk but the sdk may never import the backend (docs ARCHITECTURE.md, layers).
A change to either function changes the integers hardware loads: bump
talon.backend.descriptor.FIXED_POINT_VERSION with it.
"""

from __future__ import annotations

import math

import numpy as np

#: Nodes whose output lies on the grid of their (single) input: they keep its format.
GRID_PRESERVING = ("Output", "Flatten", "Dropout", "HybridRegion", "ChannelSplit", "Delay", "MaxPool2d", "Upsample")


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
    scaled = np.ldexp(np.asarray(x, dtype=np.float64), np.asarray(frac, dtype=np.int64))
    return np.clip(np.rint(scaled), -hi, hi).astype(np.int64)


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
