"""Emitters of the element-wise and structural primitives (Input, Output, Flatten, Dropout, HybridRegion,
ReLU, Threshold, Skip, Concat, ChannelSplit, Delay) and their shared estimate."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from talon.backend.fpga.cgen import c_array, size
from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate
from talon.backend.fpga.emitters.registry import Emitter, register_emitter
from talon.backend.fpga.model import LayerEstimate, bram, delay_length, split_chunks
from talon.backend.fpga.names import c_string
from talon.errors import BackendError


def elementwise_estimate(e: NodeEstimate, *, items: int | None = None, trips: Callable[[int], int] | None = None,
                         extra: Callable[[int], tuple[int, int]] | None = None) -> LayerEstimate:  # fmt: skip
    """`items` (default N) elements at ceil(items / R) lanes; cycles = trips(lanes) (default one loop of
    ceil(items / lanes)) + 2; extra(lanes) -> (BRAM18K, LUT) of the node's arrays."""
    nd = e.nd
    N = e.N if items is None else items
    lanes = max(1, math.ceil(N / e.R))
    cycles = (trips(lanes) if trips is not None else math.ceil(N / lanes)) + 2
    lut = lanes * int(nd["out_format"][0]) + (100 if nd["type"] != "Input" else 20)
    b, lu = extra(lanes) if extra is not None else (0, 0)
    return LayerEstimate(e.name, nd["type"], N, lanes, cycles, 0, b, lut + lu)


class ElementwiseEmitter(Emitter):
    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        return elementwise_estimate(e)


class InputEmitter(ElementwiseEmitter):
    """An input port `in_<id>`, widened to the int64 buffer."""

    def emit(self, code: NodeCode) -> None:
        code.port_in()
        code.body.append(f"    for (int k = 0; k < {code.N}; ++k) {code.buf}[k] = TALON_TO_I64(in_{code.ident}[k]);")


class CopyEmitter(ElementwiseEmitter):
    """Grid-preserving copies (kind "pass"): Flatten, Dropout, HybridRegion; Output also becomes a port."""

    def __init__(self, port: bool = False) -> None:
        self.port = port

    def emit(self, code: NodeCode) -> None:
        nd = code.nd
        if nd["kind"] != "pass":
            raise BackendError(f"the fpga backend cannot realise node {code.name!r} ({nd['type']}, kind {nd['kind']})")
        code.kernel("copy")
        code.body.append(f"    k_copy<{code.N}, {code.lanes}>({code.inputs[0]}, {code.buf});")
        if self.port:
            code.port_out()


class ReLUEmitter(ElementwiseEmitter):
    """ReLU (kind "pass": max(X, 0)) or leaky ReLU (requantising)."""

    def emit(self, code: NodeCode) -> None:
        code.kernel("relu")
        ob, of = code.out_format
        if code.nd["kind"] == "pass":
            code.body.append(f"    k_relu<{code.N}, {code.lanes}>({code.inputs[0]}, {code.buf});")
        else:
            S = int(np.asarray(code.arr("negative_slope")).reshape(-1)[0])
            c, fi = code.coef_frac, code.nd["in_formats"][0][1]
            code.body.append(f"    k_leaky_relu<{code.N}, {c}, {fi + c - of}, {ob}, {code.lanes}>({code.inputs[0]}, (int64_t){S}, {code.buf});")


class ThresholdEmitter(ElementwiseEmitter):
    """Threshold: X > theta, a spike tap."""

    def emit(self, code: NodeCode) -> None:
        code.kernel("threshold")
        i = code.ident
        code.consts.append(c_array(f"thr_{i}", np.broadcast_to(np.asarray(code.arr("v_threshold")), code.shape).reshape(-1)))
        code.body.append(f"    k_threshold<{code.N}, {code.lanes}>({code.inputs[0]}, thr_{i}, {code.buf});")
        code.spike_tap()


def _concat(code: NodeCode, d: int) -> None:
    # Row-major (OUTER, TOTAL) view around the joined dimension d: input k fills columns
    # [offset, offset + INNER_k), each input rounded from its own format (requantising).
    code.kernel("concat")
    shape, (ob, of) = code.shape, code.out_format
    outer, total, off = size(shape[:d]), size(shape[d:]), 0
    for src, s_in, (_, f) in zip(code.inputs, code.in_shapes, code.nd["in_formats"]):
        inner = size(s_in[d:])
        code.body.append(f"    k_concat<{outer}, {inner}, {total}, {off}, {f - of}, {ob}, {code.lanes}>({src}, {code.buf});")
        off += inner


def _concat_trips(e: NodeEstimate) -> Callable[[int], int]:
    return lambda lanes: sum(math.ceil(int(np.prod(s)) / lanes) for s in e.nd["input_shapes"])  # one loop per input part


