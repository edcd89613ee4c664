"""The end-to-end demo's two graph files (examples/end_to_end.py through talon.pipeline): their sizes.

The files are written by the demo's own `write_untrained_files` (its model, export, stamp and pipeline), untrained:
every stored array keeps its dtype and shape whatever the training, so the sizes are those of the trained
demo to a few bytes (only the compressed JSON of the mapping varies). docs/format.md breaks both files down
(benchmarks/t1c_bytes.py --demo --sdk-floor prints the table).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("snntorch")

from talon import ir  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ISSUE_FLOAT_FILE = 70_456  # the demo's float graph file when the 0.35 target was set (issue 15)


def _demo():
    spec = importlib.util.spec_from_file_location("end_to_end_demo", ROOT / "examples" / "end_to_end.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    return demo


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    graph, float_file, int8_file = _demo().write_untrained_files(tmp_path_factory.mktemp("demo"))
    return graph, Path(float_file), Path(int8_file)


def _array_bytes(path: Path) -> int:
    with h5py.File(path, "r") as f:
        total = 0

        def visit(_, obj):
            nonlocal total
            if isinstance(obj, h5py.Dataset) and obj.id.get_create_plist().get_layout() == h5py.h5d.CONTIGUOUS:
                total += obj.id.get_storage_size()

        f.visititems(visit)
    return total


def test_demo_8bit_file_against_the_float_file(demo_files):
    graph, float_file, int8_file = demo_files
    f_size, q_size = float_file.stat().st_size, int8_file.stat().st_size
    # The arrays: 9,472 weights at 4 bytes, then at 1 byte (integers with their power-of-two scale); 138 float32 biases.
    assert _array_bytes(float_file) == 9_472 * 4 + 138 * 4 and _array_bytes(int8_file) == 9_472 + 138 * 4
    with h5py.File(int8_file, "r") as f:
        w = f["graph/nodes/fc1/weight"]
        assert w.dtype == np.int8 and "talon_pow2_frac" in w.attrs
    # Besides their arrays, each file holds ~10-12 KB that do not shrink with the weights: the sealed index's
    # 512-byte user block, HDF5's 4 KiB string heap collection (the existing SDK's variable-length strings),
    # ~80-250 bytes per HDF5 object (one per field, the existing SDK's layout), and in the 8-bit file the
    # mapping. Measured 9,786 and 11,688 bytes; the bounds leave room for the stamp's version strings.
    assert f_size - _array_bytes(float_file) <= 10_240
    assert q_size - _array_bytes(int8_file) <= 12_288
    # So the 8-bit file is 0.45 of the float file (0.452 measured), below 0.35 of the float file when the target
    # was set, and not 0.35 of today's: the existing SDK's layout alone needs 0.39 (docs/format.md).
    assert q_size / f_size <= 0.46, (q_size, f_size)
    assert q_size <= 0.35 * ISSUE_FLOAT_FILE
    # Both read back exactly; the float graph is the exported one.
    assert ir.read(float_file) == graph
    back = ir.read(int8_file)
    with h5py.File(int8_file, "r") as f:
        for name in ("fc1", "fc2"):
            ints, frac = f[f"graph/nodes/{name}/weight"][()], int(f[f"graph/nodes/{name}/weight"].attrs["talon_pow2_frac"])
            assert type(back.nodes[name]).__name__ == "SpikingAffine" and back.nodes[name].weight.dtype == np.float32
            assert np.array_equal(back.nodes[name].weight, np.ldexp(ints.astype(np.float64), -frac).astype(np.float32))
