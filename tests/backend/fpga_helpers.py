"""What the fpga backend tests (test_fpga.py, test_fpga_kernels.py) share: the g++ gate and the
comparisons of C-simulation results and hls4ml builds with the fixed-point simulator. The `fpga`
fixture itself lives in conftest.py."""

from __future__ import annotations

import contextlib
import io
import os
import re
from typing import Any

import numpy as np
import pytest
import torch

from talon import ir
from talon.backend import fpga as fpga_mod
from talon.backend import get_backend

HAS_GXX = fpga_mod.find_compiler() is not None
needs_gxx = pytest.mark.skipif(not HAS_GXX, reason="g++ not found: the C simulation cannot run")


def assert_same_words(a: Any, b: Any) -> None:
    """Two C-simulation results (CSimResult) hold the same integer words for every spike, membrane and output."""
    for kind in ("spikes", "membranes", "outputs"):
        for n, words in getattr(a, kind).items():
            assert np.array_equal(words, getattr(b, kind)[n]), (kind, n)


def top_source(project_dir: str | os.PathLike) -> str:
    """The generated top function of a project folder."""
    with open(os.path.join(project_dir, "firmware", "talon_top.cpp")) as f:
        return f.read()


def kernel_calls(top: str) -> dict[str, list[tuple[str, int]]]:
    """{identifier: [(kernel, LANES) of each of its kernel calls]} from a generated top: a node's section
    starts with the declaration of its buffer b_<id> (a ChannelSplit's: of its chunk buffers b_s<k>_<id>), and
    LANES is a kernel's last template argument."""
    out: dict[str, list[tuple[str, int]]] = {}
    ident = None
    for line in top.splitlines():
        m = re.match(r"    static int64_t b_(?:s\d+_)?(n_\w+)\[", line)
        if m:
            ident = m.group(1)
        m = re.match(r"    (k_\w+)<([^>]*)>\(", line)
        if m:
            out.setdefault(ident, []).append((m.group(1), int(m.group(2).split(",")[-1])))
    return out


def hls4ml_build(g: ir.Graph, x: torch.Tensor, out_dir: str | os.PathLike) -> tuple[Any, Any, Any]:
    """(compiled hls4ml model, fixed-point SimulationResult, descriptor) for an ANN-only graph whose plan is
    calibrated on `x` (T = 1, B, ...). Skips when hls4ml is not installed; hls4ml's chatter is silenced."""
    hls4ml = pytest.importorskip("hls4ml")
    from talon.backend.compile import build_descriptor
    from talon.backend.fpga import ir_to_hls4ml_config, ir_to_torch_ann

    sim = get_backend("cpu").simulate(g, x, mode="fixed")
    desc = build_descriptor(g, sim.fixed_point)
    with contextlib.redirect_stdout(io.StringIO()):
        model = hls4ml.converters.convert_from_pytorch_model(
            ir_to_torch_ann(desc), output_dir=str(out_dir), hls_config=ir_to_hls4ml_config(desc), backend="Vivado", part="xc7z020clg400-1"
        )
        model.compile()
    return model, sim, desc


def assert_hls4ml_output_is_the_simulators(y: np.ndarray, sim: Any, desc: Any) -> np.ndarray:
    """hls4ml's prediction `y` equals the fixed-point simulator's output word for word (a mismatch of at
    most one output LSB is reported first, as the likelier failure); returns the simulator's output."""
    want = sim.output[0].numpy()
    lsb = 2.0 ** -desc.nodes["out"]["out_format"][1]
    assert np.abs(y - want).max() <= lsb  # within the output precision; in practice identical:
    assert np.array_equal(y, want)
    return want
