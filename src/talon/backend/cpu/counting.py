"""Counting the non-zeros of a run's tensors (spikes, input events) in one cheap pass.

torch's ``ne(x, 0).sum()`` builds a bool tensor and sums it through a slow cast; numpy's count_nonzero
counts in one vectorised pass, three to four times faster on the CPU (docs/performance.md, "Fixed point,
fourth pass"). A small tensor (below `_BITS_FROM` elements) is counted by torch.count_nonzero, which
costs least there (one call; docs/performance.md, "simulate against the bare executor"). All count what
torch.count_nonzero counts: NaN yes, -0.0 no.

numpy counts integers with SIMD but floats element by element, so a large float tensor is counted on
its bits: every bit pattern but +0.0 and -0.0 is a non-zero float (NaN included), and -0.0 (the sign bit
alone, the integer type's minimum) can only be there when the bits hold a negative integer, which one
more SIMD pass (the minimum) rules out for spikes and other non-negative data. Two to three times faster
than counting the floats on a conv layer's spikes (docs/performance.md, "simulate's own overhead").
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

_NUMPY_DTYPES = (torch.float64, torch.float32, torch.float16, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)
#: A float's bits as the signed integer type of its width.
_BITS = {np.dtype(np.float64): np.int64, np.dtype(np.float32): np.int32, np.dtype(np.float16): np.int16}
#: Below this many elements a CPU tensor is counted by torch.count_nonzero (one call; in a run, right
#: after the runtime's kernels, about a third of numpy's cost on a 4,096-element spike chunk).
_BITS_FROM = 1 << 14


def count_nonzero(x: Tensor) -> Any:
    """The number of non-zero elements of `x`: a Python int on the CPU, a 0-d tensor elsewhere (no host
    synchronisation per call)."""
    if x.device.type == "cpu":
        if x.numel() < _BITS_FROM:  # torch's own count: fewest steps for a small tensor (a spike chunk of a small layer)
            return int(torch.count_nonzero(x))
        if x.dtype in _NUMPY_DTYPES and not x.is_neg() and not x.is_conj():
            a = x.detach().numpy()
            bits = _BITS.get(a.dtype)
            if bits is None:
                return int(np.count_nonzero(a))
            return _count_float_bits(a.view(bits))
    return torch.ne(x, 0).sum()


def _count_float_bits(bits: np.ndarray) -> int:
    """Non-zero floats given as their signed integer bits: the non-zero integers but -0.0's (the minimum)."""
    n = int(np.count_nonzero(bits))
    if n == 0 or bits.min() >= 0:
        return n
    return n - int(np.count_nonzero(bits == np.iinfo(bits.dtype).min))
