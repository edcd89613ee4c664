"""The backend registry: `get_backend(name)`, `list_backends()`, `register_backend(name, cls)`.

Backends register a class or, to keep `import talon.backend` free of torch, a lazy "module:Class"
string that is imported on first use. Packages outside TALON can also advertise backends through the
`talon.backends` entry-point group (value "module:Class"). A new backend (e.g. `fpga`) is one class
deriving from `talon.backend.Backend` plus one `register_backend` line.
"""

from __future__ import annotations

import importlib
from typing import Union

from talon.errors import BackendError

from talon.backend.base import Backend

BackendSpec = Union[type, str]

_REGISTRY: dict[str, BackendSpec] = {}
_INSTANCES: dict[str, Backend] = {}
_ENTRY_POINTS_LOADED = False


def register_backend(name: str, cls: BackendSpec, *, replace: bool = False) -> BackendSpec:
    """Register backend class `cls` (a Backend subclass or a lazy "module:Class" string) under `name`."""
    if not isinstance(name, str) or not name:
        raise BackendError(f"backend name must be a non-empty string, got {name!r}")
    if isinstance(cls, str):
        if ":" not in cls:
            raise BackendError(f"lazy backend target must look like 'package.module:Class', got {cls!r}")
    elif not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"register_backend expects a talon.backend.Backend subclass or 'module:Class', got {cls!r}")
    if name in _REGISTRY and _REGISTRY[name] != cls and not replace:
        raise BackendError(f"a backend named {name!r} is already registered ({_REGISTRY[name]!r}); pass replace=True")
    _REGISTRY[name] = cls
    _INSTANCES.pop(name, None)
    return cls


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="talon.backends"):
            _REGISTRY.setdefault(ep.name, ep.value)
    except Exception:  # a broken third-party distribution must not break the built-in backends
        pass


def _resolve(name: str, spec: BackendSpec) -> type:
    if isinstance(spec, type):
        return spec
    module, _, attr = spec.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise BackendError(f"backend {name!r} could not be loaded from {spec!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"backend {name!r}: {spec!r} is not a talon.backend.Backend subclass")
    _REGISTRY[name] = cls
    return cls


def get_backend(name: str) -> Backend:
    """The backend registered as `name` (one shared instance per name)."""
    _load_entry_points()
    if name in _INSTANCES:
        return _INSTANCES[name]
    spec = _REGISTRY.get(name)
    if spec is None:
        raise BackendError(f"unknown backend {name!r}; available: {list_backends()} (add one with talon.backend.register_backend)")
    inst = _resolve(name, spec)()
    _INSTANCES[name] = inst
    return inst


def list_backends() -> list[str]:
    """Registered backend names, in registration order."""
    _load_entry_points()
    return list(_REGISTRY)


def backends_that_can(operation: str) -> list[str]:
    """Registered backends whose capabilities include `operation` ("simulate", "profile", "compile");
    a backend that does not load cannot do anything."""
    able = []
    for name in list_backends():
        try:
            if getattr(get_backend(name).capabilities, operation, False):
                able.append(name)
        except Exception:  # noqa: BLE001 - an uninstallable backend (missing dependency, broken plugin)
            continue
    return able


register_backend("cpu", "talon.backend.cpu.backend:CPUBackend")
register_backend("fpga", "talon.backend.fpga:FPGABackend")
