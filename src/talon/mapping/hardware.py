"""HardwareSpec: a mesh of neuromorphic cores joined by a network-on-chip, and a few named presets.

A core holds at most `neurons_per_core` neurons and `weight_memory_bytes_per_core` bytes of synaptic
weights (each synapse stored at `weight_bits`, with the weights living on the core of the
*postsynaptic* neuron). Optionally a core accepts spikes from at most `max_fan_in` distinct presynaptic
neurons (its input axons) and emits at most `max_fan_out` (source neuron, destination core) pairs (its
output axons). Cores sit on a `rows` x `cols` mesh; a spike packet travels by dimension-order (XY)
routing, each hop costing `energy_per_hop` joules and `latency_per_hop` seconds; a directed link carries
at most `link_bandwidth` packets per timestep (None: unlimited) and is busy `link_time_per_packet`
seconds with each packet it forwards (None: `latency_per_hop`, i.e. a link takes a new packet only once
the previous one has made its hop; the backend's congestion model, docs/energy.md, reads it).

Positions are (row, col); the core at (r, c) has index r * cols + c. X is the column axis, Y the row axis.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from talon.errors import MappingError


class HardwareSpecError(MappingError, ValueError):
    """A HardwareSpec was built with impossible values; the message names the field."""


# A mesh this large is almost certainly a typo (and its dense distance tables would not fit in memory).
MAX_MESH_SIDE = 1024
MAX_CORES = 65536


@dataclass(frozen=True)
class HardwareSpec:
    """Target hardware for talon.mapping. Validated on construction (HardwareSpecError)."""

    mesh: tuple[int, int] = (4, 4)
    neurons_per_core: int = 1024
    weight_memory_bytes_per_core: int = 128 * 1024
    weight_bits: int = 8
    max_fan_in: int | None = None
    max_fan_out: int | None = None
    link_bandwidth: float | None = None
    energy_per_hop: float = 3.5e-12
    latency_per_hop: float = 5.3e-9
    name: str = "custom"
    # Declared after `name` so that positional construction from older code keeps its meaning.
    link_time_per_packet: float | None = None

    def __post_init__(self) -> None:
        mesh = self.mesh
        if isinstance(mesh, (str, bytes, dict)) or not hasattr(mesh, "__len__") or len(mesh) != 2:
            raise HardwareSpecError(f"HardwareSpec.mesh must be (rows, cols), two integers (in JSON: [rows, cols]), got {mesh!r}")
        rows, cols = (_int(f"mesh[{i}]", v, minimum=1) for i, v in enumerate(mesh))
        if rows > MAX_MESH_SIDE or cols > MAX_MESH_SIDE or rows * cols > MAX_CORES:
            raise HardwareSpecError(
                f"HardwareSpec.mesh {rows}x{cols} is too large (at most {MAX_MESH_SIDE} per side and {MAX_CORES} cores)"
            )
        object.__setattr__(self, "mesh", (rows, cols))
        object.__setattr__(self, "neurons_per_core", _int("neurons_per_core", self.neurons_per_core, minimum=1))
        object.__setattr__(
            self, "weight_memory_bytes_per_core", _int("weight_memory_bytes_per_core", self.weight_memory_bytes_per_core, minimum=0)
        )
        bits = _int("weight_bits", self.weight_bits, minimum=1)
        if bits > 64:
            raise HardwareSpecError(f"HardwareSpec.weight_bits must be between 1 and 64, got {bits}")
        object.__setattr__(self, "weight_bits", bits)
        for name in ("max_fan_in", "max_fan_out"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _int(name, value, minimum=1))
        if self.link_bandwidth is not None:
            bw = _real("link_bandwidth", self.link_bandwidth)
            if not bw > 0:
                raise HardwareSpecError(f"HardwareSpec.link_bandwidth must be > 0 (or None for unlimited), got {bw}")
            object.__setattr__(self, "link_bandwidth", bw)
        for name in ("energy_per_hop", "latency_per_hop"):
            value = _real(name, getattr(self, name))
            if value < 0:
                raise HardwareSpecError(f"HardwareSpec.{name} must be >= 0, got {value}")
            object.__setattr__(self, name, value)
        if self.link_time_per_packet is not None:
            lt = _real("link_time_per_packet", self.link_time_per_packet)
            if lt < 0:
                raise HardwareSpecError(f"HardwareSpec.link_time_per_packet must be >= 0 (or None for latency_per_hop), got {lt}")
            object.__setattr__(self, "link_time_per_packet", lt)
        if not isinstance(self.name, str):
            raise HardwareSpecError(f"HardwareSpec.name must be a string, got {type(self.name).__name__}")

    # -- derived ----------------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return self.mesh[0]

    @property
    def cols(self) -> int:
        return self.mesh[1]

    @property
    def num_cores(self) -> int:
        return self.mesh[0] * self.mesh[1]

    @property
    def packet_time(self) -> float:
        """Seconds a directed link is busy per packet: link_time_per_packet, or latency_per_hop when unset
        (an assumption, not a measured figure: no preset's source gives link throughput)."""
        return self.latency_per_hop if self.link_time_per_packet is None else self.link_time_per_packet

    @property
    def weight_bytes_per_synapse(self) -> float:
        return self.weight_bits / 8.0

    def weight_bytes(self, synapses: Any) -> Any:
        """Bytes of weight memory for `synapses` synapses (packed at weight_bits, rounded up to a byte)."""
        import numpy as np

        s = np.asarray(synapses, dtype=np.int64)
        out = -(-(s * self.weight_bits) // 8)
        return int(out) if out.ndim == 0 else out

    def position(self, core: int) -> tuple[int, int]:
        if not 0 <= core < self.num_cores:
            raise MappingError(f"core index {core} is outside the {self.rows}x{self.cols} mesh")
        return divmod(int(core), self.cols)

    def core_index(self, row: int, col: int) -> int:
        if not (0 <= row < self.rows and 0 <= col < self.cols):
            raise MappingError(f"position ({row}, {col}) is outside the {self.rows}x{self.cols} mesh")
        return int(row) * self.cols + int(col)

    def with_mesh(self, rows: int, cols: int) -> "HardwareSpec":
        """The same cores on a different mesh."""
        return replace(self, mesh=(rows, cols))

    # -- storage ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain values (None stays None), as stored in .t1c metadata."""
        d = asdict(self)
        d["mesh"] = [int(self.mesh[0]), int(self.mesh[1])]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HardwareSpec":
        if not isinstance(d, dict):
            raise HardwareSpecError(f"a hardware description must be a dict, got {type(d).__name__}")
        _check_field_names(d, "in the hardware description")
        # mesh is validated by the constructor as given (a JSON list of two integers): no int() here,
        # which would turn 2.5 into 2 and True into 1
        return cls(**d)

    def describe(self) -> str:
        fan = []
        if self.max_fan_in is not None:
            fan.append(f"fan-in {self.max_fan_in}")
        if self.max_fan_out is not None:
            fan.append(f"fan-out {self.max_fan_out}")
        bw = "unlimited" if self.link_bandwidth is None else f"{self.link_bandwidth:g} packets/step"
        return (
            f"{self.name}: {self.rows}x{self.cols} mesh, {self.neurons_per_core} neurons and "
            f"{self.weight_memory_bytes_per_core:,} B weight memory per core ({self.weight_bits}-bit weights"
            f"{', ' + ', '.join(fan) if fan else ''}), links {bw}, "
            f"{self.energy_per_hop * 1e12:g} pJ and {self.latency_per_hop * 1e9:g} ns per hop"
            + ("" if self.link_time_per_packet is None else f", {self.link_time_per_packet * 1e9:g} ns per packet per link")
        )


def _int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or value is None:
        raise HardwareSpecError(f"HardwareSpec.{name} must be an integer, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise HardwareSpecError(f"HardwareSpec.{name} must be an integer, got {value!r}") from None
    if not math.isfinite(f) or not f.is_integer():
        raise HardwareSpecError(f"HardwareSpec.{name} must be an integer, got {value!r}")
    out = int(f)
    if out < minimum:
        raise HardwareSpecError(f"HardwareSpec.{name} must be >= {minimum}, got {out}")
    return out


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or value is None:
        raise HardwareSpecError(f"HardwareSpec.{name} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise HardwareSpecError(f"HardwareSpec.{name} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise HardwareSpecError(f"HardwareSpec.{name} must be finite, got {value!r}")
    return out


# Presets. Only the figures marked as sourced come from publications; docs/mapping.md lists them.
PRESETS: dict[str, HardwareSpec] = {
    # A small generic mesh for examples and tests.
    "small": HardwareSpec(
        mesh=(4, 4), neurons_per_core=256, weight_memory_bytes_per_core=64 * 1024, weight_bits=8, name="small"
    ),
    # Loihi-like (Davies et al., IEEE Micro 38(1), 2018): 128 cores, 1,024 neuron compartments and 128 KiB
    # synaptic memory per core, 4,096 input / 4,096 output axons per core, 3.0 (E-W) / 4.0 (N-S) pJ and
    # 4.1 / 6.5 ns per tile hop (averaged here). The 8x16 arrangement is nominal.
    "loihi-like": HardwareSpec(
        mesh=(8, 16),
        neurons_per_core=1024,
        weight_memory_bytes_per_core=128 * 1024,
        weight_bits=8,
        max_fan_in=4096,
        max_fan_out=4096,
        energy_per_hop=3.5e-12,
        latency_per_hop=5.3e-9,
        name="loihi-like",
    ),
    # TrueNorth-like (Merolla et al., Science 345, 2014): 4,096 cores on a 64x64 mesh, 256 neurons and
    # 256 input axons per core, a 256x256 binary crossbar (8 KiB at 1 bit), one target axon per neuron.
    # Hop energy and latency are not from that paper (generic defaults).
    "truenorth-like": HardwareSpec(
        mesh=(64, 64),
        neurons_per_core=256,
        weight_memory_bytes_per_core=8 * 1024,
        weight_bits=1,
        max_fan_in=256,
        max_fan_out=256,
        name="truenorth-like",
    ),
    # The benchmark target: a 32x32 mesh of 1,024-neuron cores.
    "mesh-32x32": HardwareSpec(
        mesh=(32, 32), neurons_per_core=1024, weight_memory_bytes_per_core=64 * 1024, weight_bits=8, name="mesh-32x32"
    ),
}


def preset(name: str, **overrides: Any) -> HardwareSpec:
    """A named preset, optionally with fields overridden: `preset("loihi-like", mesh=(4, 4))`."""
    spec = PRESETS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise HardwareSpecError(f"unknown hardware preset {name!r}; known: {sorted(PRESETS)}")
    if not overrides:
        return spec
    _check_field_names(overrides, f"overriding preset {name!r}")
    return replace(spec, **overrides)


def _check_field_names(given: Any, where: str) -> None:
    """Refuse names that are not HardwareSpec fields, listing the fields there are."""
    known = [f.name for f in fields(HardwareSpec)]
    unknown = sorted(str(k) for k in given if k not in known)
    if unknown:
        hint = " (the mesh is one field: mesh=[rows, cols])" if {"rows", "cols"} & set(unknown) else ""
        raise HardwareSpecError(f"unknown HardwareSpec fields {unknown} {where}{hint}; the fields are {known}")


def smallest_mesh(cores: int) -> tuple[int, int]:
    """The mesh (rows, cols) with the fewest cores >= `cores` among near-square ones (rows <= cols <= 2*rows);
    ties go to the squarer mesh."""
    cores = max(1, int(cores))
    best: tuple[int, int, int, int] | None = None
    r = 1
    while r * r <= 2 * cores + 1:
        c = max(r, -(-cores // r))
        if c <= 2 * r:
            cand = (r * c, c - r, r, c)
            if best is None or cand < best:
                best = cand
        r += 1
    assert best is not None
    return best[2], best[3]
