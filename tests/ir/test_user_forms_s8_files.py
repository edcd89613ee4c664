"""Foreign and hostile .t1c files, as other writers make them (docs/format.md, "Reading rules").

The existing SDK's samples (/work/shared/compat) are loaded, re-written in every storage form, exported
to NIR where NIR has the primitives (checked with the `nir` package's own reader) and run through the
command line. The hostile files are made here with h5py the way a buggy third-party writer would: types
h5py reads as integers that are not numbers (enums, bitfields), flags and metadata of the wrong kind,
shapes that do not fit 64 bits, stale shape caches, lossy dtypes, files that are not models at all.
References are h5py's and nir's readings of the same bytes, never TALON's.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import talon.ir as ir
from talon.errors import BackendError, TalonError, TalonFormatError
from talon.ir.format import TalonFormatWarning
from talon.sdk.fingerprint import fingerprint_graph

COMPAT = Path(__file__).resolve().parents[2].parent / "shared" / "compat"
SAMPLES = sorted(p.stem for p in COMPAT.glob("*.t1c")) if COMPAT.is_dir() else []
needs_compat = pytest.mark.skipif(not SAMPLES, reason=f"existing-SDK sample files not found at {COMPAT}")
STR = h5py.string_dtype("utf-8")
NODES = "graph/nodes/"
# Samples whose every primitive NIR has; the others name the first node it has not.
NIR_EXPORTABLE = {"conv1d", "if_neuron", "mlp_lif", "recurrent", "sepconv", "spiking_affine"}
RUNNABLE = [s for s in SAMPLES if s != "all_primitives"]  # that one is a storage test, not a model


def _cli(*args: object) -> tuple[int, str, str]:
    from talon.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _one_line_error(code: int, err: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("talon: error:"), err


def _sdk_file(tmp_path: Path, patch, name: str = "m.t1c", sample: str = "mlp_lif") -> Path:
    """The existing SDK's mlp_lif sample, edited with h5py by `patch(f)` (no seal: as that SDK writes)."""
    p = tmp_path / name
    shutil.copy(COMPAT / f"{sample}.t1c", p)
    p.chmod(0o644)
    with h5py.File(p, "r+") as f:
        patch(f)
    return p


def _replace(f: h5py.File, path: str, data, **kw) -> None:
    del f[path]
    f.create_dataset(path, data=data, **kw)


# ----------------------------------------------------------------------------------------------------
# The existing SDK's samples: every storage form, fingerprints, NIR, the command line
# ----------------------------------------------------------------------------------------------------

@needs_compat
@pytest.mark.parametrize("name", SAMPLES)
def test_sample_rewritten_in_every_storage_form_is_the_same_model(name, tmp_path):
    g = ir.read(COMPAT / f"{name}.t1c")
    print_ = fingerprint_graph(g)
    for i, kw in enumerate([{"compression": "gzip", "compression_level": 1}, {"compression": "lzf"}, {"integer_arrays": False}]):
        p = tmp_path / f"{i}.t1c"
        ir.write(p, g, **kw)
        back = ir.read(p)
        assert back == g, kw
        assert fingerprint_graph(back) == print_, kw
        # h5py reads the same field bytes as the SDK's file holds (the reference is h5py, not TALON)
        with h5py.File(COMPAT / f"{name}.t1c", "r") as src, h5py.File(p, "r") as out:
            for node in src["graph/nodes"]:
                for field, ds in src["graph/nodes"][node].items():
                    if isinstance(ds, h5py.Dataset) and ds.dtype.kind == "f" and field in out["graph/nodes"][node]:
                        np.testing.assert_array_equal(out["graph/nodes"][node][field][()], ds[()])