class ConcatEmitter(Emitter):
    def emit(self, code: NodeCode) -> None:
        _concat(code, int(code.nd["params"].get("dim", 0)) % len(code.shape))

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        return elementwise_estimate(e, trips=_concat_trips(e))


class SkipEmitter(Emitter):
    """Skip: concatenate (channels, like Concat dim 0), residual (requant: aligned sum, one rounding) or
    passthrough (a copy)."""

    def emit(self, code: NodeCode) -> None:
        nd, i, N, L = code.nd, code.ident, code.N, code.lanes
        if nd["params"].get("skip_type") == "concatenate":
            _concat(code, 0)
        elif nd["kind"] == "requant":
            code.kernel("align")
            ob, of = code.out_format
            fr = [f for _, f in nd["in_formats"]]
            F = max(fr)
            code.body.append(f"    static int64_t acc_{i}[{N}];")
            code.body.append(f"    for (int k = 0; k < {N}; ++k) acc_{i}[k] = 0;")
            for src, f in zip(code.inputs, fr):
                code.body.append(f"    k_align_add<{N}, {F - f}, {L}>({src}, acc_{i});")
            code.body.append(f"    k_requant<{N}, {F - of}, {ob}, {L}>(acc_{i}, {code.buf});")
        else:
            CopyEmitter().emit(code)

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        nd = e.nd
        if nd["params"].get("skip_type") == "concatenate":
            return elementwise_estimate(e, trips=_concat_trips(e))
        if nd["kind"] == "requant":  # residual: one aligning pass per input, one rounding pass
            return elementwise_estimate(e, trips=lambda lanes: (len(nd["inputs"]) + 1) * math.ceil(e.N / lanes))
        return elementwise_estimate(e)


class ChannelSplitEmitter(Emitter):
    """ChannelSplit (grid-preserving): chunk k of the input into b_s<k>_<id>, read by the k-th out-edge."""

    multi_output = True

    def emit(self, code: NodeCode) -> None:
        code.kernel("split")
        for k, (outer, inner, total, off) in enumerate(split_chunks(code.nd)):
            code.body.append(f"    static int64_t b_s{k}_{code.ident}[{outer * inner}];")
            code.body.append(f"    k_split<{outer}, {inner}, {total}, {off}, {code.lanes}>({code.inputs[0]}, b_s{k}_{code.ident});")

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        # copies its whole input, one loop per chunk (output_shape is chunk 0's only)
        chunks = split_chunks(e.nd)
        return elementwise_estimate(e, items=int(np.prod(e.nd["input_shapes"][0])),
                                    trips=lambda lanes: sum(math.ceil(outer * inner / lanes) for outer, inner, _, _ in chunks))  # fmt: skip


class DelayEmitter(Emitter):
    """Delay (grid-preserving): the input of `delay` steps ago, from a ring of static state."""

    def emit(self, code: NodeCode) -> None:
        code.kernel("delay")
        n, i, N, L = code.name, code.ident, code.N, code.lanes
        ln = delay_length(code.desc, n)
        code.consts.append(c_array(f"d_{i}", np.broadcast_to(np.asarray(code.arr("delay")), code.shape).reshape(-1)))
        code.state.append(f"    static int64_t dl_{i}[{ln}][{N}];  // the last {ln} inputs of {c_string(n)} (ring)")
        code.state.append(f"    static int dh_{i} = 0;  // ring slot of this step's input")
        code.reset.append(f"        for (int s = 0; s < {ln}; ++s) for (int k = 0; k < {N}; ++k) dl_{i}[s][k] = 0;")
        code.reset.append(f"        dh_{i} = 0;")
        code.body.append(f"    k_delay<{N}, {ln}, {L}>({code.inputs[0]}, dl_{i}, dh_{i}, d_{i}, {code.buf});")
        code.body.append(f"    dh_{i} = (dh_{i} + 1) % {ln};")

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        ln, ob, N = delay_length(e.desc, e.name), int(e.nd["out_format"][0]), e.N

        def arrays(lanes: int) -> tuple[int, int]:  # the ring of LEN x N words and the per-element delays
            b1, l1 = bram(ln * N * ob, lanes, ob)
            b2, l2 = bram(N * ln.bit_length(), lanes, ln.bit_length())
            return b1 + b2, l1 + l2

        return elementwise_estimate(e, extra=arrays)


register_emitter("Input", InputEmitter())
register_emitter("Output", CopyEmitter(port=True))
for _t in ("Flatten", "Dropout", "HybridRegion"):
    register_emitter(_t, CopyEmitter())
register_emitter("ReLU", ReLUEmitter())
register_emitter("Threshold", ThresholdEmitter())
register_emitter("Concat", ConcatEmitter())
register_emitter("Skip", SkipEmitter())
register_emitter("ChannelSplit", ChannelSplitEmitter())
register_emitter("Delay", DelayEmitter())
