"""Every concern registry of docs/primitives.md, snapshotted and restored: a test's registrations end with it.

`isolated_registries()` saves the contents of each registry and puts them back afterwards (in place, so
modules holding a reference to a registry see the restored one); the `registries` fixture of
tests/conftest.py wraps it.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
from typing import Iterator

#: (module, attribute) of every registry keyed by a primitive type (or, for converters, a module type).
REGISTRIES = (
    ("talon.ir.node", "_REGISTRY"),
    ("talon.bridge.modules", "RUNTIME_BUILDERS"),
    ("talon.sdk.cost", "_TABLE"),
    ("talon.sdk._bounds", "_RULES"),
    ("talon.mapping.connectivity", "_RULES"),
    ("talon.backend.cpu.fixed_registry", "_RULES"),
    ("talon.backend.fpga.emitters.registry", "_EMITTERS"),
    ("talon.backend.fpga.hls4ml_config", "_LAYERS"),
    ("talon.ir.nir_registry", "_EXPORTS"),
    ("talon.ir.nir_registry", "_REFUSED"),
    ("talon.ir.nir_registry", "_IMPORTS"),
    ("talon.ir.nir_registry", "_DEFAULTS"),
    ("talon.bridge.converters", "MODULE_CONVERTERS"),
    ("talon.bridge.converters", "_PRODUCES"),
    ("talon.bridge.converters", "_OUTPUT_NAMES"),
    ("talon.bridge.converters", "_PENDING"),
)
#: Modules whose import registers built-ins: loaded first, so that the snapshot holds them.
BUILTINS = ("talon.ir", "talon.ir.nir", "talon.bridge", "talon.bridge.export", "talon.backend.cpu.fixed_rules",
            "talon.backend.fpga.emitters", "talon.mapping.connectivity")


@contextlib.contextmanager
def isolated_registries() -> Iterator[None]:
    for name in BUILTINS:
        importlib.import_module(name)
    with contextlib.suppress(ImportError):
        importlib.import_module("talon.bridge.snntorch")
    saved = [(reg, copy.copy(reg) if not isinstance(next(iter(reg.values()), None), dict) else {k: dict(v) for k, v in reg.items()})
             for reg in (getattr(importlib.import_module(m), a) for m, a in REGISTRIES)]
    try:
        yield
    finally:
        for reg, content in saved:
            reg.clear()
            reg.update(content)
