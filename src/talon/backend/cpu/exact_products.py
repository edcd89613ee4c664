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
  same reason. The density is estimated on each call (a sample of its rows), so cost follows activity;
  the threshold depends on the layer's width (SPARSE_BELOW, measured).
* saturation and rounding of a float32 accumulator run in float32 where each step is provably exact
  (float32_post), converting to float64 once at the end.
* event-driven sums of spikes (every non-zero input 1) read each weight row as 8-bit integers
  (`ByteRows`, fbgemm's 8-bit embedding bag: a quarter of the bytes of float32 rows) where every weight
  is an 8-bit integer times one power of two: each term ``scale*q + offset`` is that weight exactly, and
  the sums are float32's, exact by the same bound. A zero bias is not added where that cannot change a
  sign of zero (talon.backend.cpu.fixed_events marks the inputs known to be spikes).

Neither changes a single bit of the result: tests/backend check it against the float64 products and the
FPGA kernels' C++ simulation. Convolutions use float32 only; SepConv2d (two stages) stays in float64.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from talon.backend.cpu import clip_watch
from talon.backend.cpu.counting import _NUMPY_DTYPES, count_nonzero
from talon.bridge.modules import AffineRuntime, ConvRuntime

#: Event-driven products pay a pass that finds the non-zeros (``nonzero``, per input element) and then
#: one row of weights per non-zero; a dense product pays every weight for every input. Measured on the
#: shared 2-core x86 (docs/performance.md, 3200 input rows, float32, one thread): dense 32.8 ms against
#: 11.3 ms at 5% (784 -> 512), 21.6 against 13.7 at 12% and 20.5 against 20.5 at 20% (512 -> 512); the
#: non-zero pass alone costs about what a dense product with ~90 outputs costs. So the inputs' density
#: must stay below SPARSE_BELOW - SPARSE_PER_OUTPUT / n_out (0.15 at 512 outputs; never at <= 64 outputs).
SPARSE_BELOW = 0.2
SPARSE_PER_OUTPUT = 27.0
#: The density is estimated on every SAMPLE_EVERY-th input row (the choice changes only the speed: both
#: ways give the same bits); a full count costs as much as a fifth of the sparse product.
SAMPLE_EVERY = 16
#: Exponent range where float32 scaling stays exact (its normal range is 2^-126 .. 2^127).
_FLOAT32_EXP = 100


def accumulator_bound(ints: dict[str, np.ndarray], fracs: dict[str, int], in_bits: int, acc_frac: int) -> int | None:
    """The largest |accumulator| (in units of 2^-acc_frac) the node can reach on any input of `in_bits`
    signed bits, ``max_i sum_j |W_ij| * 2^(in_bits-1) + |b_i|``; None when the node is not one weight
    (and an optional bias on the accumulator's grid)."""
    w = ints.get("weight")
    if w is None or w.size == 0 or set(ints) - {"weight", "bias"}:
        return None
    l1 = np.abs(w.astype(np.int64)).reshape(w.shape[0], -1).sum(axis=1)
    bound = l1 * (1 << (in_bits - 1))
    b = ints.get("bias")
    if b is not None:
        if fracs.get("bias", acc_frac) != acc_frac:
            return None
        bound = bound + np.abs(np.asarray(b, np.int64)).reshape(-1)
    return int(bound.max())


def float32_exact(ints: dict[str, np.ndarray], fracs: dict[str, int], in_bits: int, in_frac: int, acc_frac: int) -> bool:
    """True when every partial sum of the node's products fits float32 exactly (see the module docstring)."""
    if "weight" not in fracs or max(abs(in_frac), abs(fracs["weight"]), abs(acc_frac)) > _FLOAT32_EXP:
        return False
    bound = accumulator_bound(ints, fracs, in_bits, acc_frac)
    return bound is not None and bound < (1 << 24)


def float32_post(bound: int, acc_bits: int, acc_frac: int, out_bits: int, out_frac: int) -> Callable[[Tensor], Tensor] | None:
    """Saturation and rounding (talon.backend.cpu.fixed.synaptic_output) of a float32 accumulator, in
    float32 and in place, when that is provably the same value; None otherwise.

    With |A| <= bound < 2^24 (A the accumulator in units of 2^-acc_frac): saturation is a no-op when
    bound < 2^(acc_bits-1); with d = acc_frac - out_frac <= 0, rounding half up to the output grid is
    the identity and leaves the clamp to the output range (whose ends hold in float32 for out_bits <= 25);
    with d > 0 every step of ``floor(y * 2^out_frac + 1/2)`` is exact while bound + 2^(d-1) < 2^24."""
    if bound >= (1 << 24) or bound >= (1 << (acc_bits - 1)) - 1 or out_bits > 25:
        return None
    if max(abs(acc_frac), abs(out_frac)) > _FLOAT32_EXP:
        return None
    d = acc_frac - out_frac
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    up, down = math.ldexp(1.0, out_frac), math.ldexp(1.0, -out_frac)
    if d <= 0:
        y_lo, y_hi = lo * down, hi * down
        return lambda y: y.clamp_(y_lo, y_hi)
    if bound + (1 << (d - 1)) >= (1 << 24):
        return None
    return lambda y: y.mul_(up).add_(0.5).floor_().clamp_(lo, hi).mul_(down)


class ExactSynaptic(nn.Module):
    """An Affine/Conv runtime's products in float32 and/or on sparse inputs, then `post` (saturation and
    rounding, in float64; or `post32` in float32 where float32_post proved it the same). `inner` stays
    the module the executor moves and converts; the float32 copy is rebuilt from it when its device
    changes."""

    def __init__(self, inner: nn.Module, post: Callable[[Tensor], Tensor], single: bool, cache: dict | None = None,
                 post32: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        self.inner, self.post, self.single, self.post32 = inner, post, single, post32 if single else None
        self.event_driven = isinstance(inner, AffineRuntime)
        n_out = inner.weight.shape[0] if self.event_driven else 0
        self.sparse_below = SPARSE_BELOW - SPARSE_PER_OUTPUT / max(n_out, 1)
        # Derived weights (float32 copy, transposed): a plain dict, so .to()/.double() do not touch it;
        # `cache` lets every executor built for one plan share them (the plan's weights never change).
        self._copy: dict[Any, Any] = {} if cache is None else cache
        # Set by talon.backend.cpu.fixed_narrow where the output may stay float32 (its values fit float32
        # exactly and only exact readers read it); otherwise the output has `inner`'s dtype (the run's).
        self.emit32 = False
        # Set by talon.backend.cpu.fixed: the NodePlan whose saturation post32's path reports (clip_watch)
        self.watch_plan: Any = None
        # Set by talon.backend.cpu.fixed_events where every non-zero input is 1 by construction (a plain
        # LIF/IF's spikes, a graph input checked binary): the event-driven sum then needs no value check.
        self.spikes_in = False
        # With report_events set (by the simulator, whose event counter reads and clears it): the input of
        # the last event-driven call and its number of non-zeros, so that it is not counted again.
        self.report_events = False
        self.last_events: tuple[Tensor, int] | None = None
        key = inner.weight.device
        if single and inner.weight.dtype == torch.float32 and key not in self._copy:
            # still float32 (the run converts it to float64 later): copied now, without a float64 detour
            self._copy[key] = copy.deepcopy(inner)

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

    def _events(self, weight_t: Tensor, bias: Tensor | None) -> tuple["ByteRows | None", bool]:
        """(the 8-bit rows of weight_t or None, whether adding `bias` to an unweighted sum is the identity),
        decided once per plan and weight dtype."""
        key = ("events", weight_t.device, weight_t.dtype)
        got = self._copy.get(key)
        if got is None:
            got = self._copy[key] = (ByteRows.of(weight_t), unsigned_zero_sums(weight_t) and zero_bias(bias))
        return got

    def _sparse(self, x: Tensor) -> bool:
        if not (self.event_driven and self.sparse_below > 0 and x.dim() == 2 and x.numel() and x.layout == torch.strided):
            return False
        sample = x[:: SAMPLE_EVERY]
        return int(count_nonzero(sample)) < self.sparse_below * sample.numel()

    def forward(self, x: Tensor) -> Tensor:
        run_dtype = self.inner.weight.dtype
        out_dtype = torch.float32 if self.emit32 else run_dtype
        mod = self._float32() if self.single and run_dtype != torch.float32 else self.inner
        if self._sparse(x):
            wt = self._transposed(mod.weight)
            rows, bias_free = self._events(wt, mod.bias) if self.spikes_in else (None, False)
            seen: list[int] | None = [] if self.report_events else None
            y = sparse_linear(x, wt, None if bias_free else mod.bias, spikes=self.spikes_in, rows=rows, seen=seen)
            if seen:
                self.last_events = (x, seen[0])
        else:
            self.last_events = None
            # an input in another dtype holds the same values (float32 <-> float64 of on-grid values)
            y = mod(x if x.dtype == mod.weight.dtype else x.to(mod.weight.dtype))
        if self.post32 is not None and y.dtype == torch.float32:
            if self.watch_plan is not None:
                clip_watch.note_synaptic(self.watch_plan, y)
            return self.post32(y).to(out_dtype)
        y = self.post(y.to(run_dtype))
        return y if y.dtype == out_dtype else y.to(out_dtype)


def sparse_linear(x: Tensor, weight_t: Tensor, bias: Tensor | None, spikes: bool = False, rows: "ByteRows | None" = None,
                  seen: list[int] | None = None) -> Tensor:
    """x @ weight_t (+ bias) over the non-zero entries of the 2-D x only, in weight_t's dtype: each row
    of x is a bag of the rows of weight_t its non-zeros select (embedding_bag's sum, a tuned CPU kernel,
    faster here than a CSR product), weighted by their values unless all of them are 1 (spikes).
    Exact whenever every partial sum is (the caller's bound): the order of the terms is then free.
    `spikes`: the caller knows every non-zero of x is 1 (not checked again); `rows`: weight_t's rows
    as 8-bit integers (ByteRows), used for such unweighted sums; `seen`: a list the number of non-zeros
    of x is appended to.

    The non-zeros are found as flat positions (flat_nonzero), in row-major order: a row's bag starts at
    the first position at or past row * n_in, and a position's column is its remainder by n_in."""
    n_rows, n_in = x.shape
    flat = x.reshape(-1)
    idx = flat_nonzero(flat)
    if seen is not None:
        seen.append(idx.numel())
    if idx.numel():
        starts = torch.arange(0, n_rows * n_in, n_in, device=x.device)
        offsets = torch.searchsorted(idx, starts)
        weights = None
        if not spikes:
            vals = flat.index_select(0, idx)
            weights = None if bool(torch.eq(vals, 1).all()) else vals.to(weight_t.dtype)
        columns = _columns(idx, n_in)
        if weights is None and rows is not None:
            y = rows.bags(columns, offsets)
        else:
            y = F.embedding_bag(columns, weight_t, offsets, mode="sum", per_sample_weights=weights)
    else:  # an all-zero input: every bag is empty
        y = weight_t.new_zeros((n_rows, weight_t.shape[1]))
    return y if bias is None else y.add_(bias)


def _columns(idx: Tensor, n_in: int) -> Tensor:
    """The columns of flat positions in rows of n_in (their remainders), in place where that is cheap: a
    mask for a power of two, numpy's floor division by a constant (which multiplies by a reciprocal)
    on the CPU, a remainder (one integer division per position) elsewhere."""
    if n_in & (n_in - 1) == 0:
        return idx.bitwise_and_(n_in - 1)
    if idx.device.type == "cpu":
        a = idx.numpy()
        a -= (a // n_in) * n_in
        return idx
    return idx.remainder_(n_in)


class ByteRows:
    """The rows of a float32 weight_t whose every entry is an 8-bit integer q times one power of two s,
    packed for fbgemm's 8-bit embedding bag: q + 128 as a byte, then the row's scale s and offset -128*s
    as float32. The kernel's term ``s*(q+128) - 128*s`` (fused or not: each step is exact, 9 bits) is
    the weight itself, and it sums the terms in float32 like the float32 rows: the same bits wherever
    the caller's bound makes every partial sum exact (an empty bag is +0, as is every term of weight 0)."""

    def __init__(self, packed: Tensor) -> None:
        self.packed = packed

    @classmethod
    def of(cls, weight_t: Tensor) -> "ByteRows | None":
        """The packed rows, or None (another device or dtype, no 8-bit kernel, weights off 8 bits or -0.0)."""
        if weight_t.device.type != "cpu" or weight_t.dtype != torch.float32 or weight_t.dim() != 2 or not weight_t.numel():
            return None
        packed = _pack_bytes(weight_t.detach().numpy())
        return cls(packed) if packed is not None and _has_byte_kernel() else None

    def bags(self, columns: Tensor, offsets: Tensor) -> Tensor:
        """The float32 sum of each bag's rows (embedding_bag's mode="sum" without weights)."""
        return _BYTE_OP[0](self.packed, columns, offsets, False, 0, False, None, None, False)


def _pack_bytes(w32: np.ndarray) -> Tensor | None:
    """ByteRows' packing of the float32 rows `w32`, or None where some entry is not q * 2^e for one e
    and integers q in [-128, 127], or is -0.0 (a float32 row could then sum to -0.0, a byte row never)."""
    w = w32.astype(np.float64)
    if not np.isfinite(w).all() or np.signbit(w[w == 0]).any():
        return None
    amax = float(np.abs(w).max())
    top = math.frexp(amax)[1] - 7 if amax else 0  # amax / 2^top in [64, 128)
    for exp in (top - 1, top):  # the finer scale first: it fits where -128 * 2^exp is the only extreme
        q = np.ldexp(w, -exp)
        if abs(exp) <= _FLOAT32_EXP and np.array_equal(q, np.round(q)) and q.min() >= -128 and q.max() <= 127:
            break
    else:
        return None
    scale = np.float32(math.ldexp(1.0, exp))
    packed = np.empty((w.shape[0], w.shape[1] + 8), np.uint8)
    packed[:, : w.shape[1]] = (q + 128).astype(np.uint8)
    packed[:, w.shape[1] :] = np.array([scale, np.float32(-128.0) * scale], np.float32).view(np.uint8)
    return torch.from_numpy(packed)


_BYTE_KERNEL: list[bool] = []
_BYTE_OP: list[Any] = []  # the kernel, looked up on first use (not at import)


def _has_byte_kernel() -> bool:
    """The 8-bit embedding bag exists in this torch build (fbgemm) and sums as expected (checked once)."""
    if not _BYTE_KERNEL:
        ok = False
        try:
            _BYTE_OP.append(torch.ops.quantized.embedding_bag_byte_rowwise_offsets)
        except (AttributeError, RuntimeError):
            _BYTE_OP.clear()
        if _BYTE_OP:
            try:
                rows = ByteRows(_pack_bytes(np.array([[1.0, -2.0], [0.5, 0.0]], np.float32)))
                got = rows.bags(torch.tensor([0, 1, 1]), torch.tensor([0, 2]))
                ok = got.dtype == torch.float32 and got.tolist() == [[1.5, -2.0], [0.5, 0.0]]
            except (RuntimeError, NotImplementedError):
                ok = False
        _BYTE_KERNEL.append(ok)
    return _BYTE_KERNEL[0]


def unsigned_zero_sums(weight_t: Tensor) -> bool:
    """True when no weight is -0.0: an unweighted sum of weights that is zero is then +0.0."""
    return not bool(((weight_t == 0) & torch.signbit(weight_t)).any())


def zero_bias(bias: Tensor | None) -> bool:
    """True when adding `bias` changes no value that is not -0.0 (it is absent or every entry is zero)."""
    return bias is None or not bool(bias.any())


def flat_nonzero(flat: Tensor) -> Tensor:
    """The positions of the non-zeros of a 1-D tensor, ascending, as int64 (torch.nonzero's: NaN counts,
    -0.0 does not). On the CPU numpy's compare-then-flatnonzero does it in about half torch's time."""
    if flat.device.type == "cpu" and flat.dtype in _NUMPY_DTYPES and not flat.is_neg():
        return torch.from_numpy(np.flatnonzero(flat.detach().numpy() != 0).astype(np.int64, copy=False))
    return flat.nonzero().squeeze(1)


def is_candidate(inner: nn.Module) -> bool:
    """Runtimes whose products ExactSynaptic knows how to reproduce (one weight, optional bias)."""
    return type(inner) in (AffineRuntime, ConvRuntime)
