"""Emitters of the neurons (LIF, IF, LI, Integrator, CubaLIF): input alignment, CubaLIF's current, then the
membrane (docs/fixed_point.md section 3); membrane and spike taps."""

from __future__ import annotations

import math

import numpy as np

from talon.backend.fpga.cgen import c_array
from talon.backend.fpga.emitters.context import NodeCode, NodeEstimate
from talon.backend.fpga.emitters.registry import Emitter, register_emitter
from talon.backend.fpga.model import LayerEstimate, align_passes, aligned_fraction, bram
from talon.backend.fpga.names import c_string
from talon.errors import BackendError
from talon.ir.node import get_node_class

_MODES = {"none": 0, "subtract": 1, "zero": 2, "zero_post": 3}


class NeuronEmitter(Emitter):
    """k_align_add passes when the inputs need aligning, k_current for a CubaLIF, then k_neuron."""

    def emit(self, code: NodeCode) -> None:
        nd, n, i, t = code.nd, code.name, code.ident, code.nd["type"]
        if nd["kind"] != "neuron":
            raise BackendError(f"the fpga backend cannot realise node {n!r} ({t}, kind {nd['kind']})")
        code.kernel("neuron")
        N, L, c, shape, buf = code.N, code.lanes, code.coef_frac, code.shape, code.buf
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
            a = code.arr(key)
            a = np.asarray(default if a is None else a, np.int64)
            return np.broadcast_to(a.reshape(a.shape) if a.ndim else a, shape).reshape(-1)

        code.consts.append(c_array(f"beta_{i}", full("beta", 1 << c)))
        code.consts.append(c_array(f"gain_{i}", full("gain", 0)))
        code.consts.append(c_array(f"leak_{i}", full("leak", 0)))
        code.consts.append(c_array(f"thr_{i}", full("v_threshold", 0)))
        code.consts.append(c_array(f"vreset_{i}", full("v_reset", 0)))
        gsa = code.arr("graded_spikes_factor")
        gs = int(np.asarray(gsa).reshape(-1)[0]) if gsa is not None else 1
        if align_passes(nd)[0] == 0:  # one input, already at Fm (the estimate counts the same passes)
            src = code.inputs[0]
        else:
            code.kernel("align")
            code.body.append(f"    static int64_t isum_{i}[{N}];")
            code.body.append(f"    for (int k = 0; k < {N}; ++k) isum_{i}[k] = 0;")
            for s, f in zip(code.inputs, fr):
                code.body.append(f"    k_align_add<{N}, {Fm - f}, {L}>({s}, isum_{i});")
            src = f"isum_{i}"
        if cuba:
            code.kernel("current")
            code.consts.append(c_array(f"alpha_{i}", full("alpha", 0)))
            code.consts.append(c_array(f"gin_{i}", full("gain_in", 1 << c)))
            Fv = max(fv, fi)  # the membrane stage reads the current aligned to this fraction
            code.state.append(f"    static int64_t cur_{i}[{N}];  // synaptic current of {c_string(n)}, Q{ib}.{fi}")
            code.reset.append(f"        for (int k = 0; k < {N}; ++k) cur_{i}[k] = 0;")
            code.body.append(f"    static int64_t y_{i}[{N}];")
            code.body.append(f"    k_current<{N}, {ib}, {Fm - fi}, {c + Fm - fi}, {Fv - fi}, {L}>({src}, cur_{i}, alpha_{i}, gin_{i}, y_{i});")
            src, Fm = f"y_{i}", Fv
        code.state.append(f"    static int64_t v_{i}[{N}];  // membrane of {c_string(n)}, Q{mb}.{fv}")
        code.reset.append(f"        for (int k = 0; k < {N}; ++k) v_{i}[k] = 0;")
        code.body.append(f"    static int64_t m_{i}[{N}];")
        code.body.append(f"    k_neuron<{N}, {_MODES[mode]}, {str(delay).lower()}, {str(spiking).lower()}, {mb}, {Fm - fv}, {Fm + c - fv}, {L}>"
                         f"({src}, v_{i}, beta_{i}, gain_{i}, leak_{i}, thr_{i}, vreset_{i}, (int64_t){gs}, {buf}, m_{i});")  # fmt: skip
        code.membrane_tap((mb, fv), f"m_{i}")
        if spiking:
            code.spike_tap()

    def estimate(self, e: NodeEstimate) -> LayerEstimate:
        nd, N = e.nd, e.N
        dsp_a = e.dsp_tile[0]
        mb = int(nd["membrane"][0])
        # CubaLIF adds its current: a second state, alpha*I and gain_in*x, two more constants
        cuba = nd.get("current") is not None
        mults, adders, states, consts = (4, 6, 2, 7) if cuba else (2, 4, 1, 5)
        lanes = max(1, math.ceil(N / e.R))
        # CubaLIF runs two loops of N (k_current, then k_neuron) with the new current in between
        loops = 2 if cuba else 1
        cycles = loops * math.ceil(N / lanes) + 6
        dsp = mults * lanes * math.ceil(mb / dsp_a)
        lut = lanes * adders * mb + 100
        b1, l1 = bram(N * mb * (states + loops - 1), lanes, mb * states)  # membrane (and current, its y buffer)
        b2, l2 = bram(N * consts * 24, lanes, consts * 24)  # beta, gain, leak, threshold, reset (alpha, gain_in)
        brams, lut = b1 + b2, lut + l1 + l2
        # inputs in several formats are summed first, pass by pass, like a residual Skip (the isum buffer)
        passes, word = align_passes(nd)
        if passes:
            b3, l3 = bram(N * word, lanes, word)
            cycles += passes * math.ceil(N / lanes)
            brams, lut = brams + b3, lut + passes * lanes * word + l3
        return LayerEstimate(e.name, nd["type"], N, lanes, cycles, dsp, brams, lut)


for _t in ("LIF", "IF", "LI", "Integrator", "CubaLIF"):
    register_emitter(_t, NeuronEmitter())