@needs_compat
@pytest.mark.parametrize("name", SAMPLES)
def test_sample_exports_to_nir_as_the_nir_package_reads_it_or_names_the_node(name, tmp_path):
    nir = pytest.importorskip("nir")
    g = ir.read(COMPAT / f"{name}.t1c")
    p = tmp_path / f"{name}.nir"
    if name not in NIR_EXPORTABLE:
        with pytest.raises(TalonError) as info:
            ir.write(p, g)
        assert "node '" in str(info.value) or "graph" in str(info.value)
        assert not p.exists() and list(tmp_path.iterdir()) == []  # nothing half-written
        return
    ir.write(p, g)
    ng = nir.read(p)  # the NIR package's own reader
    with h5py.File(COMPAT / f"{name}.t1c", "r") as src:
        for node, grp in src["graph/nodes"].items():
            if "weight" in grp and node in ng.nodes:
                np.testing.assert_array_equal(np.asarray(ng.nodes[node].weight).reshape(grp["weight"].shape), grp["weight"][()])
        edges = list(zip([s.decode() for s in src["graph/edges/src"][()]], [d.decode() for d in src["graph/edges/dst"][()]]))
    assert sorted(ng.edges) == sorted(edges)


@needs_compat
@pytest.mark.parametrize("name", RUNNABLE)
def test_sample_simulates_and_analyzes_on_the_command_line(name):
    path = COMPAT / f"{name}.t1c"
    for command in (("simulate", "--steps", "3"), ("analyze",), ("lint",)):
        code, out, err = _cli(command[0], path, *command[1:])
        assert code == 0, (command, err)
        assert "Traceback" not in out + err


# ----------------------------------------------------------------------------------------------------
# Numbers that are not numbers, flags and groups of the wrong kind
# ----------------------------------------------------------------------------------------------------

def _bitfield(f: h5py.File, path: str, shape: tuple) -> None:
    del f[path]
    parent, name = path.rsplit("/", 1)
    h5py.h5d.create(f[parent].id, name.encode(), h5py.h5t.STD_B8LE.copy(), h5py.h5s.create_simple(shape))


HOSTILE = {
    # h5py reads enums and bitfields as integers: they hold labels and bit patterns
    "weight_enum": (lambda f: _replace(f, NODES + "fc1/weight", np.ones((8, 4), "i1"), dtype=h5py.enum_dtype({"LOW": 0, "HIGH": 1}, basetype="i1")),
                    ["'fc1'", "'weight'", "enum (HIGH, LOW)"]),
    "weight_bitfield": (lambda f: _bitfield(f, NODES + "fc1/weight", (8, 4)), ["'fc1'", "'weight'", "bitfield"]),
    "metadata_enum": (lambda f: f["graph/metadata"].create_dataset("mode", data=np.int8(1), dtype=h5py.enum_dtype({"A": 0, "B": 1}, basetype="i1")),
                      ["metadata/mode", "enum"]),
    "shape_uint64": (lambda f: _replace(f, NODES + "input/shape", np.array([2**64 - 1], np.uint64)), ["'input'", "'shape'", "64-bit"]),
    # allow_cycles is one bool (the existing SDK writes an HDF5 bool enum)
    "allow_cycles_text": (lambda f: f["graph"].create_dataset("allow_cycles", data="yes", dtype=STR), ["'allow_cycles'", "single bool"]),
    "allow_cycles_int": (lambda f: f["graph"].create_dataset("allow_cycles", data=2), ["'allow_cycles'", "single bool"]),
    "allow_cycles_array": (lambda f: f["graph"].create_dataset("allow_cycles", data=np.array([True, False])), ["'allow_cycles'", "single bool"]),
    "metadata_dataset": (lambda f: (f["graph"].__delitem__("metadata"), f["graph"].create_dataset("metadata", data=3)), ["'metadata'", "group"]),
    # versions: ASCII digits, a few of them
    "version_fullwidth": (lambda f: _replace(f, "version", "０.０.１", dtype=STR), ["invalid format version"]),
    "version_5000_digits": (lambda f: _replace(f, "version", "0." + "9" * 5000, dtype=STR), ["invalid format version", "..."]),
    # TALON's shape cache, written wrong by another tool
    "shapes_negative": (lambda f: f["graph"].attrs.create("talon_shapes", '{"fc1": [[[4]], [[-8]]]}', dtype=STR), ["talon_shapes", "[-8]"]),
    "shapes_float": (lambda f: f["graph"].attrs.create("talon_shapes", '{"fc1": [[[4]], [[8.5]]]}', dtype=STR), ["talon_shapes", "[8.5]"]),
    "shapes_deep": (lambda f: f["graph"].attrs.create("talon_shapes", "[" * 50000 + "]" * 50000, dtype=STR), ["talon_shapes", "nested too deeply"]),
}


