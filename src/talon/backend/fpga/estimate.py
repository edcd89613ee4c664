"""Latency and resource ESTIMATES of a generated HLS project (not synthesis results; docs/fpga.md).

The model (one place, documented, deliberately simple):

- Reuse factor R: every multiplier (or neuron-update lane) does R operations per timestep. A layer
  with M multiply-accumulates gets P = ceil(M / R) parallel multipliers; element-wise layers and
  neurons get ceil(N / R) lanes.
- Latency in cycles per timestep, per layer = ceil(work / lanes) (loop trip count at II = 1) plus a
  fixed pipeline depth (synaptic 5, neuron 6, pooling 3, other element-wise 2). The top function runs
  its layers one after the other, so `latency_cycles` is their sum; `interval_cycles_dataflow` is the
  largest layer (what `#pragma HLS DATAFLOW` would give between timesteps).
- DSP: a multiplier whose operands fit the part's DSP slice (25x18 on Zynq-7000, 27x18 on UltraScale+)
  costs one DSP per operand tile; products of at most 32 operand bits (e.g. 4-bit weights x 8-bit
  activations) are built from LUTs (about w*x/2 LUTs); layers fed by binary spikes (a LIF/IF with
  spike value 1, a Threshold or an Input declared as spikes upstream, through MaxPool2d/Flatten/copies)
  need no multiplier (weight or 0).
  Neuron lanes: 2 multiplies (beta*V, gain*I); CubaLIF lanes 4 (alpha*I and gain_in*x too), and a
  CubaLIF runs two loops of N (its current, then its membrane) with an N-word buffer between them.
- Neuron input alignment: a neuron with several inputs, or with one input whose fraction is not that of
  the aligned input sum (max of the state's and the inputs' fractions), first sums its inputs into a buffer
  with one `k_align_add` pass per input (exactly when talon.backend.fpga.hls emits them; `align_passes`).
  Each pass is another loop of N items at the neuron's lanes: + passes * ceil(N / lanes) cycles, and per
  lane one adder of the aligned word (widest input shifted to the sum's fraction, plus ceil(log2(inputs))
  carry bits) per pass; the N-word sum buffer is counted like any array (BRAM18K or LUTRAM).
- BRAM18K: a weight or state array of more than 4096 bits goes to block RAM:
  max(ceil(bits / 18432), ceil(lanes * word_bits / 36)) (two 18-bit ports per BRAM18K); smaller arrays
  are LUTRAM/registers (counted as LUTs: bits / 64).
- LUT: per lane one adder of the accumulator (or membrane) width, plus LUT multipliers, plus 100 LUTs
  of control per layer.
- R = "auto": the smallest power of two for which DSP and LUT fit 80 % of the part.
- The generated kernels carry exactly this structure: each layer is one loop over its `work` items
  (synaptic: every multiply-accumulate; pooling: every window position) with `#pragma HLS PIPELINE II=1`
  and `#pragma HLS UNROLL factor=<lanes>`, and the arrays it touches are split cyclically by
  `ARRAY_PARTITION` (talon.backend.fpga.hls.partition_pragmas) so that `lanes` consecutive elements of a
  row sit in separate banks; where a flattened loop crosses a row whose length is not a multiple of
  the banks, two of its lanes can meet in one bank, and HLS may then miss II = 1 (results are unchanged;
  the estimate assumes II = 1).
  SepConv2d runs two loops at the same lanes (C*Ho*Wo*kh*kw depthwise, O*Ho*Wo*C pointwise) with its exact
  depthwise words in a C*Ho*Wo buffer between them; ChannelSplit one loop per chunk over its whole input;
  Delay one loop of N with a ring of (max(delay) + 1) x N words.
  Multi-input nodes run one such loop per input: Concat/Skip(concatenate) one per input's part,
  residual Skip one per input plus the rounding pass, a neuron one alignment pass per input (above).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from talon.backend.descriptor import HardwareDescriptor
from talon.backend.fpga.names import c_string
from talon.backend.fpga.parts import PartPreset
from talon.errors import BackendError
from talon.ir.node import get_node_class
from talon.sdk.fixed_point import exact_sum_bits

MODEL = "talon-fpga-estimate-v2 (docs/fpga.md): cycles = ceil(work/lanes) + depth per layer, summed; lanes = ceil(work/R)"


@dataclass(frozen=True)
class LayerEstimate:
    name: str
    type: str
    work: int
    lanes: int
    cycles: int
    dsp: int
    bram_18k: int
    lut: int


@dataclass
class Estimates:
    """ESTIMATES (see the module docstring for the model); not results of synthesis."""

    part: str
    clock_mhz: float
    reuse_factor: int
    latency_cycles: int
    interval_cycles_dataflow: int
    latency_us: float
    dsp: int
    bram_18k: int
    lut: int
    utilisation: dict[str, float]
    layers: list[LayerEstimate] = field(default_factory=list)
    model: str = MODEL
    label: str = "estimate"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["layers"] = [asdict(x) for x in self.layers]
        return d

    def to_markdown(self, heading: bool = True) -> str:
        L = ["# Estimates (not synthesis results)\n"] if heading else []
        L.append(f"Model: {self.model}. Part {self.part}, clock {self.clock_mhz:g} MHz, reuse factor {self.reuse_factor}.\n")
        L.append(f"- latency: **{self.latency_cycles:,} cycles per timestep** (estimate), {self.latency_us:.3f} us; "
                 f"with DATAFLOW the interval would be {self.interval_cycles_dataflow:,} cycles")  # fmt: skip
        u = self.utilisation
        L.append(f"- resources (estimate): DSP {self.dsp:,} ({u['dsp']:.1f} %), BRAM18K {self.bram_18k:,} ({u['bram_18k']:.1f} %), LUT {self.lut:,} ({u['lut']:.1f} %)\n")
        L.append(f"- pragmas: every layer loop is `PIPELINE II=1` with `UNROLL factor=<lanes>` (lanes = ceil(work / {self.reuse_factor})); "
                 "its arrays are `ARRAY_PARTITION`ed for `lanes` accesses per cycle\n")  # fmt: skip
        L.append("| layer | type | work | lanes | cycles | DSP | BRAM18K | LUT |\n|---|---|---|---|---|---|---|---|")
        for x in self.layers:
            L.append(f"| {c_string(x.name)} | {x.type} | {x.work:,} | {x.lanes:,} | {x.cycles:,} | {x.dsp} | {x.bram_18k} | {x.lut:,} |")
        return "\n".join(L) + "\n"


def _bram(bits: int, lanes: int, word: int) -> tuple[int, int]:
    """(BRAM18K, LUT) for an array of `bits` read by `lanes` lanes of `word` bits."""
    if bits <= 4096:
        return 0, math.ceil(bits / 64)
    return max(math.ceil(bits / 18432), math.ceil(lanes * word / 36)), 0


def _spike_fed(nodes: dict, nd: dict) -> bool:
    """True when the layer's input is binary spikes: a LIF/IF (graded factor 1), a Threshold or an Input
    declared as spikes (`Input.spikes`) upstream, through grid-preserving single-input nodes (MaxPool2d,
    Flatten, Dropout, ...)."""
    seen = 0
    while nd["inputs"] and seen < 10000:
        src = nodes[nd["inputs"][0]]
        if src["type"] == "Input":
            return bool(src["params"].get("spikes", False))
        if get_node_class(src["type"]).spiking and src["params"].get("graded_spikes_factor", 1.0) == 1.0:
            return True
        if src["kind"] != "pass" or len(src["inputs"]) != 1 or src["type"] == "ReLU":
            return False
        nd, seen = src, seen + 1
    return False


def align_passes(nd: dict) -> tuple[int, int]:
    """(passes, word bits) of the input alignment that talon.backend.fpga.hls generates in front of a neuron
    (node dict of a descriptor): one k_align_add pass per input unless the neuron has a single input already
    at the fraction of the aligned input sum, Fm = max(state fraction, input fractions), where the state is
    the membrane or, for a CubaLIF, the current its inputs drive. The word holds the widest input shifted
    up to Fm plus the carries of summing them; (0, 0) when no alignment is generated."""
    fmts = [(int(b), int(f)) for b, f in nd["in_formats"]]
    Fm = aligned_fraction(nd)
    if not fmts or (len(fmts) == 1 and fmts[0][1] == Fm):
        return 0, 0
    return len(fmts), max(b + Fm - f for b, f in fmts) + math.ceil(math.log2(len(fmts)))


def aligned_fraction(nd: dict) -> int:
    """Fm, the fraction a neuron's inputs are aligned to before they are summed: the finest of the state
    they drive (the membrane, or a CubaLIF's current) and the inputs themselves."""
    state = nd["current"] if nd.get("current") is not None else nd["membrane"]
    return max([int(state[1])] + [int(f) for _, f in nd["in_formats"]])


def split_chunks(nd: dict) -> list[tuple[int, int, int, int]]:
    """ChannelSplit (node dict of a descriptor): (OUTER, INNER, TOTAL, OFFSET) of each chunk, in section order,
    the row-major (OUTER, TOTAL) view of the input around the split dimension that hls.py's k_split copies
    from (chunk k goes to the split's k-th outgoing edge, like the bridge's ChannelSplitRuntime)."""
    shape = [int(v) for v in nd["input_shapes"][0]]
    d = int(nd["params"].get("dim", 0)) % len(shape)
    outer, row = int(np.prod(shape[:d], dtype=np.int64)), int(np.prod(shape[d + 1 :], dtype=np.int64))
    out, off = [], 0
    for sec in nd["params"]["split_sections"]:
        out.append((outer, int(sec) * row, shape[d] * row, off * row))
        off += int(sec)
    return out


def delay_length(desc: HardwareDescriptor, name: str) -> int:
    """LEN of a Delay's ring buffer: max(delay) + 1 steps (the bridge's DelayRuntime history length)."""
    d = np.asarray(desc.arrays[f"{name}/delay"])
    return int(d.max()) + 1 if d.size else 1


def sepconv_z_bits(desc: HardwareDescriptor, nd: dict) -> int:
    """Width of a SepConv2d's exact depthwise word Z (sum of kh*kw products plus the depthwise bias, never
    rounded): the exact-sum rule of the depthwise stage, or the depthwise bias integers' width (at most
    acc_bits; fixed-point version 3 shifts a wide bias up rather than saturating it to bias_bits) plus a
    carry when that is wider."""
    dw = desc.arrays[f"{nd['name']}/depthwise_weight"]
    wb = int(nd["attrs"].get("weight_bits", 8))
    db = desc.arrays.get(f"{nd['name']}/depthwise_bias")
    bias = int(np.max(np.abs(np.asarray(db, np.int64)), initial=0)).bit_length() + 1 if db is not None else 1
    return max(exact_sum_bits(int(nd["in_formats"][0][0]), wb, int(dw.shape[2] * dw.shape[3])), bias + 1)


def _layers(desc: HardwareDescriptor, preset: PartPreset, R: int) -> list[LayerEstimate]:
    nodes = desc.nodes
    dsp_a, dsp_b = (27, 18) if "zu" in preset.part else (25, 18)
    out = []
    for name in desc.layer_order:
        nd = nodes[name]
        t, kind = nd["type"], nd["kind"]
        shape = nd["output_shape"] or []
        N = int(np.prod(shape)) if shape else 1
        dsp = bram = lut = 0
        if t == "SepConv2d":
            # two loops (depthwise, then pointwise over the exact Z buffer) at the same lanes, like k_sepconv2d
            DW, PW = desc.arrays[f"{name}/depthwise_weight"], desc.arrays[f"{name}/pointwise_weight"]
            O, HO, WO = (int(v) for v in shape)
            C = int(DW.shape[0])
            dw_work, pw_work = C * HO * WO * int(DW.shape[2] * DW.shape[3]), O * HO * WO * C
            wb, zb = int(nd["attrs"].get("weight_bits", 8)), sepconv_z_bits(desc, nd)
            work = dw_work + pw_work
            lanes = max(1, math.ceil(work / R))
            cycles = math.ceil(dw_work / lanes) + math.ceil(pw_work / lanes) + 5
            # a lane's multiplier must take the wider pointwise product, W x Z (Z is never binary spikes)
            hi, lo = max(wb, zb), min(wb, zb)
            if wb * zb <= 32:
                lut += lanes * (wb * zb // 2 + int(nd["acc_bits"]))
            else:
                dsp += lanes * math.ceil(hi / dsp_a) * math.ceil(lo / dsp_b)
                lut += lanes * int(nd["acc_bits"])
            b1, l1 = _bram(int(DW.size + PW.size) * wb, lanes, wb)
            b2, l2 = _bram(C * HO * WO * zb, lanes, zb)  # the Z buffer between the loops
            bram, lut = b1 + b2, lut + l1 + l2 + 100
        elif kind == "synaptic":
            W = desc.arrays.get(f"{name}/weight")
            if W is None:  # Scale: one factor per element, a fan-in of one
                W = np.broadcast_to(desc.arrays[f"{name}/scale"], tuple(shape)).reshape(N, 1)
            wb = int(nd["attrs"].get("weight_bits", 8))
            ib = int(nd["in_formats"][0][0])
            macs = int(N * (W.size // W.shape[0]))
            lanes = max(1, math.ceil(macs / R))
            cycles = math.ceil(macs / lanes) + 5
            spike_fed = _spike_fed(nodes, nd)
            hi, lo = max(wb, ib), min(wb, ib)
            if spike_fed:
                lut += lanes * int(nd["acc_bits"])
            elif wb * ib <= 32:
                lut += lanes * (wb * ib // 2 + int(nd["acc_bits"]))
            else:
                dsp += lanes * math.ceil(hi / dsp_a) * math.ceil(lo / dsp_b)
                lut += lanes * int(nd["acc_bits"])
            b, lu = _bram(int(W.size) * wb, lanes, wb)
            bram, lut = bram + b, lut + lu + 100
            work = macs
        elif kind == "neuron":
            mb = int(nd["membrane"][0])
            # CubaLIF adds its current: a second state, alpha*I and gain_in*x, two more constants
            cuba = nd.get("current") is not None
            mults, adders, states, consts = (4, 6, 2, 7) if cuba else (2, 4, 1, 5)
            lanes = max(1, math.ceil(N / R))
            # CubaLIF runs two loops of N (k_current, then k_neuron) with the new current in between
            loops = 2 if cuba else 1
            cycles = loops * math.ceil(N / lanes) + 6
            dsp = mults * lanes * math.ceil(mb / dsp_a)
            lut = lanes * adders * mb + 100
            b1, l1 = _bram(N * mb * (states + loops - 1), lanes, mb * states)  # membrane (and current, its y buffer)
            b2, l2 = _bram(N * consts * 24, lanes, consts * 24)  # beta, gain, leak, threshold, reset (alpha, gain_in)
            bram, lut = b1 + b2, lut + l1 + l2
            # inputs in several formats are summed first, pass by pass, like a residual Skip (hls.py's isum buffer)
            passes, word = align_passes(nd)
            if passes:
                b3, l3 = _bram(N * word, lanes, word)
                cycles += passes * math.ceil(N / lanes)
                bram, lut = bram + b3, lut + passes * lanes * word + l3
            work = N
        elif t in ("MaxPool2d", "AvgPool2d", "SumPool2d"):
            k = nd["params"]["kernel_size"]
            work = N * int(k[0]) * int(k[1])
            lanes = max(1, math.ceil(work / R))
            cycles = math.ceil(work / lanes) + 3
            lut = lanes * 2 * int(nd["out_format"][0]) + 100
        else:
            if t == "ChannelSplit":  # copies its whole input, one loop per chunk (output_shape is chunk 0's only)
                N = int(np.prod(nd["input_shapes"][0]))
            work = N
            lanes = max(1, math.ceil(N / R))
            if t == "ChannelSplit":
                cycles = sum(math.ceil(outer * inner / lanes) for outer, inner, _, _ in split_chunks(nd)) + 2
            elif t == "Concat" or (t == "Skip" and nd["params"].get("skip_type") == "concatenate"):  # one loop per input part
                cycles = sum(math.ceil(int(np.prod(s)) / lanes) for s in nd["input_shapes"]) + 2
            elif t == "Skip" and kind == "requant":  # residual: one aligning pass per input, one rounding pass
                cycles = (len(nd["inputs"]) + 1) * math.ceil(N / lanes) + 2
            else:
                cycles = math.ceil(N / lanes) + 2
            lut = lanes * int(nd["out_format"][0]) + (100 if t != "Input" else 20)
            if t == "Delay":  # the ring of LEN x N words (static state) and the per-element delays
                ln, ob = delay_length(desc, name), int(nd["out_format"][0])
                b1, l1 = _bram(ln * N * ob, lanes, ob)
                b2, l2 = _bram(N * ln.bit_length(), lanes, ln.bit_length())
                bram, lut = b1 + b2, lut + l1 + l2
        out.append(LayerEstimate(name, t, work, lanes, cycles, dsp, bram, lut))
    return out


def estimate_descriptor(desc: HardwareDescriptor, preset: PartPreset, *, reuse_factor: int | str = "auto", clock_mhz: float | None = None) -> Estimates:
    """Estimates for the project generated from `desc` on `preset` (see the module docstring)."""
    clock = float(clock_mhz or preset.clock_mhz)
    if reuse_factor == "auto":
        R = 1
        while True:
            layers = _layers(desc, preset, R)
            if (sum(x.dsp for x in layers) <= 0.8 * preset.dsp and sum(x.lut for x in layers) <= 0.8 * preset.lut) or R >= 1 << 24:
                break
            R *= 2
    elif isinstance(reuse_factor, int) and not isinstance(reuse_factor, bool) and reuse_factor >= 1:
        R = reuse_factor
        layers = _layers(desc, preset, R)
    else:
        raise BackendError(f"reuse_factor must be a positive integer or 'auto', got {reuse_factor!r}")
    cyc = sum(x.cycles for x in layers)
    dsp, bram, lut = sum(x.dsp for x in layers), sum(x.bram_18k for x in layers), sum(x.lut for x in layers)
    util = {"dsp": round(100 * dsp / preset.dsp, 2), "bram_18k": round(100 * bram / preset.bram_18k, 2), "lut": round(100 * lut / preset.lut, 2)}
    return Estimates(preset.part, clock, R, cyc, max((x.cycles for x in layers), default=0), round(cyc / clock, 6), dsp, bram, lut, util, layers)
