"""Fixed mode's cheap synaptic products (float32, event-driven) give the bits of float64 products."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from talon import ir
from talon.backend.cpu import exact_products as xp
from talon.backend.cpu import fixed as fx
from talon.bridge.modules import AffineRuntime, ConvRuntime


def _old_round_half_up(x, fmt):  # the ldexp formulation the in-place one replaced
    y = torch.floor(torch.ldexp(x, torch.tensor(fmt.frac, dtype=x.dtype)) + 0.5)
    return torch.ldexp(y.clamp_(fmt.lo, fmt.hi), torch.tensor(-fmt.frac, dtype=x.dtype))


def _old_round_ceil(x, fmt):
    y = torch.ceil(torch.ldexp(x, torch.tensor(fmt.frac, dtype=x.dtype)))
    return torch.ldexp(y.clamp_(fmt.lo, fmt.hi), torch.tensor(-fmt.frac, dtype=x.dtype))


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 24), st.integers(-8, 30), st.integers(0, 2**16))
def test_rounding_equals_ldexp_formulas(bits, frac, seed):
    fmt = fx.Format(bits, frac)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(257, generator=g, dtype=torch.float64) * math.ldexp(1.0, bits - 1 - frac)
    ties = (torch.randint(-(2 ** bits), 2 ** bits, (64,), generator=g).double() + 0.5) * math.ldexp(1.0, -frac)
    x = torch.cat([x, ties, torch.tensor([0.0, -0.0])])
    kept = x.clone()
    assert torch.equal(fx.round_half_up(x, fmt), _old_round_half_up(x, fmt))
    assert torch.equal(fx.round_ceil(x, fmt), _old_round_ceil(x, fmt))
    assert torch.equal(x, kept)  # the caller's tensor is not rounded in place


def test_float32_bound_uses_the_actual_weights():
    w = np.full((3, 100), 127, np.int64)
    fr = {"weight": 7, "bias": 14}
    assert xp.float32_exact({"weight": w}, fr, 8, 7, 14)  # 100 * 127 * 128 < 2^24
    assert not xp.float32_exact({"weight": np.full((3, 2000), 127, np.int64)}, fr, 8, 7, 14)
    edge = np.zeros((1, 1), np.int64) + 1
    assert xp.float32_exact({"weight": edge, "bias": np.array([2**24 - 2**7 - 1])}, fr, 8, 7, 14)
    assert not xp.float32_exact({"weight": edge, "bias": np.array([2**24 - 2**7])}, fr, 8, 7, 14)


def _affine_on_grid(rng, n_in, n_out, w_max, b_max, w_frac=6):
    w = rng.integers(-w_max, w_max + 1, (n_out, n_in))
    b = rng.integers(-b_max, b_max + 1, n_out)
    return w, b


@pytest.mark.parametrize("density", [0.0, 0.02, 0.5])
@pytest.mark.parametrize("near_bound", [False, True])
def test_affine_products_are_bit_exact(density, near_bound):
    rng = np.random.default_rng(3)
    n_in, n_out, in_bits, in_frac, w_frac = 300, 40, 8, 4, 6
    w_max = (2**24 - 1) // (n_in * 2 ** (in_bits - 1)) if near_bound else 127
    w, b = _affine_on_grid(rng, n_in, n_out, w_max, 1000)
    acc_frac = in_frac + w_frac
    ints, fracs = {"weight": w, "bias": b}, {"weight": w_frac, "bias": acc_frac}
    single = xp.float32_exact(ints, fracs, in_bits, in_frac, acc_frac)
    assert single == (np.abs(w).sum(1).max() * 128 + np.abs(b).max() < 2**24)
    inner = AffineRuntime(np.ldexp(w.astype(np.float64), -w_frac), np.ldexp(b.astype(np.float64), -acc_frac)).double()
    fast = xp.ExactSynaptic(inner, lambda y: y, single)
    xi = rng.integers(-128, 128, (64, n_in)) * (rng.random((64, n_in)) < density)
    if density:
        xi[0] = 127 * np.sign(w[0])  # the largest reachable sum (row 0)
    x = torch.from_numpy(np.ldexp(xi.astype(np.float64), -in_frac))
    want = torch.nn.functional.linear(x, inner.weight, inner.bias)
    got = fast(x)
    assert got.dtype == torch.float64 and torch.equal(got, want)


def test_conv_products_in_float32_are_bit_exact():
    rng = np.random.default_rng(5)
    w = rng.integers(-127, 128, (6, 2, 3, 3))
    b = rng.integers(-500, 500, 6)
    ints, fracs = {"weight": w, "bias": b}, {"weight": 7, "bias": 12}
    assert xp.float32_exact(ints, fracs, 8, 5, 12)
    node = ir.Conv2d(weight=np.ldexp(w.astype(np.float32), -7), bias=np.ldexp(b.astype(np.float32), -12), padding=(1, 1))
    inner = ConvRuntime(node, 2).double()
    fast = xp.ExactSynaptic(inner, lambda y: y, True)
    x = torch.from_numpy(np.ldexp(rng.integers(-128, 128, (4, 2, 9, 9)).astype(np.float64), -5))
    assert torch.equal(fast(x), inner(x))


@pytest.mark.gpu
def test_exact_products_on_cuda_match_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(9)
    w, b = rng.integers(-127, 128, (20, 50)), rng.integers(-100, 100, 20)
    inner = AffineRuntime(np.ldexp(w.astype(np.float64), -7), np.ldexp(b.astype(np.float64), -11)).double()
    x = torch.from_numpy(np.ldexp((rng.integers(0, 2, (30, 50)) * (rng.random((30, 50)) < 0.05)).astype(np.float64), -4))
    want = xp.ExactSynaptic(inner, lambda y: y, True)(x)
    gpu = xp.ExactSynaptic(inner, lambda y: y, True).to("cuda")
    assert torch.equal(gpu(x.cuda()).cpu(), want)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.sampled_from([1, 10, 70]), st.sampled_from([0.0, 0.03, 0.3, 1.0]), st.booleans(), st.booleans(), st.booleans())
def test_event_driven_equals_dense_on_spikes(seed, n_in, n_out, density, near_bound, single, graded):
    """The event-driven path gives the dense product's bits on binary inputs (and on 8-bit values), all-zero
    and all-one steps included, in float32 (bound < 2^24) and in float64 weights alike."""
    rng = np.random.default_rng(seed)
    in_bits, in_frac, w_frac = 8, 0, 7
    w_max = max(1, (2**24 - 1 - 1000) // (n_in * 2 ** (in_bits - 1))) if near_bound else 127
    w, b = _affine_on_grid(rng, n_in, n_out, w_max, 1000)
    acc_frac = in_frac + w_frac
    ints, fracs = {"weight": w, "bias": b}, {"weight": w_frac, "bias": acc_frac}
    assert xp.float32_exact(ints, fracs, in_bits, in_frac, acc_frac)
    inner = AffineRuntime(np.ldexp(w.astype(np.float64), -w_frac), np.ldexp(b.astype(np.float64), -acc_frac)).double()
    x = (rng.random((12, n_in)) < density).astype(np.float64)
    x[0], x[1] = 0.0, 1.0  # an all-zero step and an all-one step (the largest sums of the spikes)
    x[2] = (w[0] > 0).astype(np.float64)  # row 0's largest reachable sum on spikes
    if graded:  # 8-bit values instead of spikes: the per-input weights of the bags
        x = x * rng.integers(-128, 128, x.shape)
        x[3] = -128.0 * np.sign(w[0])
    x = torch.from_numpy(x)
    want = torch.nn.functional.linear(x, inner.weight, inner.bias)
    weight = inner.weight.float() if single else inner.weight
    bias = inner.bias.float() if single else inner.bias
    got = xp.sparse_linear(x, weight.t().contiguous(), bias)
    assert got.dtype == weight.dtype and torch.equal(got.double(), want)
    assert torch.equal(xp.sparse_linear(torch.zeros_like(x), weight.t().contiguous(), bias).double(), inner.bias.expand_as(want))
    for below in (2.0, -1.0):  # forced event-driven, forced dense: the same bits through the module
        saved = xp.SPARSE_BELOW
        xp.SPARSE_BELOW = below
        try:
            mod = xp.ExactSynaptic(inner, lambda y: y, single)
        finally:
            xp.SPARSE_BELOW = saved
        assert mod._sparse(x) == (mod.sparse_below > 1.0)  # a fraction of non-zeros is never above 1
        assert torch.equal(mod(x), want)


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 24), st.integers(-20, 30), st.integers(2, 25), st.integers(-20, 30), st.integers(16, 48))
def test_float32_post_equals_float64_rounding(seed, bound_bits, acc_frac, out_bits, out_frac, acc_bits):
    """Saturation and rounding in float32, where float32_post allows it, give synaptic_output's float64 bits."""
    bound = (1 << bound_bits) - 1
    post32 = xp.float32_post(bound, acc_bits, acc_frac, out_bits, out_frac)
    if post32 is None:
        d = acc_frac - out_frac
        assert bound >= (1 << (acc_bits - 1)) - 1 or out_bits > 25 or (d > 0 and bound + (1 << (d - 1)) >= 1 << 24)
        return
    rng = np.random.default_rng(seed)
    acc = rng.integers(-bound, bound + 1, 500)
    acc[:4] = [bound, -bound, 0, 1]
    y64 = torch.from_numpy(np.ldexp(acc.astype(np.float64), -acc_frac))
    plan = fx.NodePlan("n", "Affine", "synaptic", fx.Format(out_bits, out_frac), acc_bits=acc_bits, acc_frac=acc_frac)
    want = fx.synaptic_output(y64, plan)
    got = post32(y64.float()).double()
    assert torch.equal(got, want)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 24), st.integers(-4, 30), st.sampled_from([torch.float32, torch.float64]))
