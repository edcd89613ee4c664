"""Generate a Vitis/Vivado HLS C++ project from a HardwareDescriptor (docs/fpga.md).

Everything is derived from the descriptor's integers and formats (the quantised graph), never from a
torch model. Output is deterministic: the same descriptor and options give byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon.backend.descriptor import HardwareDescriptor, smallest_int_dtype
from talon.backend.fpga import kernels as K
from talon.backend.fpga.estimate import align_passes, aligned_fraction, delay_length, sepconv_z_bits, split_chunks
from talon.backend.fpga.names import c_identifiers, c_string
from talon.backend.fpga.parts import PartPreset, resolve_part
from talon.errors import BackendError
from talon.ir.node import get_node_class
from talon.sdk.fixed_point import exact_sum_bits

PROJECT_VERSION = 1
MANIFEST = "talon_project.json"
_CTYPE = {"int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t"}
_MODES = {"none": 0, "subtract": 1, "zero": 2, "zero_post": 3}
SUPPORTED = ("Input", "Affine", "Linear", "SpikingAffine", "Conv2d", "MaxPool2d", "AvgPool2d", "SumPool2d", "ReLU",
             "Threshold", "Flatten", "Output", "Dropout", "Skip", "Concat", "Upsample", "LIF", "IF", "CubaLIF", "LI",
             "Integrator", "Scale", "Conv1d", "SepConv2d", "ChannelSplit", "Delay", "HybridRegion")  # fmt: skip
#: `static` array declarations in generated code: name and dimensions (what the partition pragmas apply to)
_DECL = re.compile(r"static (?:const )?\w+ (\w+)((?:\[\d+\])+)")


@dataclass
class FPGAProject:
    """A generated HLS project: its folder, the files written (relative paths, sorted), the manifest
    (ports, formats, part, estimates) and the estimates."""

    path: str
    files: list[str]
    manifest: dict[str, Any]
    estimates: Any = None
    descriptor: HardwareDescriptor | None = field(default=None, repr=False)

    @property
    def top(self) -> str:
        return self.manifest["top"]

    def __str__(self) -> str:
        return f"HLS project {self.path} ({len(self.files)} files, top {self.top}, part {self.manifest['part']['part']})"


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _c_array(name: str, a: np.ndarray, dims: tuple[int, ...] | None = None) -> str:
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


def _check_wide_sum(name: str, in_bits: int, w_bits: int, fan_in: int) -> None:
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


def _upsample_map(name: str, params: dict[str, Any], hw_in: tuple[int, int], hw_out: tuple[int, int]) -> np.ndarray:
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


def generate(desc: HardwareDescriptor, out_dir: str | os.PathLike, *, part: str | PartPreset | None = None, top: str = "talon_top",
             reuse_factor: int | str = "auto", clock_mhz: float | None = None) -> FPGAProject:  # fmt: skip
    """Write the HLS project for `desc` into `out_dir` (created if needed) and return it."""
    from talon.backend.fpga.estimate import estimate_descriptor

    preset = resolve_part(part)
    if not (isinstance(top, str) and top.isidentifier() and top.isascii()):
        raise BackendError(f"top function name must be a C identifier, got {top!r}")
    clock = float(clock_mhz) if clock_mhz is not None else preset.clock_mhz
    nodes = desc.nodes
    order = desc.layer_order
    for n in order:
        t = nodes[n]["type"]
        if t not in SUPPORTED:
            raise BackendError(f"the fpga backend has no kernel for node {n!r} of type {t} (supported: {', '.join(SUPPORTED)})")
    ids = c_identifiers(order)
    c = int(desc.meta["fixed_point"]["coefficient_frac_bits"])
    est = estimate_descriptor(desc, preset, reuse_factor=reuse_factor, clock_mhz=clock)
    # The kernels run the estimate's lanes (UNROLL factor); a buffer is partitioned for the widest of its
    # writer and its readers.
    lanes = {x.name: x.lanes for x in est.layers}
    buf_lanes = dict(lanes)
    for n in order:
        for p in nodes[n]["inputs"]:
            buf_lanes[p] = max(buf_lanes[p], lanes[n])

    files: dict[str, str] = {}
    used_kernels: list[str] = []
    weights_files: list[str] = []
    body: list[str] = []
    state_decl: list[str] = []
    reset_lines: list[str] = []
    prev_bufs: dict[str, int] = {}  # recurrent-loop sources read one step late: name -> elements
    typedefs: list[str] = []
    ports_in, ports_out, taps_spk, taps_mem = [], [], [], []

    # Which output of its source each edge carries (the IR's Graph.edge_output_index rule): a node fed by
    # chunk k of a ChannelSplit reads that chunk's buffer b_s<k>_<id> ("b_s..." never equals "b_n_...").
    seen: dict[str, int] = {}
    edge_src: dict[str, list[str]] = {n: [] for n in order}
    for s_, d_ in desc.meta["edges"]:
        k_ = seen.get(s_, 0)
        seen[s_] = k_ + 1
        if d_ in edge_src:
            edge_src[d_].append(f"s{k_}_{ids[s_]}" if nodes[s_]["type"] == "ChannelSplit" else ids[s_])

    def kernel(k: str) -> None:
        if k not in used_kernels:
            used_kernels.append(k)

    def arr(n: str, key: str):
        return desc.arrays.get(f"{n}/{key}")

    for n in order:
        nd = nodes[n]
        t, kind, i = nd["type"], nd["kind"], ids[n]
        shape = tuple(nd["output_shape"] or ())
        N = _size(shape)
        ob, of = nd["out_format"]
        # An input on a recurrent loop's delayed edge reads b_p_<src>: the source's output of the previous
        # step (docs/fixed_point.md section 3, "Recurrent loops"), copied at the end of each step and
        # cleared on reset. "b_p_..." never equals a node buffer "b_n_...".
        late = set(nd.get("delayed_inputs", []))
        ins = [("p_" if k in late else "") + src for k, src in enumerate(edge_src[n])]
        for k in sorted(late):
            src = nd["inputs"][k]
            if src not in prev_bufs:
                prev_bufs[src] = _size(nodes[src]["output_shape"])
                pi, pn = ids[src], prev_bufs[src]
                state_decl.append(f"    static int64_t b_p_{pi}[{pn}];  // output of {c_string(src)} at the previous step (recurrent loop)")
                reset_lines.append(f"        for (int k = 0; k < {pn}; ++k) b_p_{pi}[k] = 0;")
                body.extend(partition_pragmas(f"b_p_{pi}", (pn,), buf_lanes[src]))  # banked like b_<src>
        in_shapes = [tuple(s) for s in nd["input_shapes"]]
        buf = f"b_{i}"
        L = lanes[n]
        body_start, state_start = len(body), len(state_decl)
        shape_note = f"chunks of {list(in_shapes[0])}" if t == "ChannelSplit" else f"shape {list(shape)}"  # output_shape is chunk 0's
        body.append(f"    // {c_string(n)}: {t} ({kind}), out Q{ob}.{of}, {shape_note}, {L} lanes")
        if t != "ChannelSplit":  # a split writes one buffer per chunk instead
            body.append(f"    static int64_t {buf}[{N}];")
        wlines: list[str] = []
        if t == "Input":
            typedefs.append(f"typedef TALON_PORT_T({ob}, {of}) {i}_in_t;")
            ports_in.append({"name": n, "ident": i, "shape": list(shape), "format": [ob, of], "port": f"in_{i}", "type": f"{i}_in_t"})
            body.append(f"    for (int k = 0; k < {N}; ++k) {buf}[k] = TALON_TO_I64(in_{i}[k]);")
        elif t == "Scale":  # synaptic with a fan-in of one: one factor per element
            kernel("scale")
            _check_wide_sum(n, nd["in_formats"][0][0], int(nd["attrs"].get("weight_bits", 16)), 1)
            wlines.append(_c_array(f"w_{i}", np.broadcast_to(np.asarray(arr(n, "scale")), shape).reshape(-1)))
            body.append(f"    k_scale<{N}, {nd['acc_bits']}, {int(nd['acc_frac']) - of}, {ob}, {L}>(b_{ins[0]}, w_{i}, {buf});")
        elif kind == "synaptic":
            ib = nd["in_formats"][0][0]
            shift = int(nd["acc_frac"]) - of
            W = arr(n, "weight")
            if W is not None:  # SepConv2d has its two pairs of constants instead
                B = arr(n, "bias")
                if B is None:
                    B = np.zeros(W.shape[0], np.int64)
                wlines.append(_c_array(f"w_{i}", W))
                wlines.append(_c_array(f"bias_{i}", B))
            if t == "SepConv2d":
                kernel("sepconv2d")
                p = nd["params"]
                DW, DB, PW, PB = (arr(n, k) for k in ("depthwise_weight", "depthwise_bias", "pointwise_weight", "pointwise_bias"))
                C, H, Wd = in_shapes[0]
                O, HO, WO = shape
                KH, KW = int(DW.shape[2]), int(DW.shape[3])
                wb = int(nd["attrs"].get("weight_bits", 16))
                zb = sepconv_z_bits(desc, nd)
                _check_wide_sum(n, ib, wb, KH * KW)
                _check_wide_sum(n, zb, wb, C)  # the pointwise stage sums W x Z, Z exact
                wlines[:] = [_c_array(f"dw_{i}", DW), _c_array(f"db_{i}", np.zeros(C, np.int64) if DB is None else DB),
                             _c_array(f"pw_{i}", PW), _c_array(f"pb_{i}", np.zeros(O, np.int64) if PB is None else PB)]  # fmt: skip
                (sh, sw), (ph, pw), (dh, dw) = p["stride"], p["padding"], p.get("dilation", [1, 1])
                body.append(f"    static int64_t z_{i}[{C * HO * WO}];  // exact depthwise sums of {c_string(n)}")
                body.append(f"    k_sepconv2d<{C}, {H}, {Wd}, {O}, {KH}, {KW}, {sh}, {sw}, {ph}, {pw}, {dh}, {dw}, {HO}, {WO}, "
                            f"{nd['acc_bits']}, {shift}, {ob}, {L}>(b_{ins[0]}, dw_{i}, db_{i}, pw_{i}, pb_{i}, z_{i}, {buf});")  # fmt: skip
            elif t == "Conv1d":  # Conv2d's kernel on a (C, 1, L) image with (1, K) windows: one source of the rule
                kernel("conv2d")
                p = nd["params"]
                C, Ln = in_shapes[0]
                O, Cg, KW = W.shape
                _check_wide_sum(n, ib, int(nd["attrs"].get("weight_bits", 16)), Cg * KW)
                _, LO = shape
                wlines[0] = _c_array(f"w_{i}", W, (O, Cg, 1, KW))
                body.append(f"    k_conv2d<{C}, 1, {Ln}, {O}, 1, {KW}, 1, {int(p['stride'])}, 0, {int(p['padding'])}, 1, {int(p['dilation'])}, "
                            f"{int(p.get('groups', 1))}, 1, {LO}, {nd['acc_bits']}, {shift}, {ob}, {L}>(b_{ins[0]}, w_{i}, bias_{i}, {buf});")  # fmt: skip
            elif t in ("Affine", "Linear", "SpikingAffine"):
                kernel("affine")
                n_out, n_in = W.shape
                _check_wide_sum(n, ib, int(nd["attrs"].get("weight_bits", 16)), n_in)
                body.append(f"    k_affine<{n_in}, {n_out}, {nd['acc_bits']}, {shift}, {ob}, {L}>(b_{ins[0]}, w_{i}, bias_{i}, {buf});")
            else:  # Conv2d
                kernel("conv2d")
                p = nd["params"]
                C, H, Wd = in_shapes[0]
                O, Cg, KH, KW = W.shape
                _check_wide_sum(n, ib, int(nd["attrs"].get("weight_bits", 16)), Cg * KH * KW)
                _, HO, WO = shape
                sh, sw = p["stride"]
                ph, pw = p["padding"] if not isinstance(p["padding"], str) else (None, None)
                if ph is None:
                    raise BackendError(f"node {n!r}: string padding {p['padding']!r} is not supported by the fpga backend")
                dh, dw = p.get("dilation", [1, 1])
                g = int(p.get("groups", 1))
                body.append(f"    k_conv2d<{C}, {H}, {Wd}, {O}, {KH}, {KW}, {sh}, {sw}, {ph}, {pw}, {dh}, {dw}, {g}, {HO}, {WO}, "
                            f"{nd['acc_bits']}, {shift}, {ob}, {L}>(b_{ins[0]}, w_{i}, bias_{i}, {buf});")  # fmt: skip
        elif t == "MaxPool2d":
            kernel("maxpool2d")
            p = nd["params"]
            if p.get("ceil_mode"):
                raise BackendError(f"node {n!r}: MaxPool2d(ceil_mode=True) is not supported by the fpga backend")
            C, H, Wd = in_shapes[0]
            _, HO, WO = shape
            (kh, kw), (sh, sw), (ph, pw) = p["kernel_size"], p["stride"], p.get("padding", [0, 0])
            dh, dw = p.get("dilation", [1, 1])
            body.append(f"    k_maxpool2d<{C}, {H}, {Wd}, {kh}, {kw}, {sh}, {sw}, {ph}, {pw}, {dh}, {dw}, {HO}, {WO}, {L}>(b_{ins[0]}, {buf});")
        elif t == "AvgPool2d":
            kernel("avgpool2d")
            p = nd["params"]
            if list(p.get("padding", [0, 0])) != [0, 0] or p.get("ceil_mode") or p.get("divisor_override") not in (None, 0):
                raise BackendError(f"node {n!r}: AvgPool2d with padding, ceil_mode or divisor_override is not supported by the fpga backend")
            C, H, Wd = in_shapes[0]
            _, HO, WO = shape
            (kh, kw), (sh, sw) = p["kernel_size"], p["stride"]
            fi = nd["in_formats"][0][1]
            up, down = (of - fi, 0) if of >= fi else (0, fi - of)
            body.append(f"    k_avgpool2d<{C}, {H}, {Wd}, {kh}, {kw}, {sh}, {sw}, {HO}, {WO}, {up}, {down}, {ob}, {L}>(b_{ins[0]}, {buf});")
        elif t == "ReLU":
            kernel("relu")
            if kind == "pass":
                body.append(f"    k_relu<{N}, {L}>(b_{ins[0]}, {buf});")
            else:
                S = int(np.asarray(arr(n, "negative_slope")).reshape(-1)[0])
                fi = nd["in_formats"][0][1]
                body.append(f"    k_leaky_relu<{N}, {c}, {fi + c - of}, {ob}, {L}>(b_{ins[0]}, (int64_t){S}, {buf});")
        elif t == "Threshold":
            kernel("threshold")
            wlines.append(_c_array(f"thr_{i}", np.broadcast_to(np.asarray(arr(n, "v_threshold")), shape).reshape(-1)))
            body.append(f"    k_threshold<{N}, {L}>(b_{ins[0]}, thr_{i}, {buf});")
            typedefs.append(f"typedef TALON_PORT_T({ob}, {of}) {i}_spk_t;")
            taps_spk.append({"name": n, "ident": i, "shape": list(shape), "format": [ob, of], "port": f"spk_{i}", "type": f"{i}_spk_t", "buffer": buf})
        elif t == "SumPool2d":
            kernel("sumpool2d")
            p = nd["params"]
            C, H, Wd = in_shapes[0]
            _, HO, WO = shape
            (kh, kw), (sh, sw), (ph, pw) = p["kernel_size"], p["stride"], p.get("padding", [0, 0])
            fi = nd["in_formats"][0][1]
            body.append(f"    k_sumpool2d<{C}, {H}, {Wd}, {kh}, {kw}, {sh}, {sw}, {ph}, {pw}, {HO}, {WO}, {fi - of}, {ob}, {L}>(b_{ins[0]}, {buf});")
        elif t == "Upsample":  # grid-preserving gather
            kernel("upsample")
            C, H, Wd = in_shapes[0]
            _, HO, WO = shape
            wlines.append(_c_array(f"src_{i}", _upsample_map(n, nd["params"], (H, Wd), (HO, WO))))
            body.append(f"    k_upsample<{C}, {H * Wd}, {HO * WO}, {L}>(b_{ins[0]}, src_{i}, {buf});")
        elif t == "Concat" or (t == "Skip" and nd["params"].get("skip_type") == "concatenate"):
            # Row-major (OUTER, TOTAL) view around the joined dimension d (Skip joins channels, dim 0): input k
            # fills columns [offset, offset + INNER_k), each input rounded from its own format (requantising).
            kernel("concat")
            d = int(nd["params"].get("dim", 0)) % len(shape) if t == "Concat" else 0
            outer, total, off = _size(shape[:d]), _size(shape[d:]), 0
            for src, s_in, (_, f) in zip(ins, in_shapes, nd["in_formats"]):
                inner = _size(s_in[d:])
                body.append(f"    k_concat<{outer}, {inner}, {total}, {off}, {f - of}, {ob}, {L}>(b_{src}, {buf});")
                off += inner
        elif t == "Skip" and kind == "requant":
            kernel("align")
            fr = [f for _, f in nd["in_formats"]]
            F = max(fr)
            body.append(f"    static int64_t acc_{i}[{N}];")
            body.append(f"    for (int k = 0; k < {N}; ++k) acc_{i}[k] = 0;")
            for src, f in zip(ins, fr):
                body.append(f"    k_align_add<{N}, {F - f}, {L}>(b_{src}, acc_{i});")
            body.append(f"    k_requant<{N}, {F - of}, {ob}, {L}>(acc_{i}, {buf});")
        elif t == "ChannelSplit":  # grid-preserving: chunk k of the input into b_s<k>_<id>, read by the k-th out-edge
            kernel("split")
            for k, (outer, inner, total, off) in enumerate(split_chunks(nd)):
                body.append(f"    static int64_t b_s{k}_{i}[{outer * inner}];")
                body.append(f"    k_split<{outer}, {inner}, {total}, {off}, {L}>(b_{ins[0]}, b_s{k}_{i});")
        elif t == "Delay":  # grid-preserving: the input of `delay` steps ago, from a ring of static state
            kernel("delay")
            ln = delay_length(desc, n)
            wlines.append(_c_array(f"d_{i}", np.broadcast_to(np.asarray(arr(n, "delay")), shape).reshape(-1)))
            state_decl.append(f"    static int64_t dl_{i}[{ln}][{N}];  // the last {ln} inputs of {c_string(n)} (ring)")
            state_decl.append(f"    static int dh_{i} = 0;  // ring slot of this step's input")
            reset_lines.append(f"        for (int s = 0; s < {ln}; ++s) for (int k = 0; k < {N}; ++k) dl_{i}[s][k] = 0;")
            reset_lines.append(f"        dh_{i} = 0;")
            body.append(f"    k_delay<{N}, {ln}, {L}>(b_{ins[0]}, dl_{i}, dh_{i}, d_{i}, {buf});")
            body.append(f"    dh_{i} = (dh_{i} + 1) % {ln};")
        elif kind == "pass":  # Flatten, Output, Dropout, HybridRegion, Skip(passthrough)
            kernel("copy")
            body.append(f"    k_copy<{N}, {L}>(b_{ins[0]}, {buf});")
        elif kind == "neuron":
            kernel("neuron")
            mb, fv = nd["membrane"]
            fr = [f for _, f in nd["in_formats"]]
            # CubaLIF: the inputs drive its current (format Qib.fi), the current drives the membrane
            cuba = nd.get("current") is not None
            ib, fi = nd["current"] if cuba else (mb, fv)
            Fm = aligned_fraction(nd)
            spiking = get_node_class(t).spiking
            attrs = nd.get("attrs", {})
            mode = attrs.get("reset_mode", "none") if spiking else "none"
            if mode not in _MODES:
                raise BackendError(f"node {n!r}: reset mode {mode!r} is not in the fixed-point contract")
            delay = bool(attrs.get("reset_delay", True))

            def full(key: str, default: int) -> np.ndarray:
                a = arr(n, key)
                a = np.asarray(default if a is None else a, np.int64)
                return np.broadcast_to(a.reshape(a.shape) if a.ndim else a, shape).reshape(-1)

            wlines.append(_c_array(f"beta_{i}", full("beta", 1 << c)))
            wlines.append(_c_array(f"gain_{i}", full("gain", 0)))
            wlines.append(_c_array(f"leak_{i}", full("leak", 0)))
            wlines.append(_c_array(f"thr_{i}", full("v_threshold", 0)))
            wlines.append(_c_array(f"vreset_{i}", full("v_reset", 0)))
            gsa = arr(n, "graded_spikes_factor")
            gs = int(np.asarray(gsa).reshape(-1)[0]) if gsa is not None else 1
            if align_passes(nd)[0] == 0:  # one input, already at Fm (the estimate counts the same passes)
                src = f"b_{ins[0]}"
            else:
                kernel("align")
                body.append(f"    static int64_t isum_{i}[{N}];")
                body.append(f"    for (int k = 0; k < {N}; ++k) isum_{i}[k] = 0;")
                for s, f in zip(ins, fr):
                    body.append(f"    k_align_add<{N}, {Fm - f}, {L}>(b_{s}, isum_{i});")
                src = f"isum_{i}"
            if cuba:
                kernel("current")
                wlines.append(_c_array(f"alpha_{i}", full("alpha", 0)))
                wlines.append(_c_array(f"gin_{i}", full("gain_in", 1 << c)))
                Fv = max(fv, fi)  # the membrane stage reads the current aligned to this fraction
                state_decl.append(f"    static int64_t cur_{i}[{N}];  // synaptic current of {c_string(n)}, Q{ib}.{fi}")
                reset_lines.append(f"        for (int k = 0; k < {N}; ++k) cur_{i}[k] = 0;")
                body.append(f"    static int64_t y_{i}[{N}];")
                body.append(f"    k_current<{N}, {ib}, {Fm - fi}, {c + Fm - fi}, {Fv - fi}, {L}>({src}, cur_{i}, alpha_{i}, gin_{i}, y_{i});")
                src, Fm = f"y_{i}", Fv
            state_decl.append(f"    static int64_t v_{i}[{N}];  // membrane of {c_string(n)}, Q{mb}.{fv}")
            reset_lines.append(f"        for (int k = 0; k < {N}; ++k) v_{i}[k] = 0;")
            body.append(f"    static int64_t m_{i}[{N}];")
            body.append(f"    k_neuron<{N}, {_MODES[mode]}, {str(delay).lower()}, {str(spiking).lower()}, {mb}, {Fm - fv}, {Fm + c - fv}, {L}>"
                        f"({src}, v_{i}, beta_{i}, gain_{i}, leak_{i}, thr_{i}, vreset_{i}, (int64_t){gs}, {buf}, m_{i});")  # fmt: skip
            typedefs.append(f"typedef TALON_PORT_T({mb}, {fv}) {i}_mem_t;")
            taps_mem.append({"name": n, "ident": i, "shape": list(shape), "format": [mb, fv], "port": f"mem_{i}", "type": f"{i}_mem_t", "buffer": f"m_{i}"})
            if spiking:
                typedefs.append(f"typedef TALON_PORT_T({ob}, {of}) {i}_spk_t;")
                taps_spk.append({"name": n, "ident": i, "shape": list(shape), "format": [ob, of], "port": f"spk_{i}", "type": f"{i}_spk_t", "buffer": buf})
        else:
            raise BackendError(f"the fpga backend cannot realise node {n!r} ({t}, kind {kind})")
        if t == "Output":
            typedefs.append(f"typedef TALON_PORT_T({ob}, {of}) {i}_out_t;")
            ports_out.append({"name": n, "ident": i, "shape": list(shape), "format": [ob, of], "port": f"out_{i}", "type": f"{i}_out_t", "buffer": buf})
        # Partition every array this node declared (buffer, constants, state) for the lanes of its kernels.
        for decl in wlines + body[body_start:] + state_decl[state_start:]:
            for var, dims in _DECL.findall(decl):
                shp = tuple(int(x) for x in re.findall(r"\d+", dims))
                body.extend(partition_pragmas(var, shp, buf_lanes[n] if var == buf or var.startswith("b_s") else L))
        if wlines:
            rel = f"firmware/weights/{i}.h"
            guard = f"TALON_W_{i.upper()}_H"
            files[rel] = (f"// Constants of node {c_string(n)} ({t}): integers of the quantised graph. Generated by TALON; do not edit.\n"
                          f"#ifndef {guard}\n#define {guard}\n#include <stdint.h>\n\n" + "\n".join(wlines) + "\n#endif\n")  # fmt: skip
            weights_files.append(rel)

    for src, pn in prev_bufs.items():  # after every node ran: what the loops read at the next step
        body.append(f"    for (int k = 0; k < {pn}; ++k) b_p_{ids[src]}[k] = b_{ids[src]}[k];")
    for p in ports_out:
        body.append(f"    for (int k = 0; k < {_size(p['shape'])}; ++k) {p['port']}[k] = {p['buffer']}[k];")
    for p in taps_spk + taps_mem:
        body.append(f"    for (int k = 0; k < {_size(p['shape'])}; ++k) {p['port']}[k] = {p['buffer']}[k];")

    params = [f"const {p['type']} {p['port']}[{_size(p['shape'])}]" for p in ports_in]
    params += [f"{p['type']} {p['port']}[{_size(p['shape'])}]" for p in ports_out + taps_spk + taps_mem]
    params.append("bool reset")
    signature = f"void {top}(\n    " + ",\n    ".join(params) + ")"

    files["firmware/talon_fixed.h"] = K.fixed_header(desc.meta.get("fixed_point_version"))
    files["firmware/talon_types.h"] = K.types_header("\n".join(typedefs) + "\n#ifdef TALON_USE_AP_TYPES\n#define TALON_TO_I64(x) ((int64_t)(x).to_int64())\n#else\n#define TALON_TO_I64(x) ((int64_t)(x))\n#endif")
    for k in used_kernels:
        files[f"firmware/kernels/{k}.h"] = K.kernel_header(k, K.builtin_kernel(k))
    files[f"firmware/{top}.h"] = (f"// Top function: advances the network by one timestep. Generated by TALON; do not edit.\n"
                                  f"#ifndef TALON_TOP_H\n#define TALON_TOP_H\n#include <stdint.h>\n#include \"talon_types.h\"\n\n{signature};\n\n#endif\n")  # fmt: skip
    pragmas = ["#pragma HLS INTERFACE s_axilite port=return"]
    pragmas += [f"#pragma HLS INTERFACE bram port={p['port']}" for p in ports_in + ports_out + taps_spk + taps_mem]
    pragmas.append("#pragma HLS INTERFACE s_axilite port=reset")
    top_src = [
        f"// {top}: one timestep of the quantised graph (fixed-point version {desc.meta.get('fixed_point_version')}).",
        "// reset=true clears all state (membranes, currents, recurrent values) before the step (a new sample).",
        "// Generated by TALON; do not edit.",
        f'#include "{top}.h"',
        '#include "talon_fixed.h"',
        *[f'#include "kernels/{k}.h"' for k in used_kernels],
        *[f'#include "{w[len("firmware/"):]}"' for w in weights_files],
        "",
        signature + " {",
        *pragmas,
        *state_decl,
        "    if (reset) {",
        *reset_lines,
        "    }",
        *body,
        "}",
        "",
    ]
    files[f"firmware/{top}.cpp"] = "\n".join(top_src)
    files["tb/talon_tb.cpp"] = _testbench(top, ports_in, ports_out, taps_spk, taps_mem)
    manifest = {
        "format": "talon-hls-project",
        "project_version": PROJECT_VERSION,
        "top": top,
        "part": preset.to_dict(),
        "clock_mhz": clock,
        "fixed_point_version": desc.meta.get("fixed_point_version"),
        "talon_version": desc.meta.get("talon_version"),
        "layer_order": order,
        "identifiers": ids,
        "inputs": ports_in,
        "outputs": ports_out,
        "spikes": taps_spk,
        "membranes": taps_mem,
        "estimates": est.to_dict(),
    }
    files[MANIFEST] = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    files["descriptor.json"] = desc.to_json() + "\n"
    files["estimates.md"] = est.to_markdown()
    files["build_prj.tcl"] = _tcl(top, preset, clock, sorted(f for f in files if f.startswith("firmware/") and f.endswith(".cpp")))
    files["README.md"] = _readme(top, preset, clock, manifest, est)

    out = os.path.abspath(os.fspath(out_dir))
    for sub in ("kernels", "weights"):  # headers left over from an earlier graph in the same folder
        folder = os.path.join(out, "firmware", sub)
        if os.path.isdir(folder):
            for nm in sorted(os.listdir(folder)):
                if nm.endswith(".h") and f"firmware/{sub}/{nm}" not in files:
                    os.unlink(os.path.join(folder, nm))
    for rel in sorted(files):
        path = os.path.join(out, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = files[rel].encode("utf-8")
        try:
            with open(path, "rb") as f:
                if f.read() == data:
                    continue
        except OSError:
            pass
        with open(path, "wb") as f:
            f.write(data)
    return FPGAProject(out, sorted(files), manifest, est, desc)


def _testbench(top: str, ins, outs, spk, mem) -> str:
    L = [
        f"// C testbench of {top}: reads float64 inputs, quantises them (docs/fixed_point.md, Input), runs T steps",
        "// per sample (reset at t = 0) and writes every output, spike and membrane tap as int64 (T, B, N) files.",
        "// usage: talon_tb DATA_DIR T B   (DATA_DIR/in_<id>.bin: float64 (T, B, *shape), little-endian)",
        "// Generated by TALON; do not edit.",
        "#include <cstdio>\n#include <cstdlib>\n#include <string>\n#include <vector>",
        f'#include "{top}.h"\n#include "talon_fixed.h"\n',
        "static bool read_all(const std::string& path, void* data, size_t bytes) {",
        '    FILE* f = std::fopen(path.c_str(), "rb");',
        "    if (!f) return false;",
        "    size_t got = std::fread(data, 1, bytes, f);",
        "    std::fclose(f);",
        "    return got == bytes;",
        "}",
        "static bool write_all(const std::string& path, const void* data, size_t bytes) {",
        '    FILE* f = std::fopen(path.c_str(), "wb");',
        "    if (!f) return false;",
        "    size_t put = std::fwrite(data, 1, bytes, f);",
        "    return std::fclose(f) == 0 && put == bytes;",
        "}",
        "",
        "int main(int argc, char** argv) {",
        '    if (argc != 4) { std::fprintf(stderr, "usage: %s DATA_DIR T B\\n", argv[0]); return 2; }',
        "    const std::string dir = argv[1];",
        "    const long T = std::atol(argv[2]), B = std::atol(argv[3]);",
        '    if (T < 1 || B < 1) { std::fprintf(stderr, "T and B must be positive\\n"); return 2; }',
    ]
    for p in ins:
        n = _size(p["shape"])
        L.append(f"    std::vector<double> x_{p['ident']}((size_t)(T * B * {n}));")
        L.append(f'    if (!read_all(dir + "/{p["port"]}.bin", x_{p["ident"]}.data(), x_{p["ident"]}.size() * sizeof(double))) {{ std::fprintf(stderr, "cannot read {p["port"]}.bin\\n"); return 1; }}')
        L.append(f"    static {p['type']} {p['port']}[{n}];")
    for p in outs + spk + mem:
        n = _size(p["shape"])
        L.append(f"    std::vector<long long> r_{p['port']}((size_t)(T * B * {n}));")
        L.append(f"    static {p['type']} {p['port']}[{n}];")
    L.append("    for (long b = 0; b < B; ++b) {")
    L.append("        for (long t = 0; t < T; ++t) {")
    for p in ins:
        n = _size(p["shape"])
        bits, frac = p["format"]
        L.append(f"            for (int k = 0; k < {n}; ++k) {p['port']}[k] = talon::quantize_input(x_{p['ident']}[(size_t)((t * B + b) * {n} + k)], {bits}, {frac});")
    args = [p["port"] for p in ins + outs + spk + mem] + ["t == 0"]
    L.append(f"            {top}({', '.join(args)});")
    for p in outs + spk + mem:
        n = _size(p["shape"])
        L.append(f"            for (int k = 0; k < {n}; ++k) r_{p['port']}[(size_t)((t * B + b) * {n} + k)] = (long long)TALON_TO_I64({p['port']}[k]);")
    L.append("        }")
    L.append("    }")
    for p in outs + spk + mem:
        L.append(f'    if (!write_all(dir + "/{p["port"]}.out.bin", r_{p["port"]}.data(), r_{p["port"]}.size() * sizeof(long long))) return 1;')
    L.append('    std::printf("talon_tb: %ld steps x %ld samples done\\n", T, B);')
    L.append("    return 0;")
    L.append("}")
    return "\n".join(L) + "\n"


def _tcl(top: str, preset: PartPreset, clock: float, cpp_files: list[str]) -> str:
    period = round(1000.0 / clock, 3)
    lines = [
        f"# Vitis HLS / Vivado HLS script for {top}. Generated by TALON; do not edit.",
        "# usage: vitis_hls -f build_prj.tcl          (or: vivado_hls -f build_prj.tcl)",
        "#   optional: -tclargs csim_data=DIR steps=T batch=B part=<part string> synth=1 cosim=0 export=0",
        f"set part \"{preset.part}\"   ;# preset {preset.key}: {preset.family}",
        "set csim_data \"data\"\nset steps 100\nset batch 1\nset synth 1\nset cosim 0\nset export 0",
        "foreach arg $argv { if {[regexp {^([a-z_]+)=(.*)$} $arg -> k v]} { set $k $v } }",
        f"open_project -reset {top}_prj",
        f"set_top {top}",
    ]
    for f in cpp_files:
        lines.append(f'add_files {f} -cflags "-std=c++14 -DTALON_USE_AP_TYPES -Ifirmware"')
    lines += [
        'add_files -tb tb/talon_tb.cpp -cflags "-std=c++14 -DTALON_USE_AP_TYPES -Ifirmware"',
        "open_solution -reset solution1",
        "set_part $part",
        f"create_clock -period {period} -name default",
        'csim_design -argv "[file normalize $csim_data] $steps $batch"',
        "if {$synth} { csynth_design }",
        'if {$cosim} { cosim_design -argv "[file normalize $csim_data] $steps $batch" }',
        "if {$export} { export_design -format ip_catalog }",
        "exit",
    ]
    return "\n".join(lines) + "\n"


def _readme(top: str, preset: PartPreset, clock: float, manifest: dict, est) -> str:
    ports = "\n".join(f"| `{p['port']}` | {c_string(p['name'])} | {_size(p['shape'])} | Q{p['format'][0]}.{p['format'][1]} |"
                      for p in manifest["inputs"] + manifest["outputs"] + manifest["spikes"] + manifest["membranes"])  # fmt: skip
    return f"""# TALON HLS project: `{top}`

