"""talon.bridge: between PyTorch/snnTorch and the TALON IR.

The runtime (this package's executor and modules) turns a Graph back into torch modules; the exporter
(export.py, snntorch.py) turns torch models into Graphs. ``to_ir`` and ``export_to_ir`` are resolved lazily so that importing
the runtime never depends on the exporter.
"""

from __future__ import annotations

from typing import Any

from talon.bridge.executor import CyclicGraphExecutor, GraphExecutor, TransientStateObserver, ir_to_torch
from talon.bridge.modules import (
    RUNTIME_BUILDERS,
    RuntimeContext,
    StatefulRuntime,
    build_runtime,
    register_runtime,
)

from talon.bridge import primitives as _primitives  # noqa: F401  (its modules register their runtimes, converters)
from talon.bridge.reset_effect import measure_reset_effect
from talon.ir.nir_resets import register_reset_measure

# talon.ir cannot run graphs: give to_nir(..., approximate_resets=True) the runtime's measure of the effect.
register_reset_measure(measure_reset_effect)

__all__ = [
    "ir_to_torch", "GraphExecutor", "CyclicGraphExecutor", "TransientStateObserver", "RUNTIME_BUILDERS", "register_runtime",
    "build_runtime", "RuntimeContext", "StatefulRuntime", "to_ir", "export_to_ir", "measure_reset_effect",
]


def __getattr__(name: str) -> Any:
    if name in ("to_ir", "export_to_ir"):
        from talon.bridge import export

        return getattr(export, name)
    raise AttributeError(f"module 'talon.bridge' has no attribute {name!r}")
