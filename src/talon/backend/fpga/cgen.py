"""C++ code pieces shared by the emitters and the top function: constant arrays, array partitions, the
exact-sum width check and Upsample's pixel map."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from talon.backend.descriptor import smallest_int_dtype
from talon.errors import BackendError
from talon.ir.node import get_node_class
from talon.sdk.fixed_point import exact_sum_bits

_CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t"}


def size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def c_array(name: str, a: np.ndarray, dims: tuple[int, ...] | None = None) -> str:
    """`static const T name[d0][d1]... = {...};` with the narrowest integer C type."""
    a = np.asarray(a).astype(np.int64)
    dt = smallest_int_dtype(a)
    dims = tuple(a.shape) if dims is None else dims
    flat = a.reshape(-1)
    lines, row = [], []
    for i, v in enumerate(flat.tolist()):
        row.append(str(int(v)))
        if len(row) == 16 or i == flat.size - 1:
            lines.append("    " + ", ".join(row) + ",")
            row = []
    body = "\n".join(lines)
    dims_s = "".join(f"[{d}]" for d in dims) if dims else "[1]"
    return f"static const {_CTYPE[dt.name]} {name}{dims_s} = {{\n{body}\n}};\n"


def check_wide_sum(name: str, in_bits: int, w_bits: int, fan_in: int) -> None:
    need = exact_sum_bits(in_bits, w_bits, fan_in)
    if need > 63:
        raise BackendError(f"node {name!r}: an exact sum needs {need} bits, more than the kernels' int64_t accumulator")


def partition_pragmas(var: str, dims: tuple[int, ...], lanes: int) -> list[str]:
    """`#pragma HLS ARRAY_PARTITION` lines that put any `lanes` consecutive (row-major) elements of `var` in
    separate banks, so that a kernel running `lanes` lanes (UNROLL factor) can read or write them in one
    cycle: dimensions are split from the innermost outwards, completely while the lanes span them, then
    cyclically by the lanes left. One lane needs no partition (the estimate's R >= work end)."""
    out: list[str] = []
    need = int(lanes)
    for d in range(len(dims) - 1, -1, -1):
        if need <= 1:
            break
        size = int(dims[d])
        if size <= 1:
            continue
        if need >= size:
            out.append(f"#pragma HLS ARRAY_PARTITION variable={var} complete dim={d + 1}")
            need = math.ceil(need / size)
        else:
            out.append(f"#pragma HLS ARRAY_PARTITION variable={var} cyclic factor={need} dim={d + 1}")
            need = 1
    return out


def upsample_map(name: str, params: dict[str, Any], hw_in: tuple[int, int], hw_out: tuple[int, int]) -> np.ndarray:
    """Input pixel index (h * W + w) read by every output pixel of an Upsample(nearest): the bridge
    runtime's own pixel map, which the simulator applies (torch's float32 rule at every dtype)."""
    from talon.bridge.modules import RuntimeContext, build_runtime

    node = get_node_class("Upsample")(**params)
    if node.mode != "nearest":
        raise BackendError(f"node {name!r}: Upsample mode {node.mode!r} has no fixed-point kernel; use mode='nearest'")
    index = build_runtime(node, RuntimeContext(name)).pixel_map(*hw_in)
    if tuple(index.shape) != tuple(hw_out):
        raise BackendError(f"node {name!r}: the runtime upsamples {hw_in} to {tuple(index.shape)}, the graph says {tuple(hw_out)}")
    return index.reshape(-1).numpy()
