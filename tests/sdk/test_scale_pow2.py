"""talon.sdk.fixed_point.scale_pow2 (x * 2**frac as a product by a normal power of two) is np.ldexp bit
for bit, so the integers quantize_to_ints gives hardware and the floats dequantize gives back are those
of the ldexp form: subnormal and overflowing results, signed zeros, ±inf, and fracs beyond the normal
range (np.ldexp there) included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from talon.sdk import fixed_point as fp

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.1, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -1.5e308,
           1e-310, 3.0000000000000004, float("inf"), -float("inf")]


def _reference_ints(x: np.ndarray, bits: int, frac) -> np.ndarray:  # quantize_to_ints as it was written
    hi = (1 << (bits - 1)) - 1
    scaled = np.ldexp(np.asarray(x, dtype=np.float64), np.asarray(frac, dtype=np.int64))
    return np.clip(np.rint(scaled), -hi, hi).astype(np.int64)


@pytest.mark.filterwarnings("ignore:overflow encountered")
@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SPECIAL) | st.floats(allow_nan=False, width=64), min_size=1, max_size=20),
       st.integers(-1100, 1100) | st.sampled_from([-1074, -1023, -1022, 1023, 1024, 0]), st.booleans())
def test_scale_pow2_is_ldexp(values, frac, numpy_int):
    x = np.array(values, dtype=np.float64)
    f = np.int64(frac) if numpy_int else frac
    got, want = fp.scale_pow2(x, f), np.ldexp(x, np.asarray(frac, dtype=np.int64))
    assert got.dtype == want.dtype and np.array_equal(got.view(np.int64), want.view(np.int64))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, width=32) | st.sampled_from([0.0, -0.0, 1e-45, 127.5, -127.5]), min_size=1, max_size=30),
       st.sampled_from([4, 8, 16, 24, 32]), st.integers(-40, 60), st.booleans())
def test_quantize_to_ints_is_the_ldexp_rule(values, bits, frac, per_channel):
    x = np.array(values, dtype=np.float32)
    f = np.full(x.shape, frac, np.int64) if per_channel else frac
    got = fp.quantize_to_ints(x, bits, f)
    assert got.dtype == np.int64 and np.array_equal(got, _reference_ints(x, bits, f))


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_dequantize_is_the_ldexp_form():
    from talon.backend.cpu.fixed_format import dequantize

    k = np.array([0, 1, -1, 127, -127, (1 << 52) + 1, -(1 << 40)], np.int64)
    for frac in (-1100, -30, -1, 0, 7, 30, 1060, 1100):
        for dtype in (np.float64, np.float32):
            want = np.ldexp(k.astype(np.float64), -frac).astype(dtype)
            got = dequantize(k, frac, dtype)
            assert got.dtype == want.dtype and np.array_equal(got.view(f"i{got.itemsize}"), want.view(f"i{want.itemsize}"))
