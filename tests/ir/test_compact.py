"""Compact storage in .t1c files: integer forms of quantized arrays, JSON metadata entries, and the
existing SDK's flat per-neuron arrays read as the neuron layout they are (talon.ir._compact, _metajson)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon import ir
from talon.errors import TalonFormatError
from talon.ir import Graph
from talon.ir._compact import _grid, integer_form, stored_nbytes
from talon.sdk import analyze_graph, quantize_weights


def _mlp(w: np.ndarray, meta: dict | None = None) -> Graph:
    g = Graph({"input": ir.Input(shape=(w.shape[1],)), "fc": ir.Affine(weight=w, bias=np.zeros(w.shape[0], w.dtype)), "output": ir.Output()},
              [("input", "fc"), ("fc", "output")], metadata=meta or {})
    return g


def _unsealed(path):
    """The same file read from its HDF5 objects alone (no index, no mirror)."""
    data = bytearray(path.read_bytes())
    data[:8] = bytes(8)
    out = path.with_name("unsealed_" + path.name)
    out.write_bytes(bytes(data))
    return out


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# -- integer forms ---------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,bits,stored", [(np.float32, 8, np.int8), (np.float32, 12, np.int16), (np.float32, 4, np.int8)])
def test_power_of_two_grids_are_stored_as_integers_and_read_back_bit_for_bit(tmp_path, dtype, bits, stored):
    rng = np.random.default_rng(bits)
    w = rng.normal(0, 0.2, (40, 30)).astype(dtype)
    g = quantize_weights(_mlp(w), bits, power_of_two=True)
    path = tmp_path / "q.t1c"
    ir.write(path, g)
    with h5py.File(path, "r") as f:
        ds = f["graph/nodes/fc/weight"]
        assert ds.dtype == stored and ds.shape == (40, 30)
        assert ds.attrs["talon_float_dtype"] == np.dtype(dtype).str.encode()
    assert ir.read_version(path) == "0.2.0"
    for p in (path, _unsealed(path)):  # the mirror and the HDF5 objects agree
        back = ir.read(p)
        assert _same_bits(back.nodes["fc"].weight, g.nodes["fc"].weight)
        assert back == g


def test_eight_bit_weights_cost_one_byte_in_the_file_and_in_analyze(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.1, (128, 64)).astype(np.float32)
    g, q = _mlp(w), quantize_weights(_mlp(w), 8, power_of_two=True)
    pf, pq = tmp_path / "f.t1c", tmp_path / "q.t1c"
    ir.write(pf, g)
    ir.write(pq, q)
    assert pf.stat().st_size - pq.stat().st_size >= 2.95 * w.size  # 4 bytes a weight became 1
    sf, sq = analyze_graph(g), analyze_graph(q)
    assert sf.total_params == sq.total_params == w.size + 128
    assert sf.total_bytes == 4 * sf.total_params
    assert sq.total_bytes == w.size + 4 * 128  # the weights as int8, the float32 bias as it is


@pytest.mark.parametrize("case", ["negative zero", "nan", "off grid", "too small", "int array"])
def test_arrays_without_an_exact_integer_form_stay_as_they_are(tmp_path, case):
    w = np.ldexp(np.arange(-150, 150, dtype=np.float64), -3).astype(np.float32).reshape(10, 30)
    if case == "negative zero":
        w[0, 0] = -0.0
    elif case == "nan":
        w[0, 0] = np.nan
    elif case == "off grid":
        w[0, 0] = 0.1
    elif case == "too small":
        w = w[:5, :10]
    assert integer_form(w) is None if case != "int array" else integer_form(w) is not None
    if case == "int array":
        assert integer_form(w.astype(np.int32)) is None
        return
    path = tmp_path / "g.t1c"
    ir.write(path, _mlp(w))
    with h5py.File(path, "r") as f:
        assert f["graph/nodes/fc/weight"].dtype == np.float32
    assert ir.read_version(path) == "0.1.0"
    assert _same_bits(ir.read(path).nodes["fc"].weight, w)
    assert stored_nbytes(w) == w.nbytes


def test_integer_arrays_false_writes_floats_for_the_existing_sdk(tmp_path):
    w = np.ldexp(np.arange(-150, 150, dtype=np.float64), -7).astype(np.float32).reshape(10, 30)
    path = tmp_path / "g.t1c"
    ir.write(path, _mlp(w), integer_arrays=False)
    with h5py.File(path, "r") as f:
        assert f["graph/nodes/fc/weight"].dtype == np.float32 and not f["graph/nodes/fc/weight"].attrs
    assert ir.read_version(path) == "0.1.0"
    assert _same_bits(ir.read(path).nodes["fc"].weight, w)


@settings(max_examples=40, deadline=None)
@given(k=st.lists(st.integers(-127, 127), min_size=256, max_size=400), f=st.integers(-20, 40), f64=st.booleans())
def test_integer_form_round_trips_any_grid(k, f, f64):
    # float64 arrays too (the neuron constants' dtype may be float64; Affine weights are float32)
    arr = np.ldexp(np.array(k, np.float64), -f).astype(np.float64 if f64 else np.float32)
    form = integer_form(arr)
    assert form is not None and form[0].dtype == np.int8
    ints, exp = form
    assert _same_bits(np.ldexp(ints.astype(np.float64), -exp).astype(arr.dtype), arr)


@settings(max_examples=80, deadline=None)
@given(k=st.lists(st.integers(-40000, 40000), min_size=257, max_size=600), f=st.integers(-5, 30),
       bad=st.sampled_from([None, "late_fraction", "late_peak", "nan", "negzero", "early_fraction"]), f64=st.booleans())
def test_the_sample_check_refuses_only_arrays_without_an_integer_form(k, f, bad, f64):
    """integer_form first tries the leading values; its answer equals the full check's on the whole array,
    whatever the rest holds (values off the grid, a larger peak, NaN or -0.0 after the sample)."""
    dtype = np.float64 if f64 else np.float32
    a = np.ldexp(np.array(k, np.float64), -f)
    if bad == "late_fraction":
        a[-1] += 2.0 ** (-f - 40)
    elif bad == "late_peak":
        a[-1] = 2.0 ** (40 - f)
    elif bad == "nan":
        a[-1] = np.nan
    elif bad == "negzero":
        a[-1] = -0.0
    elif bad == "early_fraction":
        a[0] += 2.0 ** (-f - 40)
    a = a.astype(dtype)
    got, full = integer_form(a), _grid(a, a.dtype.itemsize)
    assert (got is None) == (full is None)
    if got is not None:
        assert got[1] == full[1] and got[0].dtype == full[0].dtype and np.array_equal(got[0], full[0])


@settings(max_examples=150, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.float16, np.float32, np.float64]), n=st.integers(256, 300))
def test_the_first_values_refuse_only_arrays_without_an_integer_form(data, dtype, n):
    """integer_form refuses from its first few values as Python floats (_off_every_grid) before any sample
    check: whatever their bits (subnormals, -0.0, NaN, infinities, values on a grid or just off one), its
    answer equals the full check's on the whole array."""
    bits = {np.float16: np.uint16, np.float32: np.uint32, np.float64: np.uint64}[dtype]
    width = 8 * np.dtype(dtype).itemsize
    head = np.array(data.draw(st.lists(st.integers(0, 2**width - 1), min_size=4, max_size=4), label="first bits"), dtype=bits).view(dtype)
    k = data.draw(st.integers(-127, 127), label="k")
    f = data.draw(st.integers(-20, 30), label="f")  # f < 0: values with large powers of two
    with np.errstate(over="ignore"):  # float16 overflows to inf: an array without an integer form
        grid = np.full(n, np.ldexp(float(k), -f), dtype=dtype)  # the rest: one value on a grid
    if data.draw(st.booleans(), label="head on the grid"):
        with np.errstate(over="ignore"):  # float16 overflows to inf: one more value without an integer form
            ks = st.lists(st.integers(-127, 127), min_size=4, max_size=4) | st.lists(st.integers(-2**31 + 1, 2**31 - 1), min_size=4, max_size=4)
            head = (np.ldexp(np.array(data.draw(ks, label="head k"), np.float64), -f)).astype(dtype)
    arr = np.concatenate([head, grid[4:]])
    with np.errstate(all="ignore"):
        got, full = integer_form(arr), _grid(arr, arr.dtype.itemsize)
    assert (got is None) == (full is None)
    if got is not None:
        assert got[1] == full[1] and np.array_equal(got[0], full[0]) and got[0].dtype == full[0].dtype