@needs_compat
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_file_is_a_format_error_naming_the_fault(case, tmp_path):
    patch, needles = HOSTILE[case]
    p = _sdk_file(tmp_path, patch, f"{case}.t1c")
    with pytest.raises(TalonError) as info:
        ir.read(p)
    assert info.type is TalonFormatError, f"{info.type.__name__}: {info.value}"
    msg = str(info.value)
    assert p.name in msg and all(n in msg for n in needles), msg
    assert len(msg) < 400, msg
    code, _, err = _cli("analyze", p)
    _one_line_error(code, err)


@needs_compat
def test_a_bool_allow_cycles_false_on_a_dag_reads(tmp_path):
    p = _sdk_file(tmp_path, lambda f: f["graph"].create_dataset("allow_cycles", data=False))
    assert ir.read(p) == ir.read(COMPAT / "mlp_lif.t1c")


@needs_compat
def test_the_recurrent_sample_keeps_its_bool_flag_and_cycle(tmp_path):
    g = ir.read(COMPAT / "recurrent.t1c")
    with h5py.File(COMPAT / "recurrent.t1c", "r") as f:
        assert f["graph/allow_cycles"].dtype == np.bool_ and bool(f["graph/allow_cycles"][()])
    assert not g.is_dag
    p = tmp_path / "r.t1c"
    ir.write(p, g)
    with h5py.File(p, "r") as f:
        assert bool(f["graph/allow_cycles"][()])


# ----------------------------------------------------------------------------------------------------
# Values the node's dtype cannot hold exactly: read, with a warning that says so
# ----------------------------------------------------------------------------------------------------

@needs_compat
def test_float64_weights_that_float32_rounds_warn(tmp_path):
    with h5py.File(COMPAT / "mlp_lif.t1c", "r") as f:
        w32 = f[NODES + "fc1/weight"][()]
    w64 = w32.astype(np.float64) + 1e-12  # not a float32 value
    p = _sdk_file(tmp_path, lambda f: _replace(f, NODES + "fc1/weight", w64))
    with pytest.warns(TalonFormatWarning, match=r"'fc1'.*float64 values do not all fit float32 exactly"):
        g = ir.read(p)
    np.testing.assert_array_equal(g.nodes["fc1"].weight, w64.astype(np.float32))


@needs_compat
@pytest.mark.parametrize("dtype", [np.float64, np.float16, ">f4", np.int16])
def test_weights_of_another_dtype_that_float32_holds_exactly_read_silently(dtype, tmp_path):
    w = (np.arange(32).reshape(8, 4) - 16).astype(dtype)
    p = _sdk_file(tmp_path, lambda f: _replace(f, NODES + "fc1/weight", w))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = ir.read(p)
    np.testing.assert_array_equal(g.nodes["fc1"].weight, np.asarray(w, np.float64))


@needs_compat
def test_int64_weights_beyond_float32_precision_warn(tmp_path):
    p = _sdk_file(tmp_path, lambda f: _replace(f, NODES + "fc1/weight", np.full((8, 4), 2**40 + 1, np.int64)))
    with pytest.warns(TalonFormatWarning, match="int64 values do not all fit float32"):
        ir.read(p)


# ----------------------------------------------------------------------------------------------------
# Stale shape caches: another tool edited a field of a TALON file
# ----------------------------------------------------------------------------------------------------

