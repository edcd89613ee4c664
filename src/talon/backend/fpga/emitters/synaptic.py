"""Emitters of the synaptic primitives (Affine, Linear, SpikingAffine, Conv2d, Conv1d, SepConv2d, Scale):
ACC = W.X + B exact, sat_acc, rhu to the output format, sat (docs/fixed_point.md, Synaptic layers)."""

from __future__ import annotations

import math

import numpy as np

from talon.backend.fpga.cgen import c_array, check_wide_sum
from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate
from talon.backend.fpga.emitters.registry import Emitter, register_emitter
from talon.backend.fpga.model import LayerEstimate, bram, sepconv_z_bits, spike_fed
from talon.backend.fpga.names import c_string
from talon.errors import BackendError


def _check_kind(code: NodeCode) -> None:
    nd = code.nd
    if nd["kind"] != "synaptic":
        raise BackendError(f"the fpga backend cannot realise node {code.name!r} ({nd['type']}, kind {nd['kind']})")


def _weights(code: NodeCode) -> tuple[np.ndarray, int, int]:
    """(W, input bits, SHIFT) and the weight/bias constants of a layer with `weight` (and `bias`)."""
    _check_kind(code)
    W = code.arr("weight")
    B = code.arr("bias")
    if B is None:
        B = np.zeros(W.shape[0], np.int64)
    code.consts.append(c_array(f"w_{code.ident}", W))
    code.consts.append(c_array(f"bias_{code.ident}", B))
    return W, code.nd["in_formats"][0][0], int(code.nd["acc_frac"]) - code.out_format[1]


def _weight_bits(nd: dict, default: int = 16) -> int:
    return int(nd["attrs"].get("weight_bits", default))


