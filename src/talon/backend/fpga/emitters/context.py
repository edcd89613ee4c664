"""What an emitter reads and writes: NodeEstimate (one node of the descriptor, for the estimate) and
NodeCode (the same node while the top function is written, with the lists its code goes into)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon.backend.descriptor import HardwareDescriptor
from talon.backend.fpga import kernels as K
from talon.backend.fpga.model import LayerEstimate, align_passes, bram
from talon.errors import BackendError


def _size(shape: Any) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


@dataclass
class NodeEstimate:
    """One descriptor node seen by the estimate: reuse factor R, the part's DSP operand tile (a, b)."""

    desc: HardwareDescriptor
    name: str
    R: int
    dsp_tile: tuple[int, int]

    @property
    def nd(self) -> dict:
        return self.desc.nodes[self.name]

    @property
    def nodes(self) -> dict:
        return self.desc.nodes

    @property
    def shape(self) -> list[int]:
        return list(self.nd["output_shape"] or [])

    @property
    def N(self) -> int:
        return _size(self.shape)

    def neuron_layer(self, lanes: int, cycles: int, *, mults: int, adders: int, state_bits: int, state_width: int,
                     const_bits: int, const_width: int) -> LayerEstimate:
        """A neuron layer's resources from its datapath: `mults` multiplies and `adders` adders per lane at the
        membrane width, its state and constant memories (bits per neuron, bits read per lane), and the passes
        that first sum inputs arriving in several formats (the isum buffer), as its kernel runs them."""
        nd, N = self.nd, self.N
        mb = int(nd["membrane"][0])
        dsp = mults * lanes * math.ceil(mb / self.dsp_tile[0])
        lut = lanes * adders * mb + 100
        b1, l1 = bram(N * state_bits, lanes, state_width)
        b2, l2 = bram(N * const_bits, lanes, const_width)
        brams, lut = b1 + b2, lut + l1 + l2
        passes, word = align_passes(nd)
        if passes:
            b3, l3 = bram(N * word, lanes, word)
            cycles += passes * math.ceil(N / lanes)
            brams, lut = brams + b3, lut + passes * lanes * word + l3
        return LayerEstimate(self.name, nd["type"], N, lanes, cycles, dsp, brams, lut)


@dataclass
class ProjectCode:
    """What the whole top function collects from its nodes: port typedefs, ports and taps (manifest
    entries), and the kernels used (name -> C++ source, in first-use order)."""

    typedefs: list[str] = field(default_factory=list)
    ports_in: list[dict] = field(default_factory=list)
    ports_out: list[dict] = field(default_factory=list)
    taps_spk: list[dict] = field(default_factory=list)
    taps_mem: list[dict] = field(default_factory=list)
    kernels: dict[str, str] = field(default_factory=dict)


@dataclass
class NodeCode:
    """One node while the top function is written.

    Read: `desc`, `name`, `ident` (its C identifier), `nd` (descriptor node), `shape`/`N` (output),
    `out_format` (bits, frac), `inputs` (the buffers it reads, one per input edge, in order),
    `in_shapes`, `buf` (the int64 buffer `b_<ident>[N]` it must fill), `lanes` (its estimate's lanes:
    the kernels' UNROLL factor), `coef_frac` (the coefficient fraction c).
    Write: `body` (statements of the step, after its buffer's declaration), `state` (static state,
    declared before the reset), `reset` (statements run when reset is true), `consts` (constant arrays,
    written to firmware/weights/<ident>.h; see talon.backend.fpga.cgen.c_array), and through `kernel`,
    `port_out`, `spike_tap`, `membrane_tap` the project's kernels, ports and taps. Every `static` array
    declared in `body`, `state` or `consts` is partitioned for `lanes` by the top function."""

    desc: HardwareDescriptor
    name: str
    ident: str
    inputs: list[str]
    lanes: int
    project: ProjectCode
    body: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)
    consts: list[str] = field(default_factory=list)

    @property
    def nd(self) -> dict:
        return self.desc.nodes[self.name]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.nd["output_shape"] or ())

    @property
    def N(self) -> int:
        return _size(self.shape)

    @property
    def out_format(self) -> tuple[int, int]:
        ob, of = self.nd["out_format"]
        return int(ob), int(of)

    @property
    def in_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(s) for s in self.nd["input_shapes"]]

    @property
    def buf(self) -> str:
        return f"b_{self.ident}"

    @property
    def coef_frac(self) -> int:
        return int(self.desc.meta["fixed_point"]["coefficient_frac_bits"])

    def arr(self, key: str) -> Any:
        """The descriptor's integer array `<name>/<key>`, or None."""
        return self.desc.arrays.get(f"{self.name}/{key}")

    def aligned_input(self, frac: int) -> str:
        """The buffer a neuron reads: its one input when that already has fraction `frac`, else the sum of its
        inputs, each shifted to `frac`, pass by pass like a residual Skip (the estimate counts the same
        passes: talon.backend.fpga.model.align_passes)."""
        if align_passes(self.nd)[0] == 0:
            return self.inputs[0]
        i, N, L = self.ident, self.N, self.lanes
        self.kernel("align")
        self.body.append(f"    static int64_t isum_{i}[{N}];")
        self.body.append(f"    for (int k = 0; k < {N}; ++k) isum_{i}[k] = 0;")
        for s, (_, f) in zip(self.inputs, self.nd["in_formats"]):
            self.body.append(f"    k_align_add<{N}, {frac - int(f)}, {L}>({s}, isum_{i});")
        return f"isum_{i}"

    def kernel(self, name: str, source: str | None = None) -> None:
        """Use kernel `name`: a built-in (templates/kernels/<name>.h) when `source` is None, else the C++
        `source` (a user's template). One name, one source per project."""
        text = K.builtin_kernel(name) if source is None else source
        old = self.project.kernels.setdefault(name, text)
        if old != text:
            raise BackendError(f"node {self.name!r}: kernel {name!r} is already used with a different source; give the new kernel its own name")

    def _tap(self, kind: str, fmt: tuple[int, int], buffer: str) -> dict:
        b, f = fmt
        self.project.typedefs.append(f"typedef TALON_PORT_T({b}, {f}) {self.ident}_{kind}_t;")
        return {"name": self.name, "ident": self.ident, "shape": list(self.shape), "format": [b, f], "port": f"{kind}_{self.ident}",
                "type": f"{self.ident}_{kind}_t", "buffer": buffer}  # fmt: skip

    def port_in(self) -> None:
        """Make this node an input port of the top function, `in_<ident>`, in its output format."""
        p = self._tap("in", self.out_format, "")
        del p["buffer"]
        self.project.ports_in.append(p)

    def port_out(self) -> None:
        """Make `buf` an output port of the top function, `out_<ident>`."""
        self.project.ports_out.append(self._tap("out", self.out_format, self.buf))

    def spike_tap(self) -> None:
        """Expose `buf` as the spike port `spk_<ident>` (compared by verify)."""
        self.project.taps_spk.append(self._tap("spk", self.out_format, self.buf))

    def membrane_tap(self, fmt: tuple[int, int], buffer: str) -> None:
        """Expose `buffer` (format `fmt`) as the membrane port `mem_<ident>` (compared by verify)."""
        self.project.taps_mem.append(self._tap("mem", fmt, buffer))
