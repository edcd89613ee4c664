"""The numbers of hardware (fixed-point) mode: the datapath's bit widths, a fixed-point format, the
quantisation of offline constants, and the plan's records (per node and per graph). numpy only.
docs/fixed_point.md is the specification; talon.backend.cpu.fixed_plan fills these records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from talon.errors import BackendError
from talon.ir import Graph
from talon.sdk.fixed_point import DEFAULT_BITS, quantize_to_ints, scale_pow2

# The version of these rules is talon.backend.descriptor.FIXED_POINT_VERSION (every descriptor records
# it, whatever backend wrote it): bump it with any change here, in the fixed-point rules or in
# talon.sdk.fixed_point.


@dataclass(frozen=True)
class FixedPointConfig:
    """Bit widths of the hardware datapath (docs/fixed_point.md, section "Formats").

    SpikingAffine nodes use their own `weight_bits` and `accumulator_bits` fields instead of the
    defaults here. Limits keep the float64 emulation exact: weights <= 16 bits, activations and
    membranes <= 24 bits, accumulators <= 48 bits, coefficients <= 20 fractional bits.
    """

    weight_bits: int = DEFAULT_BITS["weight_bits"]
    activation_bits: int = DEFAULT_BITS["activation_bits"]
    accumulator_bits: int = DEFAULT_BITS["accumulator_bits"]
    bias_bits: int = DEFAULT_BITS["bias_bits"]
    membrane_bits: int = DEFAULT_BITS["membrane_bits"]
    coefficient_frac_bits: int = DEFAULT_BITS["coefficient_frac_bits"]
    membrane_headroom_bits: int = 1

    def __post_init__(self) -> None:
        limits = {
            "weight_bits": (2, 16),
            "activation_bits": (2, 24),
            "accumulator_bits": (4, 48),
            "bias_bits": (2, 24),
            "membrane_bits": (4, 24),
            "coefficient_frac_bits": (1, 20),
            "membrane_headroom_bits": (0, 8),
        }
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise BackendError(f"FixedPointConfig.{name} must be an integer in [{lo}, {hi}], got {v!r}")

    def to_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class Format:
    """A signed two's-complement fixed-point format: integers of `bits` bits, value = int * 2**-frac."""

    bits: int
    frac: int

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def lsb(self) -> float:
        return math.ldexp(1.0, -self.frac)

    def to_list(self) -> list[int]:
        return [self.bits, self.frac]

    def __str__(self) -> str:
        return f"Q{self.bits}.{self.frac}"


def quantize_array(x: np.ndarray, fmt: Format) -> np.ndarray:
    """Offline constants: int64 = saturate(round_half_even(x * 2**frac)) (talon.sdk.fixed_point's rule,
    shared with quantize_weights)."""
    return quantize_to_ints(x, fmt.bits, fmt.frac)


def dequantize(ints: np.ndarray, frac: int, dtype: Any = np.float64) -> np.ndarray:
    return scale_pow2(np.asarray(ints, dtype=np.float64), -frac).astype(dtype)


@dataclass
class NodePlan:
    """Everything hardware needs for one node in fixed point (docs/fixed_point.md, per node type)."""

    name: str
    type_name: str
    kind: str  # input | synaptic | neuron | threshold | pass | requant
    out_format: Format
    in_formats: list[Format] = field(default_factory=list)
    #: integer tensors (weights, biases, thresholds, leak and gain factors, ...)
    ints: dict[str, np.ndarray] = field(default_factory=dict)
    #: fractional bits of each integer tensor in `ints`
    fracs: dict[str, int] = field(default_factory=dict)
    acc_bits: int | None = None
    acc_frac: int | None = None
    membrane: Format | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    #: CubaLIF: the format of its synaptic current (the state its inputs are integrated into)
    current: Format | None = None
    #: positions (in edge order) of the inputs that carry their source's output of the previous step
    delayed_inputs: list[int] = field(default_factory=list)

    @property
    def input_state(self) -> Format | None:
        """The state a neuron integrates its inputs into: the current (CubaLIF) or the membrane."""
        return self.current if self.current is not None else self.membrane

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type_name,
            "kind": self.kind,
            "out_format": self.out_format.to_list(),
            "in_formats": [f.to_list() for f in self.in_formats],
            "fracs": dict(self.fracs),
            "acc_bits": self.acc_bits,
            "acc_frac": self.acc_frac,
            "membrane": self.membrane.to_list() if self.membrane else None,
            "current": self.current.to_list() if self.current else None,
            "attrs": dict(self.attrs),
            "delayed_inputs": list(self.delayed_inputs),
        }


@dataclass
class Calibration:
    """Ranges observed in a float simulation: max |output| per node, max |membrane| per neuron and
    max |synaptic current| per CubaLIF."""

    max_abs_output: dict[str, float]
    max_abs_state: dict[str, float]
    description: str = ""
    max_abs_current: dict[str, float] = field(default_factory=dict)


@dataclass
class FixedPointPlan:
    """The fixed-point realisation of a graph: formats and integers per node, and the on-grid Graph
    that the runtime executes in float64 (`graph`)."""

    config: FixedPointConfig
    nodes: dict[str, NodePlan]
    order: list[str]
    graph: Graph
    calibration: Calibration

    def format_of(self, name: str) -> Format:
        return self.nodes[name].out_format

    def summary(self) -> str:
        rows = []
        for name in self.order:
            p = self.nodes[name]
            extra = f" acc Q{p.acc_bits}.{p.acc_frac}" if p.acc_bits else ""
            extra += f" membrane {p.membrane}" if p.membrane else ""
            extra += f" current {p.current}" if p.current else ""
            rows.append(f"{name:<16} {p.type_name:<12} {p.kind:<9} out {p.out_format}{extra}")
        return "\n".join(rows)
