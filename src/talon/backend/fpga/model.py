"""The estimate model's shared pieces (docs/fpga.md, "Estimates"), and the geometry that the generated code
and its estimate both follow (split chunks, delay rings, neuron input alignment, SepConv2d's Z word).

Each primitive's own figures live with its emitter (talon.backend.fpga.emitters), next to the code they
describe; talon.backend.fpga.estimate sums them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from talon.backend.descriptor import HardwareDescriptor
from talon.ir.node import get_node_class
from talon.sdk.fixed_point import exact_sum_bits


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


def bram(bits: int, lanes: int, word: int) -> tuple[int, int]:
    """(BRAM18K, LUT) for an array of `bits` read by `lanes` lanes of `word` bits."""
    if bits <= 4096:
        return 0, math.ceil(bits / 64)
    return max(math.ceil(bits / 18432), math.ceil(lanes * word / 36)), 0


def spike_fed(nodes: dict, nd: dict) -> bool:
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
    """(passes, word bits) of the input alignment that talon.backend.fpga.emitters.neurons generates in front of a neuron
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
    the row-major (OUTER, TOTAL) view of the input around the split dimension that the ChannelSplit emitter's k_split copies
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