def test_a_damaged_integer_form_is_a_format_error(tmp_path):
    w = np.ldexp(np.arange(-150, 150, dtype=np.float64), -5).astype(np.float32).reshape(10, 30)
    path = tmp_path / "g.t1c"
    ir.write(path, _mlp(w))
    bad = _unsealed(path)
    with h5py.File(bad, "r+") as f:
        f["graph/nodes/fc/weight"].attrs["talon_float_dtype"] = np.bytes_(b"<i8")
    with pytest.raises(TalonFormatError, match="'fc'.*integer form"):
        ir.read(bad)


# -- metadata entries as JSON ---------------------------------------------------------------------
def test_large_metadata_entries_are_one_json_dataset_and_read_back_exactly(tmp_path):
    entry = {
        "version": 1, "name": "mesh", "ratio": 0.1, "nan": float("nan"), "none": None, "flag": True,
        "cores": {"row": np.array([0, 0, 1], np.int64), "load": np.array([0.5, -0.0, 1e-300]), "used": np.array([True, False])},
        "layers": ["a", "b"], "pair": (1, 2.5), "empty": [], "f32": np.float32(0.1), "nested": [{"x": 1}, [2, "y"]],
        "scalar_array": np.array(3.0), "big_list": list(range(100)),
    }
    w = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    g = _mlp(w, {"talon_mapping": entry, "small": {"a": 1}, "text": "hello", "short": {"a": [1, 2], "b": None, "c": "x"}})
    path = tmp_path / "m.t1c"
    ir.write(path, g)
    with h5py.File(path, "r") as f:
        ds = f["graph/metadata/talon_mapping"]
        assert isinstance(ds, h5py.Dataset) and ds.attrs["talon_kind"] == "json+zlib"  # 0.9 KB of JSON, compressed
        assert f["graph/metadata/short"].attrs["talon_kind"] == "json"  # too short to compress
        assert isinstance(f["graph/metadata/small"], h5py.Group)  # one value: kept as a group
    a, b = ir.read(path), ir.read(_unsealed(path))
    for back in (a, b):
        got = back.metadata["talon_mapping"]
        assert got["version"] == 1 and got["name"] == "mesh" and got["ratio"] == 0.1 and np.isnan(got["nan"])
        assert got["none"] is None and got["flag"] is True and got["layers"] == ["a", "b"] and got["pair"] == (1, 2.5)
        assert got["empty"] == [] and got["f32"] == float(np.float32(0.1)) and got["nested"] == [{"x": 1}, [2, "y"]]
        assert got["big_list"] == list(range(100)) and all(type(v) is int for v in got["big_list"])
        for key in ("row", "load", "used"):
            assert _same_bits(got["cores"][key], entry["cores"][key]), key
        assert isinstance(got["scalar_array"], np.ndarray) and got["scalar_array"].shape == ()
        assert back.metadata["small"] == {"a": 1} and back.metadata["text"] == "hello"
        assert back.metadata["short"] == {"a": [1, 2], "b": None, "c": "x"}
    assert list(a.metadata["talon_mapping"]) == list(entry)


def test_damaged_compressed_json_metadata_is_refused(tmp_path):
    w = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    path = tmp_path / "m.t1c"
    ir.write(path, _mlp(w, {"entry": {f"k{i}": i for i in range(200)}}))
    bad = _unsealed(path)
    with h5py.File(bad, "r+") as f:
        data = f["graph/metadata/entry"][()]
        assert f["graph/metadata/entry"].attrs["talon_kind"] == "json+zlib"
        data[len(data) // 2] ^= 0xFF
        f["graph/metadata/entry"][...] = data
    with pytest.raises(TalonFormatError, match="'entry'|JSON metadata"):
        ir.read(bad)


def test_inflating_json_metadata_is_bounded():
    import zlib

    from talon.ir._metajson import inflate

    packed = np.frombuffer(zlib.compress(b"[" + b"0," * 100_000 + b"0]", 9), dtype=np.uint8)
    with pytest.raises(TalonFormatError, match="expands beyond 1,000 bytes"):
        inflate(packed, 1000, TalonFormatError)
    assert inflate(packed, 10**6, TalonFormatError).startswith("[0,0")