def test_shapes_left_stale_by_another_tool_are_recomputed_with_a_warning(tmp_path):
    g = ir.Graph({"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=np.ones((3, 4), np.float32), bias=np.zeros(3, np.float32)),
                  "output": ir.Output()}, [("input", "fc"), ("fc", "output")])
    p = tmp_path / "t.t1c"
    ir.write(p, g)
    with h5py.File(p, "r+") as f:  # a tool that does not know TALON's talon_shapes attribute
        del f["graph/nodes/fc/weight"], f["graph/nodes/fc/bias"]
        f["graph/nodes/fc/weight"] = np.ones((5, 4), np.float32)
        f["graph/nodes/fc/bias"] = np.zeros(5, np.float32)
    raw = bytearray(p.read_bytes())
    raw[:8] = bytes(8)  # its edit voids TALON's seal (docs/format.md)
    p.write_bytes(bytes(raw))
    with pytest.warns(TalonFormatWarning, match=r"node 'fc': stored shapes \[\(4,\)\] -> \[\(3,\)\] disagree.*\[\(5,\)\]"):
        back = ir.read(p)
    assert back.nodes["fc"].output_shapes == [(5,)] and back.nodes["output"].input_shapes == [(5,)]


def test_a_sealed_file_is_read_without_shape_inference(tmp_path, monkeypatch):
    # the seal covers the stored shapes as TALON wrote them: reading trusts them (the cache's purpose)
    g = ir.Graph({"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=np.ones((3, 4), np.float32), bias=np.zeros(3, np.float32)),
                  "output": ir.Output()}, [("input", "fc"), ("fc", "output")])
    p = tmp_path / "s.t1c"
    ir.write(p, g)

    def no_inference(self, *a, **k):
        raise AssertionError("shapes inferred on reading a sealed file")

    monkeypatch.setattr(ir.Graph, "infer_shapes", no_inference)
    back = ir.read(p)
    assert back.nodes["fc"].output_shapes == [(3,)] and back.nodes["output"].input_shapes == [(3,)]


def test_stored_shapes_of_a_graph_that_cannot_be_shaped_are_kept(tmp_path):
    g = ir.Graph({"input": ir.Input(shape=(4,)), "fc": ir.Affine(weight=np.ones((3, 5), np.float32), bias=np.zeros(3, np.float32)),
                  "output": ir.Output()}, [("input", "fc"), ("fc", "output")])
    p = tmp_path / "u.t1c"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ir.write(p, g)
        back = ir.read(p)
    assert back == g and back.nodes["fc"].output_shapes is None


# ----------------------------------------------------------------------------------------------------
# Files that are not models, writes that are refused
# ----------------------------------------------------------------------------------------------------

def test_an_hdf5_file_that_is_not_a_model_says_so(tmp_path):
    p = tmp_path / "weights.t1c"
    with h5py.File(p, "w") as f:  # e.g. a Keras/h5py weights file given by mistake
        f.create_group("model_weights")
        f.create_dataset("x", data=np.ones(3))
    with pytest.raises(TalonFormatError, match=r"weights.t1c: an HDF5 file, but not a TALON model.*'model_weights', 'x'"):
        ir.read(p)
    code, _, err = _cli("lint", p)
    _one_line_error(code, err)


def test_a_zero_byte_file_says_it_is_empty(tmp_path):
    p = tmp_path / "z.t1c"
    p.touch()
    for call in (ir.read, ir.read_version):
        with pytest.raises(TalonFormatError, match=r"z.t1c is empty \(0 bytes\)"):
            call(p)
    code, _, err = _cli("simulate", p)
    _one_line_error(code, err)


@pytest.mark.parametrize("kw", [{"compression": "lzf", "compression_level": 3}, {"compression_level": 4},
                                {"compression": "gzip", "compression_level": 99}, {"compression": "gzip", "compression_level": "9"},
                                {"compression": "gzip", "compression_level": True}])
