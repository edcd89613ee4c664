"""talon.backend: run, profile and compile graphs for a target (`cpu` now; `fpga` with its own issue).

    from talon.backend import get_backend
    cpu = get_backend("cpu")
    sim = cpu.simulate(graph, n_steps=10)                  # SimulationResult
    prof = cpu.profile(graph, n_steps=10, energy_preset="45nm_cmos")   # ProfileResult
    desc = cpu.compile(graph)                              # HardwareDescriptor (JSON / binary)
    cal = cpu.calibrate(graph, calibration_inputs)         # Calibration: fixed point without recalibrating
    sim = cpu.simulate(graph, x, mode="fixed", calibration=cal, compare=False)

Importing this package does not import torch: backends load on first `get_backend`.
docs/backend.md, docs/energy.md and docs/fixed_point.md are the reference.
"""

from __future__ import annotations

from talon.backend.base import Backend, Capabilities, LayerProfile, ProfileResult, SimulationResult
from talon.backend.descriptor import HardwareDescriptor
from talon.backend.energy import (
    EnergyPreset,
    Figure,
    get_energy_preset,
    list_energy_presets,
    register_energy_preset,
)
from talon.backend.registry import get_backend, list_backends, register_backend

__all__ = [
    "Backend",
    "Capabilities",
    "EnergyPreset",
    "Figure",
    "HardwareDescriptor",
    "LayerProfile",
    "ProfileResult",
    "SimulationResult",
    "get_backend",
    "get_energy_preset",
    "list_backends",
    "list_energy_presets",
    "register_backend",
    "register_energy_preset",
]
