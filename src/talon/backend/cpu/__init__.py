"""The `cpu` backend: float and fixed-point simulation, energy/latency profiles, hardware descriptors.

Its public names are resolved on first use (PEP 562), so that importing one of its numpy-only modules
(the fixed-point plan, its formats and rules) does not load the simulator and torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from talon.backend.cpu.backend import CPUBackend
    from talon.backend.cpu.fixed import Calibration, FixedPointConfig, FixedPointPlan, plan_fixed_point
    from talon.backend.cpu.profiler import LatencyModel

__all__ = ["CPUBackend", "Calibration", "FixedPointConfig", "FixedPointPlan", "LatencyModel", "plan_fixed_point"]

_HOMES = {
    "CPUBackend": "talon.backend.cpu.backend",
    "Calibration": "talon.backend.cpu.fixed",
    "FixedPointConfig": "talon.backend.cpu.fixed",
    "FixedPointPlan": "talon.backend.cpu.fixed",
    "plan_fixed_point": "talon.backend.cpu.fixed",
    "LatencyModel": "talon.backend.cpu.profiler",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
