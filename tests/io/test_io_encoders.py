"""Encoders against snnTorch's spikegen (latency, delta: spike for spike), framing against tonic's ToFrame."""

import re
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from io_events import random_events
from talon import io
from talon.errors import TalonError

unit = arrays(np.float32, st.integers(1, 40), elements=st.floats(0, 1, width=32))


@settings(max_examples=60, deadline=None)
@given(x=unit, steps=st.integers(2, 30), threshold=st.sampled_from([0.01, 0.2, 0.5]), clip=st.booleans())
def test_latency_is_snntorch_linear_normalised_latency(x, steps, threshold, clip):
    from snntorch import spikegen

    ref = spikegen.latency(torch.from_numpy(x), num_steps=steps, threshold=threshold, linear=True, normalize=True, clip=clip)
    np.testing.assert_array_equal(io.latency_encode(x, steps, threshold=threshold, clip=clip), ref.numpy())


def test_latency_on_snntorch_docstring_example():
    out = io.latency_encode(np.array([0.02, 0.5, 1.0]), 5)
    assert out.tolist() == [[0, 0, 1], [0, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]]


@settings(max_examples=60, deadline=None)
@given(seq=arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 6)), elements=st.floats(-3, 3, width=32)),
       threshold=st.sampled_from([0.1, 0.5, 1.0]), off=st.booleans(), padding=st.booleans())
def test_delta_is_snntorch_delta(seq, threshold, off, padding):
    from snntorch import spikegen

    ref = spikegen.delta(torch.from_numpy(seq), threshold=threshold, off_spike=off, padding=padding)
    np.testing.assert_array_equal(io.delta_encode(seq, threshold=threshold, off_spikes=off, padding=padding), ref.numpy())


def test_rate_is_bernoulli_seeded_and_checked():
    x = np.array([0.0, 0.25, 0.5, 1.0], np.float32)
    a = io.rate_encode(np.tile(x, (500, 1)), 40, seed=3)
    assert a.shape == (40, 500, 4) and set(np.unique(a)) <= {0.0, 1.0}
    np.testing.assert_allclose(a.mean(axis=(0, 1)), x, atol=0.02)
    assert a[..., 0].sum() == 0 and a[..., 3].all()
    np.testing.assert_array_equal(a, io.rate_encode(np.tile(x, (500, 1)), 40, seed=3))
    assert not np.array_equal(a, io.rate_encode(np.tile(x, (500, 1)), 40, seed=4))
    with pytest.raises(TalonError, match=r"rate_encode: values lie in \[-0.5, 1\]"):
        io.rate_encode(np.array([-0.5, 1.0]), 4)
    with pytest.raises(TalonError, match=re.escape("latency_encode: x contains NaN at index (1,)")):
        io.latency_encode(np.array([0.5, np.nan]), 4)
    with pytest.raises(TalonError, match=re.escape("rate_encode: x contains -inf at index (0, 1)")):
        io.rate_encode(np.array([[0.5, -np.inf]]), 4)
    with pytest.raises(TalonError, match=re.escape("rate_encode: x holds <U3 values")):
        io.rate_encode(np.array(["0.5"]), 4)
    with pytest.raises(TalonError, match="steps must be a positive integer"):
        io.rate_encode(x, 0)


def test_frames_equal_tonic_to_frame():
    import tonic.transforms as T

    ev = random_events(4000, seed=5)
    ev["t"][0] = 0  # tonic's windows start at the first event; ours at t0 = the first event too
    ours = io.events_to_frames(ev, (64, 48, 2), dt=10_000)
    ref = T.ToFrame(sensor_size=(64, 48, 2), time_window=10_000, include_incomplete=True)(ev)
    assert ours.shape == ref.shape == (20, 2, 48, 64)
    np.testing.assert_array_equal(ours, ref)
    assert ours.sum() == len(ev)


def test_frames_stream_chunk_by_chunk_like_the_whole(tmp_path):
    ev = random_events(5000, seed=6)
    whole = io.events_to_frames(ev, (64, 48), dt=7_000, steps=25, t0=0)
    io.write_events(tmp_path / "r.h5", ev)
    streamed = io.events_to_frames(io.iter_events(tmp_path / "r.h5", chunk_size=512), (64, 48), dt=7_000, steps=25, t0=0)
    np.testing.assert_array_equal(whole, streamed)
    merged = io.events_to_frames(ev, (64, 48), dt=7_000, steps=25, t0=0, polarity=False)
    np.testing.assert_array_equal(merged[:, 0], whole.sum(axis=1))
    binary = io.events_to_frames(ev, (64, 48), dt=7_000, steps=25, t0=0, binary=True)
    np.testing.assert_array_equal(binary, (whole > 0).astype(np.float32))
    # steps bins spanning the recording when no dt is given: every event counted once
    assert io.events_to_frames(ev, (64, 48), steps=8).sum() == len(ev)


def test_frames_refuse_events_off_the_sensor():
    ev = random_events(100, width=64)
    with pytest.raises(TalonError, match=r"outside the 32x48 sensor"):
        io.events_to_frames(ev, (32, 48), dt=1000)
    with pytest.raises(TalonError, match="give dt"):
        io.events_to_frames(iter([ev]), (64, 48))


def test_encode_dispatch():
    x = np.array([[0.2, 0.9]], np.float32)
    assert io.encode(x, "direct", 3).shape == (3, 1, 2)
    np.testing.assert_array_equal(io.encode(x, "latency", 6), io.latency_encode(x, 6))
    with pytest.raises(TalonError, match="unknown encoding 'poisson'"):
        io.encode(x, "poisson", 3)


def test_frames_keep_every_microsecond_of_huge_timestamps():
    base = 2**62
    ev = io.make_events(x=[0, 0, 0], y=[0, 0, 0], t=[base + 1, base + 3, base + 5], p=[1, 1, 1])
    assert io.events_to_frames(ev, (1, 1), dt=2, steps=3)[:, 1, 0, 0].tolist() == [1, 1, 1]
    assert io.events_to_frames(ev, (1, 1), steps=3)[:, 1, 0, 0].tolist() == [1, 1, 1]


def test_frames_of_unsorted_events_count_every_event():
    ev = io.make_events(x=[0, 0, 0], y=[0, 0, 0], t=[50, 10, 30], p=[1, 1, 1])
    frames = io.events_to_frames(ev, (1, 1), dt=10)
    assert frames.sum() == 3 and frames[:, 1, 0, 0].tolist() == [1, 0, 1, 0, 1]
    with pytest.raises(TalonError, match="not in time order"):
        io.events_to_frames([ev[:1], ev[1:]], (1, 1), dt=10, steps=5)


@pytest.mark.parametrize("p, match", [(-1, r"polarit.*\[-1\]"), (2, r"polarit.*\[2\]")])
def test_frames_refuse_polarities_other_than_0_1(p, match):
    ev = np.array([(0, 0, 0, p)], dtype=[("x", int), ("y", int), ("t", int), ("p", int)])
    with pytest.raises(TalonError, match=match):
        io.events_to_frames(ev, (2, 2), dt=1)
