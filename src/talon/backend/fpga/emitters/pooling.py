"""Emitters of the windowed grid operations: MaxPool2d, AvgPool2d, SumPool2d (one loop over every window
position) and Upsample (a nearest-neighbour gather)."""

from __future__ import annotations

import math

from talon.backend.fpga.cgen import c_array, upsample_map
from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate
from talon.backend.fpga.emitters.elementwise import elementwise_estimate
from talon.backend.fpga.emitters.registry import Emitter, register_emitter
from talon.backend.fpga.model import LayerEstimate
from talon.errors import BackendError


class PoolEmitter(Emitter):
    """Shared estimate: N * kh * kw window positions, ceil(work / R) lanes, depth 3."""

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        nd = e.nd
        k = nd["params"]["kernel_size"]
        work = e.N * int(k[0]) * int(k[1])
        lanes = max(1, math.ceil(work / e.R))
        cycles = math.ceil(work / lanes) + 3
        lut = lanes * 2 * int(nd["out_format"][0]) + 100
        return LayerEstimate(e.name, nd["type"], work, lanes, cycles, 0, 0, lut)


class MaxPool2dEmitter(PoolEmitter):
    def emit(self, code: NodeCode) -> None:
        code.kernel("maxpool2d")
        p = code.nd["params"]
        if p.get("ceil_mode"):
            raise BackendError(f"node {code.name!r}: MaxPool2d(ceil_mode=True) is not supported by the fpga backend")
        C, H, Wd = code.in_shapes[0]
        _, HO, WO = code.shape
        (kh, kw), (sh, sw), (ph, pw) = p["kernel_size"], p["stride"], p.get("padding", [0, 0])
        dh, dw = p.get("dilation", [1, 1])
        code.body.append(f"    k_maxpool2d<{C}, {H}, {Wd}, {kh}, {kw}, {sh}, {sw}, {ph}, {pw}, {dh}, {dw}, {HO}, {WO}, {code.lanes}>({code.inputs[0]}, {code.buf});")


class AvgPool2dEmitter(PoolEmitter):
    def emit(self, code: NodeCode) -> None:
        code.kernel("avgpool2d")
        p = code.nd["params"]
        if list(p.get("padding", [0, 0])) != [0, 0] or p.get("ceil_mode") or p.get("divisor_override") not in (None, 0):
            raise BackendError(f"node {code.name!r}: AvgPool2d with padding, ceil_mode or divisor_override is not supported by the fpga backend")
        C, H, Wd = code.in_shapes[0]
        _, HO, WO = code.shape
        (kh, kw), (sh, sw) = p["kernel_size"], p["stride"]
        ob, of = code.out_format
        fi = code.nd["in_formats"][0][1]
        up, down = (of - fi, 0) if of >= fi else (0, fi - of)
        code.body.append(f"    k_avgpool2d<{C}, {H}, {Wd}, {kh}, {kw}, {sh}, {sw}, {HO}, {WO}, {up}, {down}, {ob}, {code.lanes}>({code.inputs[0]}, {code.buf});")


class SumPool2dEmitter(PoolEmitter):
    def emit(self, code: NodeCode) -> None:
        code.kernel("sumpool2d")
        p = code.nd["params"]
        C, H, Wd = code.in_shapes[0]
        _, HO, WO = code.shape
        (kh, kw), (sh, sw), (ph, pw) = p["kernel_size"], p["stride"], p.get("padding", [0, 0])
        ob, of = code.out_format
        fi = code.nd["in_formats"][0][1]
        code.body.append(f"    k_sumpool2d<{C}, {H}, {Wd}, {kh}, {kw}, {sh}, {sw}, {ph}, {pw}, {HO}, {WO}, {fi - of}, {ob}, {code.lanes}>({code.inputs[0]}, {code.buf});")


class UpsampleEmitter(Emitter):
    """Upsample(nearest): a grid-preserving gather through the runtime's own pixel map."""

    def emit(self, code: NodeCode) -> None:
        code.kernel("upsample")
        C, H, Wd = code.in_shapes[0]
        _, HO, WO = code.shape
        i = code.ident
        code.consts.append(c_array(f"src_{i}", upsample_map(code.name, code.nd["params"], (H, Wd), (HO, WO))))
        code.body.append(f"    k_upsample<{C}, {H * Wd}, {HO * WO}, {code.lanes}>({code.inputs[0]}, src_{i}, {code.buf});")

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        return elementwise_estimate(e)


register_emitter("MaxPool2d", MaxPool2dEmitter())
register_emitter("AvgPool2d", AvgPool2dEmitter())
register_emitter("SumPool2d", SumPool2dEmitter())
register_emitter("Upsample", UpsampleEmitter())