Generated by TALON {manifest['talon_version']} from the quantised graph (fixed-point version
{manifest['fixed_point_version']}, docs/fixed_point.md); `descriptor.json` is the exact hardware descriptor
it was generated from. Do not edit the generated files: regenerate them with
`get_backend("fpga").compile(graph, out_dir, part=...)`.

## Layout

- `firmware/{top}.cpp`, `firmware/{top}.h`: the top function; one call advances the network by one
  timestep (`reset=true` clears all state first: membranes, synaptic currents and the previous-step
  values of recurrent loops, i.e. starts a new sample).
- `firmware/kernels/*.h`: one kernel per primitive family used; `firmware/talon_fixed.h`: the rounding and
  saturation rules; `firmware/talon_types.h`: port types (`ap_int<b>` with `-DTALON_USE_AP_TYPES`).
- `firmware/weights/*.h`: weights, biases and neuron constants as integer arrays.
- `tb/talon_tb.cpp`: C testbench: `talon_tb DATA_DIR T B` reads `DATA_DIR/in_<id>.bin` (float64, shape
  (T, B, *shape)) and writes `<port>.out.bin` (int64, (T, B, N)) for every output, spike and membrane port.
- `build_prj.tcl`: the HLS script; `estimates.md`: latency and resource estimates; `talon_project.json`: ports,
  formats, part and estimates (what `csim` reads).

## Build

C simulation without any Xilinx tool (what TALON's `csim`/`verify` do):

    g++ -std=c++14 -O1 -Ifirmware firmware/{top}.cpp tb/talon_tb.cpp -o talon_tb
    ./talon_tb data 100 1

add `-DTALON_USE_AP_TYPES -I<dir holding ap_int.h>` to use the ap_types headers (hls4ml's wheel ships them:
`pip install hls4ml`, then `hls4ml/templates/vivado/ap_types`).

HLS (C simulation, synthesis, optionally co-simulation and IP export), part `{preset.part}` ({preset.family}),
clock {clock:g} MHz:

    vitis_hls -f build_prj.tcl -tclargs csim_data=data steps=100 batch=1 synth=1 cosim=0 export=0

Other part: pass `part=<part string>` or regenerate with `part="zu9eg"` / `part="zynq7020"`.

## Ports (integer words; value = word * 2^-frac)

| port | node | elements | format |
|---|---|---|---|
{ports}

## Estimates (not synthesis results)

{est.to_markdown(heading=False)}
"""