def test_spike_input_rounding_is_the_full_rounding(seed, bits, frac, dtype):
    """round_input on spikes (0, 1 and -0.0) gives round_half_up's bits wherever it takes the short way,
    and never changes the caller's tensor."""
    fmt = fx.Format(bits, frac)
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (7, 3, 11), generator=g).to(dtype)
    x[0, 0, :3] = torch.tensor([-0.0, 0.0, 1.0])
    kept = x.clone()
    got = fx.round_input(x, fmt, spikes=True)
    want = fx.round_half_up(x.double(), fmt)
    assert got.dtype == torch.float64 and torch.equal(got, want)
    assert torch.equal(torch.signbit(got), torch.signbit(want))  # -0.0 became +0.0 both ways
    assert torch.equal(x, kept) and torch.equal(fx.round_input(x, fmt), want)


def test_counts_and_positions_of_non_zeros_match_torch():
    from talon.backend.cpu.counting import count_nonzero

    x = torch.tensor([0.0, -0.0, 1.0, float("nan"), -2.5, 0.0, float("inf"), 1e-300], dtype=torch.float64)
    for t in (x, x.float(), x.reshape(2, 4).t(), (x != 0), x[::3], torch.tensor([3, 0, -1], dtype=torch.int16)):
        assert count_nonzero(t) == int(torch.count_nonzero(t))
        flat = t.reshape(-1)
        assert torch.equal(xp.flat_nonzero(flat), flat.nonzero().squeeze(1))
    assert count_nonzero(torch.zeros(0)) == 0 and xp.flat_nonzero(torch.zeros(0)).numel() == 0
