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
  with one `k_align_add` pass per input (exactly when talon.backend.fpga.emitters.neurons emits them; `align_passes`).
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
  `ARRAY_PARTITION` (talon.backend.fpga.cgen.partition_pragmas) so that `lanes` consecutive elements of a
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

from dataclasses import asdict, dataclass, field

from talon.backend.descriptor import HardwareDescriptor
from talon.backend.fpga.emitters import NodeEstimate, emitter_for
from talon.backend.fpga.model import LayerEstimate, align_passes  # noqa: F401  (align_passes: re-exported)
from talon.backend.fpga.names import c_string
from talon.backend.fpga.parts import PartPreset
from talon.errors import BackendError

MODEL = "talon-fpga-estimate-v2 (docs/fpga.md): cycles = ceil(work/lanes) + depth per layer, summed; lanes = ceil(work/R)"


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


def _layers(desc: HardwareDescriptor, preset: PartPreset, R: int) -> list[LayerEstimate]:
    """Each layer's estimate, from its own emitter (the piece that also writes its code)."""
    dsp_tile = (27, 18) if "zu" in preset.part else (25, 18)
    return [emitter_for(desc.nodes[name]["type"], name).estimate(NodeEstimate(desc, name, R, dsp_tile)) for name in desc.layer_order]


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
