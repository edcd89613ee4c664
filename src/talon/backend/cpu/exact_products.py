"""Fixed-point mode's synaptic products, computed the cheapest way that still gives the exact integers.

In fixed mode every synaptic sum is a sum of integers times one power of two (talon.backend.cpu.fixed),
and the runtime computes it in float64, where the plan's bit budget (< 53 bits) makes every order of
summation exact. Two cheaper ways give the same bits, chosen per node from the plan's own integers:

* float32: when the largest |sum| the node can reach, ``max_i sum_j |W_ij| * 2^(in_bits-1) + |b_i|`` in
  accumulator units, is below 2^24, every partial sum (in any order, fused or not) is an integer below
  2^24 times a power of two, which float32 holds exactly. This bound is tighter than the plan's
  ``exact_sum_bits`` (it uses the actual weights), so most 8-bit layers qualify.
* event-driven (Affine/Linear/SpikingAffine): where few inputs are non-zero (spikes, in any format), only
  the non-zero inputs are multiplied (a bag of weight rows per input row, summed), exact for the
  same reason. The density is measured on each call, so cost follows activity.

Neither changes a single bit of the result: tests/backend check it against the float64 products and the
FPGA kernels' C++ simulation. Convolutions use float32 only; SepConv2d (two stages) stays in float64.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talon.bridge.modules import AffineRuntime, ConvRuntime

#: Use the non-zero inputs only below this fraction of non-zeros (dense float32 products win above it;
#: measured on a 2-core x86 for 3200x784 @ 784x512: ~0.4 of dense at 5%, ~0.6 at 12%, ~1.6x at 40%).
SPARSE_BELOW = 0.15
#: Exponent range where float32 scaling stays exact (its normal range is 2^-126 .. 2^127).
_FLOAT32_EXP = 100


def float32_exact(ints: dict[str, np.ndarray], fracs: dict[str, int], in_bits: int, in_frac: int, acc_frac: int) -> bool:
    """True when every partial sum of the node's products fits float32 exactly (see the module docstring)."""
    w = ints.get("weight")
    if w is None or w.size == 0 or set(ints) - {"weight", "bias"}:
        return False
    if max(abs(in_frac), abs(fracs["weight"]), abs(acc_frac)) > _FLOAT32_EXP:
        return False
    l1 = np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1)
    bound = l1 * (1 << (in_bits - 1))
    b = ints.get("bias")
    if b is not None:
        if fracs.get("bias", acc_frac) != acc_frac:
            return False
        bound = bound + np.abs(np.asarray(b, np.int64)).reshape(-1)
    return int(bound.max()) < (1 << 24)


class ExactSynaptic(nn.Module):
    """An Affine/Conv runtime's products in float32 and/or on sparse inputs, then `post` (saturation and
    rounding, in float64). `inner` stays the module the executor moves and converts; the float32 copy
    is rebuilt from it when its device changes."""

    def __init__(self, inner: nn.Module, post: Callable[[Tensor], Tensor], single: bool, cache: dict | None = None) -> None:
        super().__init__()
        self.inner, self.post, self.single = inner, post, single
        self.event_driven = isinstance(inner, AffineRuntime)
        # Derived weights (float32 copy, transposed): a plain dict, so .to()/.double() do not touch it;
        # `cache` lets every executor built for one plan share them (the plan's weights never change).
        self._copy: dict[Any, Any] = {} if cache is None else cache

    def _float32(self) -> nn.Module:
        key = self.inner.weight.device
        mod = self._copy.get(key)
        if mod is None:
            mod = self._copy[key] = copy.deepcopy(self.inner).float()
        return mod

    def _transposed(self, weight: Tensor) -> Tensor:
        key = ("t", weight.device, weight.dtype)
        wt = self._copy.get(key)
        if wt is None:
            wt = self._copy[key] = weight.t().contiguous()
        return wt

    def forward(self, x: Tensor) -> Tensor:
        out_dtype = x.dtype
        if self.single and out_dtype == torch.float64:
            mod, x = self._float32(), x.float()
        else:
            mod = self.inner
        if self.event_driven and x.dim() == 2 and x.numel() and x.layout == torch.strided:
            nz = int(torch.ne(x, 0).sum())  # count_nonzero's count, several times faster on CPU
            if nz < SPARSE_BELOW * x.numel():
                y = _sparse_linear(x, self._transposed(mod.weight), mod.bias)
                return self.post(y.to(out_dtype))
        return self.post(mod(x).to(out_dtype))


def _sparse_linear(x: Tensor, weight_t: Tensor, bias: Tensor | None) -> Tensor:
    """x @ weight_t (+ bias) over the non-zero entries of x only: each row of x is a bag of the rows of
    weight_t its non-zeros select, weighted by their values (embedding_bag's sum, a tuned CPU kernel;
    about 1.5-2x faster than a CSR product here)."""
    with warnings.catch_warnings():  # torch flags sparse CSR as beta on first use; nothing to act on
        warnings.simplefilter("ignore")
        rows = x.to_sparse_csr()
    y = F.embedding_bag(rows.col_indices(), weight_t, rows.crow_indices()[:-1], mode="sum", per_sample_weights=rows.values())
    return y if bias is None else y.add_(bias)


def is_candidate(inner: nn.Module) -> bool:
    """Runtimes whose products ExactSynaptic knows how to reproduce (one weight, optional bias)."""
    return type(inner) in (AffineRuntime, ConvRuntime)
