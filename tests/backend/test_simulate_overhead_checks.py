"""simulate's cheaper counts and stimulus checks (docs/performance.md, "simulate's own overhead") give
exactly what the plain forms give: counting floats on their bits, the blocked 0/1 check, the finite check's
sum in the input's own type."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from talon.backend import stimulus
from talon.backend.cpu import counting
from talon.errors import BackendError

SPECIAL = [0.0, -0.0, 1.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e-45, -1e-45, 5e-324, 6e4, 0.5]
FLOATS = (torch.float16, torch.float32, torch.float64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(SPECIAL), min_size=0, max_size=40), st.sampled_from(FLOATS), st.booleans())
def test_float_count_on_bits_is_torchs_count(values, dtype, transpose):
    old = counting._BITS_FROM
    counting._BITS_FROM = 0  # every tensor through the bit path
    try:
        x = torch.tensor(values, dtype=torch.float64).to(dtype)
        views = [x, x[::2], x.reshape(-1, 1).expand(-1, 3)]
        if transpose and x.numel() % 4 == 0 and x.numel():
            views.append(x.reshape(4, -1).t())
        for v in views:
            assert counting.count_nonzero(v) == int(torch.count_nonzero(v))
    finally:
        counting._BITS_FROM = old


@pytest.mark.parametrize("dtype", FLOATS)
def test_large_spike_tensors_counted_exactly(dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(3, 8, 12, 24, 24, generator=g) < 0.1).to(dtype)  # above _BITS_FROM
    assert x.numel() >= counting._BITS_FROM
    want = int(torch.count_nonzero(x))
    assert counting.count_nonzero(x) == want
    ones = int(torch.count_nonzero(x[0, 0, 0, 0, :5]))
    x[0, 0, 0, 0, :5] = -0.0  # zeros with the sign bit: not counted
    assert counting.count_nonzero(x) == want - ones == int(torch.count_nonzero(x))
    x[1, 0, 0, 0, :2] = float("nan")  # NaN: counted
    assert counting.count_nonzero(x) == int(torch.count_nonzero(x))
    assert counting.count_nonzero(-x) == int(torch.count_nonzero(x))  # negative spikes (a graded factor < 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.5, float("nan")]), min_size=0, max_size=30), st.integers(1, 4), st.integers(1, 6))
def test_blocked_binary_check_is_the_whole_check(values, first, block):
    old = stimulus._BINARY_FIRST, stimulus._BINARY_BLOCK
    stimulus._BINARY_FIRST, stimulus._BINARY_BLOCK = first, block
    try:
        x = torch.tensor(values)
        assert stimulus.is_binary(x) == bool(((x == 0) | (x == 1)).all())
        assert stimulus.binary_ones(x) == (int((x == 1).sum()) if stimulus.is_binary(x) else None)
    finally:
        stimulus._BINARY_FIRST, stimulus._BINARY_BLOCK = old


def test_binary_check_reads_past_the_first_block():
    x = torch.zeros(3 * stimulus._BINARY_FIRST)
    x[: stimulus._BINARY_FIRST] = 1.0
    assert stimulus.is_binary(x)
    x[-1] = 0.25  # only the last block holds the stray value
    assert not stimulus.is_binary(x)


@pytest.mark.parametrize("dtype", (torch.float16, torch.float32))
def test_finite_check_when_the_own_type_sum_overflows(dtype):
    big = torch.full((64,), float(torch.finfo(dtype).max) / 4, dtype=dtype)  # finite, its sum is not
    assert not bool(torch.isfinite(big.sum()))
    stimulus.check_finite(big, "input 'x'")  # accepted: the float64 sum decides
    for bad in (float("nan"), float("inf"), -float("inf")):
        y = big.clone()
        y[5] = bad
        with pytest.raises(BackendError, match=r"input 'x' holds 1 non-finite value.*index \(5,\)"):
            stimulus.check_finite(y, "input 'x'")


def test_finite_check_refuses_a_float32_nan():
    x = torch.rand(10, 4)
    x[3, 2] = float("nan")
    with pytest.raises(BackendError, match=r"index \(3, 2\)"):
        stimulus.check_finite(x, "input 'x'")


@pytest.mark.parametrize("executor_chunk", [None, 1])
def test_event_counts_over_executor_chunks_are_the_recorded_spikes(monkeypatch, executor_chunk):
    """One spike tensor feeding two layers is counted once per executor chunk; the cache of counted
    tensors is dropped as each chunk starts, and the counts stay those of the recorded spikes."""
    from talon import ir
    from talon.backend import get_backend
    from talon.bridge import GraphExecutor

    if executor_chunk is not None:  # one step per executor chunk: many chunks within each simulate chunk
        monkeypatch.setattr(GraphExecutor, "chunk_bytes", executor_chunk)
    rng = np.random.default_rng(3)
    n = 16
    lif = lambda: ir.LIF(tau=np.full(n, 5.0), r=np.full(n, 5.0), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5))  # noqa: E731
    g = ir.Graph({
        "input": ir.Input(shape=(8,)),
        "fc0": ir.Affine(weight=rng.normal(0, 1.0, (n, 8)).astype(np.float32), bias=np.zeros(n, np.float32)),
        "lif0": lif(),
        "fa": ir.Affine(weight=rng.normal(0, 1.0, (n, n)).astype(np.float32), bias=np.zeros(n, np.float32)),
        "fb": ir.Affine(weight=rng.normal(0, 1.0, (n, n)).astype(np.float32), bias=np.zeros(n, np.float32)),
        "lifa": lif(), "lifb": lif(), "oa": ir.Output(), "ob": ir.Output(),
    }, [("input", "fc0"), ("fc0", "lif0"), ("lif0", "fa"), ("lif0", "fb"), ("fa", "lifa"), ("fb", "lifb"),
        ("lifa", "oa"), ("lifb", "ob")])
    x = torch.rand(12, 3, 8) * 2
    sim = get_backend("cpu").simulate(g, x, record="spikes", chunk_steps=5)
    spikes = int(torch.count_nonzero(sim.spikes["lif0"]))
    assert spikes > 0 and sim.spike_counts["lif0"] == spikes
    assert sim.input_events["fa"] == sim.input_events["fb"] == spikes
    for name in ("lifa", "lifb"):
        assert sim.spike_counts[name] == int(torch.count_nonzero(sim.spikes[name]))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(SPECIAL + [1.0 - 2**-24, 1.0 + 2**-23, 2.0]), min_size=0, max_size=40), st.sampled_from(FLOATS),
       st.integers(1, 4), st.integers(1, 6), st.booleans())
def test_binary_check_by_numpy_counts_is_the_whole_check(values, dtype, first, block, small_counts):
    """The large-block path (two numpy counts, floats counted on their bits) decides as torch's comparison."""
    old = stimulus._BINARY_FIRST, stimulus._BINARY_BLOCK, stimulus._BINARY_NUMPY_FROM, counting._BITS_FROM
    stimulus._BINARY_FIRST, stimulus._BINARY_BLOCK, stimulus._BINARY_NUMPY_FROM = first, block, 0
    counting._BITS_FROM = 1 << 30 if small_counts else 0  # torch's count or the bit count inside
    try:
        x = torch.tensor(values, dtype=torch.float64).to(dtype)
        for v in (x, x[::2], x.reshape(-1, 1).expand(-1, 3), torch.neg(x), x.neg().neg()):
            binary = bool(((v == 0) | (v == 1)).all())
            assert stimulus.is_binary(v) == binary, v
            assert stimulus.binary_ones(v) == (int((v == 1).sum()) if binary else None), v
    finally:
        stimulus._BINARY_FIRST, stimulus._BINARY_BLOCK, stimulus._BINARY_NUMPY_FROM, counting._BITS_FROM = old


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64))
def test_large_spike_stimulus_binary_and_non_finite_refused(dtype):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(40, 8, 784, generator=g) < 0.05).to(dtype)  # blocks above _BINARY_NUMPY_FROM
    stim = stimulus.make_stimulus(x, {"x": (784,)}, None)
    assert stim.binary["x"] is True
    for silent in (torch.zeros_like(x), torch.full_like(x, -0.0)):  # all zeros is no evidence of spikes
        assert stimulus.make_stimulus(silent, {"x": (784,)}, None).binary["x"] is False
    x[39, 7, 700] = -0.0
    assert stimulus.make_stimulus(x, {"x": (784,)}, None).binary["x"] is True
    x[39, 7, 701] = 1.0 - 2**-24 if dtype == torch.float32 else 1.0 - 2**-53
    assert stimulus.make_stimulus(x, {"x": (784,)}, None).binary["x"] is False
    x[39, 7, 702] = float("nan")  # not binary, so the finite check runs and names it
    with pytest.raises(BackendError, match="non-finite"):
        stimulus.make_stimulus(x, {"x": (784,)}, None)
    x[39, 7, 701:703] = 1.0
    x[39, 7, 703] = float("inf")
    with pytest.raises(BackendError, match="non-finite"):
        stimulus.make_stimulus(x, {"x": (784,)}, None)
