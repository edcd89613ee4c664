"""FPGA part presets: the device string the HLS tool wants, its resources and a default clock.

Resource counts are the vendors' data-sheet totals (Xilinx DS190 for Zynq-7000, DS891 for Zynq
UltraScale+); they bound the estimates' utilisation percentages and the automatic reuse factor.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from talon.errors import BackendError


@dataclass(frozen=True)
class PartPreset:
    key: str
    part: str
    family: str
    dsp: int
    bram_18k: int
    lut: int
    ff: int
    clock_mhz: float

    def to_dict(self) -> dict:
        return asdict(self)


PARTS: dict[str, PartPreset] = {
    "zynq7020": PartPreset("zynq7020", "xc7z020clg400-1", "Zynq-7000 (Zynq-7020, e.g. PYNQ-Z1/Z2)", 220, 280, 53200, 106400, 100.0),
    "zu9eg": PartPreset("zu9eg", "xczu9eg-ffvb1156-2-e", "Zynq UltraScale+ ZU9EG (ZCU102)", 2520, 1824, 274080, 548160, 200.0),
}
_ALIASES = {
    "z7020": "zynq7020", "zynq-7020": "zynq7020", "xc7z020": "zynq7020", "pynq-z2": "zynq7020",
    "zcu102": "zu9eg", "xczu9eg": "zu9eg", "zu9": "zu9eg",
}  # fmt: skip


def resolve_part(part: str | PartPreset | None) -> PartPreset:
    """A preset by key ("zynq7020", "zu9eg"), alias, or exact part string (e.g. "xc7z020clg400-1")."""
    if part is None:
        return PARTS["zynq7020"]
    if isinstance(part, PartPreset):
        return part
    key = str(part).strip().lower()
    key = _ALIASES.get(key, key)
    if key in PARTS:
        return PARTS[key]
    for p in PARTS.values():
        if p.part == key:
            return p
    raise BackendError(f"unknown FPGA part {part!r}; presets: {sorted(PARTS)} (or their part strings {[p.part for p in PARTS.values()]})")
