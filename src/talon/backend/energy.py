"""Energy presets: per-operation and per-access energies, every number with its source.

A preset is a named table of `Figure`s (picojoules plus a citation). The profiler prices operations
with a handful of *derived* costs (`OpCosts`), each a documented sum of table entries, so that every
picojoule in a profile traces back to a row here. docs/energy.md explains the model that uses them.

Add a preset with `register_energy_preset(EnergyPreset(...))`, or derive one from a built-in with
`get_energy_preset("45nm_cmos").with_figures(fp32_mult=Figure(3.0, "my measurement"))`, and pass
either the name or the object to `profile(..., energy_preset=...)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from talon.errors import BackendError

HOROWITZ_2014 = 'M. Horowitz, "Computing\'s energy problem (and what we can do about it)", ISSCC 2014, doi:10.1109/ISSCC.2014.6757323, 45 nm, 0.9 V'

#: Figures every preset must define (the model reads exactly these).
REQUIRED_FIGURES = (
    "int8_add", "int8_mult", "int32_add", "int32_mult",
    "fp32_add", "fp32_mult",
    "sram_read_64b_8kb", "sram_read_64b_32kb", "sram_read_64b_1mb", "dram_access_64b",
)  # fmt: skip

#: SRAM size classes (bytes) matching the figure names above; larger memories are priced as DRAM.
SRAM_CLASSES = ((8 * 1024, "sram_read_64b_8kb"), (32 * 1024, "sram_read_64b_32kb"), (1024 * 1024, "sram_read_64b_1mb"))


@dataclass(frozen=True)
class Figure:
    """One energy figure: `value_pj` picojoules per operation (or per 64-bit access), and where it comes from."""

    value_pj: float
    source: str
    note: str = ""

    def __post_init__(self) -> None:
        if not (isinstance(self.value_pj, (int, float)) and math.isfinite(self.value_pj) and self.value_pj >= 0):
            raise BackendError(f"energy figure must be a finite number of picojoules >= 0, got {self.value_pj!r}")
        if not isinstance(self.source, str) or not self.source.strip():
            raise BackendError("every energy figure needs a source (a citation, a measurement, or 'assumption: ...')")


@dataclass(frozen=True)
class EnergyPreset:
    """A named table of energy figures (see REQUIRED_FIGURES)."""

    name: str
    description: str
    figures: Mapping[str, Figure]

    def __post_init__(self) -> None:
        missing = [k for k in REQUIRED_FIGURES if k not in self.figures]
        if missing:
            raise BackendError(f"energy preset {self.name!r} lacks the figures {missing}; every preset needs {list(REQUIRED_FIGURES)}")
        bad = [k for k, v in self.figures.items() if not isinstance(v, Figure)]
        if bad:
            raise BackendError(f"energy preset {self.name!r}: {bad} must be Figure(value_pj, source) objects")
        object.__setattr__(self, "figures", MappingProxyType(dict(self.figures)))

    def pj(self, key: str) -> float:
        try:
            return float(self.figures[key].value_pj)
        except KeyError:
            raise BackendError(f"energy preset {self.name!r} has no figure {key!r} (it has {sorted(self.figures)})") from None

    def with_figures(self, name: str | None = None, **figures: Figure) -> "EnergyPreset":
        """A copy with some figures replaced or added (name defaults to '<name>+custom')."""
        return EnergyPreset(name or f"{self.name}+custom", self.description, {**self.figures, **figures})

    def sram_read_pj(self, memory_bytes: int) -> tuple[float, str]:
        """Energy of one 64-bit read from a memory holding `memory_bytes`, and the figure used.

        The memory is the smallest size class that holds it: 8 KB, 32 KB, 1 MB; beyond 1 MB, DRAM.
        """
        for limit, key in SRAM_CLASSES:
            if memory_bytes <= limit:
                return self.pj(key), key
        return self.pj("dram_access_64b"), "dram_access_64b"

    def table(self) -> str:
        """The preset as a Markdown table (name, pJ, source)."""
        rows = ["| figure | pJ | source |", "|---|---|---|"]
        for k, f in self.figures.items():
            src = f.source + (f" ({f.note})" if f.note else "")
            rows.append(f"| {k} | {f.value_pj:g} | {src} |")
        return "\n".join(rows)


@dataclass(frozen=True)
class OpCosts:
    """The derived per-operation energies (pJ) the profiler uses for one numeric mode, with their derivation."""

    mac: float  # multiply-accumulate against a stored weight (dense layers on real-valued input)
    ac: float  # accumulate triggered by a spike (weight added to a sum, no multiply)
    add: float  # neuron-update add/compare, elementwise op, bias add
    mult: float  # neuron-update multiply (leak)
    derivation: Mapping[str, str] = field(default_factory=dict)


def op_costs(preset: EnergyPreset, mode: str, *, weight_bits: int = 8, activation_bits: int = 8) -> OpCosts:
    """Derived costs for `mode` ("float": fp32 everything; "fixed": integer datapath).

    fixed: a MAC is an int8 multiply plus an int32 add into the wide accumulator when weights and
    activations are at most 8 bits, else an int32 multiply plus an int32 add (Horowitz gives no 16-bit
    integer figures; the 32-bit ones are an upper bound). Accumulates and neuron arithmetic run on the
    int32 datapath (membrane up to 32 bits).
    """
    p = preset.pj
    if mode == "float":
        return OpCosts(
            mac=p("fp32_mult") + p("fp32_add"),
            ac=p("fp32_add"),
            add=p("fp32_add"),
            mult=p("fp32_mult"),
            derivation={"mac": "fp32_mult + fp32_add", "ac": "fp32_add", "add": "fp32_add", "mult": "fp32_mult"},
        )
    if mode == "fixed":
        narrow = weight_bits <= 8 and activation_bits <= 8
        mul = "int8_mult" if narrow else "int32_mult"
        return OpCosts(
            mac=p(mul) + p("int32_add"),
            ac=p("int32_add"),
            add=p("int32_add"),
            mult=p("int32_mult"),
            derivation={"mac": f"{mul} + int32_add", "ac": "int32_add", "add": "int32_add", "mult": "int32_mult"},
        )
    raise BackendError(f"unknown numeric mode {mode!r}: use 'float' or 'fixed'")


_H = HOROWITZ_2014

CMOS_45NM = EnergyPreset(
    name="45nm_cmos",
    description="45 nm CMOS at 0.9 V, per-operation and per-access energies from Horowitz (ISSCC 2014).",
    figures={
        "int8_add": Figure(0.03, _H),
        "int8_mult": Figure(0.2, _H),
        "int32_add": Figure(0.1, _H),
        "int32_mult": Figure(3.1, _H),
        "fp16_add": Figure(0.4, _H),
        "fp16_mult": Figure(1.1, _H),
        "fp32_add": Figure(0.9, _H),
        "fp32_mult": Figure(3.7, _H),
        "sram_read_64b_8kb": Figure(10.0, _H, "64-bit read from an 8 KB SRAM; writes are priced as reads (assumption)"),
        "sram_read_64b_32kb": Figure(20.0, _H, "64-bit read from a 32 KB SRAM; writes are priced as reads (assumption)"),
        "sram_read_64b_1mb": Figure(100.0, _H, "64-bit read from a 1 MB SRAM; writes are priced as reads (assumption)"),
        "dram_access_64b": Figure(1300.0, _H, "64-bit DRAM access, low end of the quoted 1.3-2.6 nJ range"),
    },
)

_PRESETS: dict[str, EnergyPreset] = {CMOS_45NM.name: CMOS_45NM}


def register_energy_preset(preset: EnergyPreset, *, replace: bool = False) -> EnergyPreset:
    """Make `preset` selectable by name. Re-registering a name needs `replace=True`."""
    if not isinstance(preset, EnergyPreset):
        raise BackendError(f"register_energy_preset expects an EnergyPreset, got {type(preset).__name__}")
    if preset.name in _PRESETS and _PRESETS[preset.name] is not preset and not replace:
        raise BackendError(f"an energy preset named {preset.name!r} already exists (pass replace=True)")
    _PRESETS[preset.name] = preset
    return preset


def get_energy_preset(preset: str | EnergyPreset) -> EnergyPreset:
    """The preset named `preset` (or `preset` itself when it already is one)."""
    if isinstance(preset, EnergyPreset):
        return preset
    try:
        return _PRESETS[preset]
    except (KeyError, TypeError):
        raise BackendError(f"unknown energy preset {preset!r}; available: {sorted(_PRESETS)} (add one with register_energy_preset)") from None


def list_energy_presets() -> list[str]:
    return list(_PRESETS)