def synaptic_estimate(e: NodeEstimate) -> LayerEstimate:
    """One loop over every multiply-accumulate, ceil(macs / R) lanes (Scale: a fan-in of one)."""
    nd, N, shape = e.nd, e.N, e.shape
    dsp_a, dsp_b = e.dsp_tile
    dsp = lut = 0
    W = e.desc.arrays.get(f"{e.name}/weight")
    if W is None:  # Scale: one factor per element, a fan-in of one
        W = np.broadcast_to(e.desc.arrays[f"{e.name}/scale"], tuple(shape)).reshape(N, 1)
    wb = _weight_bits(nd, 8)
    ib = int(nd["in_formats"][0][0])
    macs = int(N * (W.size // W.shape[0]))
    lanes = max(1, math.ceil(macs / e.R))
    cycles = math.ceil(macs / lanes) + 5
    hi, lo = max(wb, ib), min(wb, ib)
    if spike_fed(e.nodes, nd):
        lut += lanes * int(nd["acc_bits"])
    elif wb * ib <= 32:
        lut += lanes * (wb * ib // 2 + int(nd["acc_bits"]))
    else:
        dsp += lanes * math.ceil(hi / dsp_a) * math.ceil(lo / dsp_b)
        lut += lanes * int(nd["acc_bits"])
    b, lu = bram(int(W.size) * wb, lanes, wb)
    return LayerEstimate(e.name, nd["type"], macs, lanes, cycles, dsp, b, lut + lu + 100)


class SynapticEmitter(Emitter):
    """A layer whose resources and latency follow its multiply-accumulates (synaptic_estimate)."""

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        return synaptic_estimate(e)


class AffineEmitter(SynapticEmitter):
    """Affine / Linear / SpikingAffine: k_affine."""

    def emit(self, code: NodeCode) -> None:
        W, ib, shift = _weights(code)
        code.kernel("affine")
        n_out, n_in = W.shape
        check_wide_sum(code.name, ib, _weight_bits(code.nd), n_in)
        i, nd, (ob, _) = code.ident, code.nd, code.out_format
        code.body.append(f"    k_affine<{n_in}, {n_out}, {nd['acc_bits']}, {shift}, {ob}, {code.lanes}>({code.inputs[0]}, w_{i}, bias_{i}, {code.buf});")


class Conv2dEmitter(SynapticEmitter):
    """Conv2d (CHW, zero padding, stride, dilation, groups): k_conv2d."""

    def emit(self, code: NodeCode) -> None:
        W, ib, shift = _weights(code)
        code.kernel("conv2d")
        nd, n, i, (ob, _) = code.nd, code.name, code.ident, code.out_format
        p = nd["params"]
        C, H, Wd = code.in_shapes[0]
        O, Cg, KH, KW = W.shape
        check_wide_sum(n, ib, _weight_bits(nd), Cg * KH * KW)
        _, HO, WO = code.shape
        sh, sw = p["stride"]
        ph, pw = p["padding"] if not isinstance(p["padding"], str) else (None, None)
        if ph is None:
            raise BackendError(f"node {n!r}: string padding {p['padding']!r} is not supported by the fpga backend")
        dh, dw = p.get("dilation", [1, 1])
        g = int(p.get("groups", 1))
        code.body.append(f"    k_conv2d<{C}, {H}, {Wd}, {O}, {KH}, {KW}, {sh}, {sw}, {ph}, {pw}, {dh}, {dw}, {g}, {HO}, {WO}, "
                         f"{nd['acc_bits']}, {shift}, {ob}, {code.lanes}>({code.inputs[0]}, w_{i}, bias_{i}, {code.buf});")  # fmt: skip


class Conv1dEmitter(SynapticEmitter):
    """Conv1d: Conv2d's kernel on a (C, 1, L) image with (1, K) windows (one source of the rule)."""

    def emit(self, code: NodeCode) -> None:
        W, ib, shift = _weights(code)
        code.kernel("conv2d")
        nd, n, i, (ob, _) = code.nd, code.name, code.ident, code.out_format
        p = nd["params"]
        C, Ln = code.in_shapes[0]
        O, Cg, KW = W.shape
        check_wide_sum(n, ib, _weight_bits(nd), Cg * KW)
        _, LO = code.shape
        code.consts[0] = c_array(f"w_{i}", W, (O, Cg, 1, KW))
        code.body.append(f"    k_conv2d<{C}, 1, {Ln}, {O}, 1, {KW}, 1, {int(p['stride'])}, 0, {int(p['padding'])}, 1, {int(p['dilation'])}, "
                         f"{int(p.get('groups', 1))}, 1, {LO}, {nd['acc_bits']}, {shift}, {ob}, {code.lanes}>({code.inputs[0]}, w_{i}, bias_{i}, {code.buf});")  # fmt: skip


class SepConv2dEmitter(Emitter):
    """SepConv2d: depthwise then pointwise with one rounding at the end, Z exact in between (k_sepconv2d)."""

    def emit(self, code: NodeCode) -> None:
        _check_kind(code)
        code.kernel("sepconv2d")
        nd, n, i, (ob, of) = code.nd, code.name, code.ident, code.out_format
        p = nd["params"]
        ib, shift = nd["in_formats"][0][0], int(nd["acc_frac"]) - of
        DW, DB, PW, PB = (code.arr(k) for k in ("depthwise_weight", "depthwise_bias", "pointwise_weight", "pointwise_bias"))
        C, H, Wd = code.in_shapes[0]
        O, HO, WO = code.shape
        KH, KW = int(DW.shape[2]), int(DW.shape[3])
        wb = _weight_bits(nd)
        zb = sepconv_z_bits(code.desc, nd)
        check_wide_sum(n, ib, wb, KH * KW)
        check_wide_sum(n, zb, wb, C)  # the pointwise stage sums W x Z, Z exact
        code.consts[:] = [c_array(f"dw_{i}", DW), c_array(f"db_{i}", np.zeros(C, np.int64) if DB is None else DB),
                          c_array(f"pw_{i}", PW), c_array(f"pb_{i}", np.zeros(O, np.int64) if PB is None else PB)]  # fmt: skip
        (sh, sw), (ph, pw), (dh, dw) = p["stride"], p["padding"], p.get("dilation", [1, 1])
        code.body.append(f"    static int64_t z_{i}[{C * HO * WO}];  // exact depthwise sums of {c_string(n)}")
        code.body.append(f"    k_sepconv2d<{C}, {H}, {Wd}, {O}, {KH}, {KW}, {sh}, {sw}, {ph}, {pw}, {dh}, {dw}, {HO}, {WO}, "
                         f"{nd['acc_bits']}, {shift}, {ob}, {code.lanes}>({code.inputs[0]}, dw_{i}, db_{i}, pw_{i}, pb_{i}, z_{i}, {code.buf});")  # fmt: skip

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        # two loops (depthwise, then pointwise over the exact Z buffer) at the same lanes, like k_sepconv2d
        nd, name = e.nd, e.name
        dsp_a, dsp_b = e.dsp_tile
        dsp = lut = 0
        DW, PW = e.desc.arrays[f"{name}/depthwise_weight"], e.desc.arrays[f"{name}/pointwise_weight"]
        O, HO, WO = (int(v) for v in e.shape)
        C = int(DW.shape[0])
        dw_work, pw_work = C * HO * WO * int(DW.shape[2] * DW.shape[3]), O * HO * WO * C
        wb, zb = _weight_bits(nd, 8), sepconv_z_bits(e.desc, nd)
        work = dw_work + pw_work
        lanes = max(1, math.ceil(work / e.R))
        cycles = math.ceil(dw_work / lanes) + math.ceil(pw_work / lanes) + 5
        # a lane's multiplier must take the wider pointwise product, W x Z (Z is never binary spikes)
        hi, lo = max(wb, zb), min(wb, zb)
        if wb * zb <= 32:
            lut += lanes * (wb * zb // 2 + int(nd["acc_bits"]))
        else:
            dsp += lanes * math.ceil(hi / dsp_a) * math.ceil(lo / dsp_b)
            lut += lanes * int(nd["acc_bits"])
        b1, l1 = bram(int(DW.size + PW.size) * wb, lanes, wb)
        b2, l2 = bram(C * HO * WO * zb, lanes, zb)  # the Z buffer between the loops
        return LayerEstimate(name, nd["type"], work, lanes, cycles, dsp, b1 + b2, lut + l1 + l2 + 100)


class ScaleEmitter(SynapticEmitter):
    """Scale (y = x * s elementwise): the synaptic rule with a fan-in of one (k_scale)."""

    def emit(self, code: NodeCode) -> None:
        code.kernel("scale")
        nd, i, (ob, of) = code.nd, code.ident, code.out_format
        check_wide_sum(code.name, nd["in_formats"][0][0], _weight_bits(nd), 1)
        code.consts.append(c_array(f"w_{i}", np.broadcast_to(np.asarray(code.arr("scale")), code.shape).reshape(-1)))
        code.body.append(f"    k_scale<{code.N}, {nd['acc_bits']}, {int(nd['acc_frac']) - of}, {ob}, {code.lanes}>({code.inputs[0]}, w_{i}, {code.buf});")


for _t in ("Affine", "Linear", "SpikingAffine"):
    register_emitter(_t, AffineEmitter())
register_emitter("Conv2d", Conv2dEmitter())
register_emitter("Conv1d", Conv1dEmitter())
register_emitter("SepConv2d", SepConv2dEmitter())
register_emitter("Scale", ScaleEmitter())