def test_a_compression_level_that_would_be_ignored_or_is_invalid_is_refused(kw, tmp_path):
    g = ir.Graph({"input": ir.Input(shape=(2,)), "output": ir.Output()}, [("input", "output")])
    for name in ("c.t1c", "c.nir"):
        with pytest.raises(TalonFormatError, match="compression_level"):
            ir.write(tmp_path / name, g, **kw)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_file_without_read_permission_is_a_format_error(tmp_path):
    p = tmp_path / "locked.t1c"
    ir.write(p, ir.Graph({"input": ir.Input(shape=(2,)), "output": ir.Output()}, [("input", "output")]))
    p.chmod(0)
    try:
        with pytest.raises(TalonFormatError, match="cannot read locked.t1c.*Permission denied"):
            ir.read(p)
        code, _, err = _cli("analyze", p)
        _one_line_error(code, err)
    finally:
        p.chmod(0o644)


@needs_compat
def test_read_version_of_a_nir_file_under_any_name_says_nir(tmp_path):
    pytest.importorskip("nir")
    g = ir.read(COMPAT / "mlp_lif.t1c")
    p = tmp_path / "m.nir"
    ir.write(p, g)
    with h5py.File(p, "r") as f:
        version = f["version"][()].decode()
    shutil.copy(p, tmp_path / "renamed.t1c")
    for path in (p, tmp_path / "renamed.t1c"):
        assert ir.read_version(path) == f"NIR {version}"
        assert ir.read(path) == ir.read(p)
    code, out, err = _cli("info", tmp_path / "renamed.t1c")
    assert code == 0 and f"format NIR {version}" in out, err


def test_writing_below_a_file_names_the_file_not_a_missing_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    g = ir.Graph({"input": ir.Input(shape=(2,)), "output": ir.Output()}, [("input", "output")])
    with pytest.raises(TalonFormatError, match="folder '.*notes.txt' is a file, not a folder"):
        ir.write(tmp_path / "notes.txt" / "m.t1c", g)


def test_an_input_shape_no_memory_holds_is_a_backend_error_not_a_torch_one(tmp_path):
    g = ir.Graph({"input": ir.Input(shape=(2**62,)), "output": ir.Output()}, [("input", "output")])
    p = tmp_path / "big.t1c"
    ir.write(p, g)
    code, out, err = _cli("analyze", p)  # static analysis needs no memory for it
    assert code == 0, err
    from talon.backend.stimulus import default_stimulus

    with pytest.raises(BackendError, match=r"Input #0 \(shape \(4611686018427387904,\)"):
        default_stimulus((2**62,))
    code, _, err = _cli("simulate", p)
    _one_line_error(code, err)
    assert "Input #0" in err


def test_per_neuron_parameters_broadcast_to_shapes_of_more_elements_than_memory_addresses():
    shape = (2**31, 2**31, 4)
    lif = ir.LIF(tau=np.array(5.0), r=np.array(1.0), v_leak=np.array(0.0), v_threshold=np.ones((1, 4)))
    assert lif.infer_output_shapes([shape]) == [shape]
    bad = ir.LIF(tau=np.array(5.0), r=np.array(1.0), v_leak=np.array(0.0), v_threshold=np.ones(3))
    with pytest.raises(TalonError, match=r"v_threshold has shape \(3,\), which does not broadcast"):
        bad.infer_output_shapes([shape])


# ----------------------------------------------------------------------------------------------------
# Any damage to an existing SDK file: the command line gives one line, never a traceback
# ----------------------------------------------------------------------------------------------------

@needs_compat
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_sdk_file_gives_the_cli_one_line_or_a_result(data, tmp_path):
    raw = bytearray((COMPAT / "mlp_lif.t1c").read_bytes())
    # Past the superblock (which HDF5 checks itself; the read fuzz of test_untrusted covers those bytes),
    # in the object headers, heaps and arrays where a buggy writer's damage lands.
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        i = data.draw(st.integers(96, len(raw) - 1), label="offset")
        raw[i] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    if data.draw(st.booleans(), label="truncate"):
        raw = raw[: data.draw(st.integers(96, len(raw)), label="length")]
    p = tmp_path / "d.t1c"
    p.write_bytes(bytes(raw))
    command = data.draw(st.sampled_from(["analyze", "lint", "inspect"]), label="command")
    code, out, err = _cli(command, p)
    assert "Traceback" not in out + err
    if code == 2:
        _one_line_error(code, err)
    else:
        assert code in (0, 1), err
