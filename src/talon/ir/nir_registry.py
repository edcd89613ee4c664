"""The NIR registry: how each primitive type is written to NIR and read back (docs/nir.md, "Adding a primitive").

Two registries, keyed by type, through which the built-in primitives register exactly as a user's do:

    register_nir_export("LIF", export_lif)                     # TALON type -> fn(node, ctx) -> NIR node
    register_nir_import("LIF", "LIF", lif_fields, default=True)  # NIR class -> TALON type: fn(nn, ctx) -> fields
    refuse_nir_export("MaxPool2d", "NIR has no max pooling ...")  # a type NIR cannot express, and why

An export function returns the NIR node (or small nir.NIRGraph) computing exactly what the node computes,
or raises `ctx.refuse(why)`. An import function returns the field values of a TALON node of its type that
the NIR node determines (None: this NIR node is not one of those), or a ready Node (a NIR primitive TALON
builds from several of its own). `default=True` makes that TALON type the one a NIR class becomes; the other
registered types are restored only when TALON's hint in the NIR metadata names them (a SpikingAffine
travels as an Affine). A type with no export, or a NIR class with no import, fails by name in to_nir/from_nir.

This module imports no primitive and no `nir`: a primitive's module may register its conversions here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from talon.errors import TalonUsageError
from talon.ir.nir_common import NIRConversionError, array_of, broadcast_full, finite_parameter

__all__ = [
    "NIRExportContext", "NIRImportContext", "register_nir_export", "register_nir_import", "refuse_nir_export",
    "unregister_nir_export", "unregister_nir_import", "nir_exporter", "nir_importer", "nir_default_type",
    "nir_export_types", "nir_import_classes", "nir_support",
]

_DOC = "docs/nir.md, 'Adding a primitive'"


@dataclass(frozen=True)
class NIRExportContext:
    """What an export function knows besides the node: the `nir` module, the node's name (its path in nested
    graphs), its sample input and output shapes (None when unknown), the graph's dt, and whether the caller
    asked for resets NIR cannot express to be approximated (to_nir's approximate_resets)."""

    nir: Any
    name: str
    type_name: str
    in_shape: Optional[tuple] = None
    out_shape: Optional[tuple] = None
    dt: float = 1.0
    approximate_resets: bool = False

    def refuse(self, why: str) -> NIRConversionError:
        """The error to raise when this node cannot be written to NIR exactly (`why` says why and what to do)."""
        return NIRConversionError(f"node {self.name!r} ({self.type_name}) cannot be exported to NIR: {why}")

    def need(self, rank: int | None = None, what: str | None = None) -> tuple:
        """The input shape, which must be known (and of `rank`, when given: `what` names the NIR primitive)."""
        if self.in_shape is None:
            raise self.refuse("its input shape is unknown (give the graph an Input shape)")
        if rank is not None and len(self.in_shape) != rank:
            raise self.refuse(f"NIR's {what or self.type_name} takes rank-{rank} inputs (batch excluded), this node "
                              f"receives shape {tuple(self.in_shape)}")
        return tuple(self.in_shape)

    def full(self, value: np.ndarray) -> np.ndarray:
        """`value` broadcast to one entry per element of the input (NIR's convention for neuron parameters)."""
        return broadcast_full(value, self.need())


@dataclass(frozen=True)
class NIRImportContext:
    """What an import function knows besides the NIR node: the `nir` module, the timestep, the node's path (for
    messages), and `natural`: True when converting without TALON's hint (the node came from another tool)."""

    nir: Any
    dt: float
    where: str
    natural: bool = False

    def get(self, nn: Any, attr: str) -> np.ndarray:
        """NIR node `nn`'s parameter `attr` as a numpy array (NIRConversionError naming it when missing, or
        non-finite where NIR's equations are then undefined)."""
        return finite_parameter(array_of(getattr(nn, attr, None), f"{self.where}.{attr}"), attr, f"{self.where}.{attr}")

    def fields(self, nn: Any, type_name: str, where: str) -> dict | None:
        """The fields NIR node `nn` (a part of this one, at path `where`) determines for `type_name`."""
        fn = nir_importer(type(nn).__name__, type_name)
        if fn is None:
            return None
        out = fn(nn, NIRImportContext(self.nir, self.dt, where, self.natural))
        return out if isinstance(out, dict) else None


ExportFn = Callable[[Any, NIRExportContext], Any]
ImportFn = Callable[[Any, NIRImportContext], Any]

_EXPORTS: dict[str, ExportFn] = {}
_REFUSED: dict[str, str] = {}
_IMPORTS: dict[str, dict[str, ImportFn]] = {}
_DEFAULTS: dict[str, str] = {}


def _check_name(what: str, name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise TalonUsageError(f"{what} needs a type name, got {name!r}")


def register_nir_export(type_name: str, fn: ExportFn | None = None, *, replace: bool = False) -> Any:
    """Make `fn(node, ctx) -> NIR node` how nodes of TALON type `type_name` are written to NIR.

    Usable as a decorator (`@register_nir_export("MyLIF")`). Returns `fn`."""
    _check_name("register_nir_export", type_name)

    def add(f: ExportFn) -> ExportFn:
        if not callable(f):
            raise TalonUsageError(f"the NIR export of {type_name!r} must be a function fn(node, ctx), got {f!r}")
        if not replace and type_name in _REFUSED:
            raise TalonUsageError(f"{type_name!r} is registered as having no NIR equivalent ({_REFUSED[type_name]}); "
                                  "pass replace=True to register an export instead")
        if not replace and _EXPORTS.get(type_name, f) is not f:
            raise TalonUsageError(f"a NIR export for {type_name!r} is already registered (pass replace=True)")
        _REFUSED.pop(type_name, None)
        _EXPORTS[type_name] = f
        return f

    return add if fn is None else add(fn)


def refuse_nir_export(type_name: str, why: str, *, replace: bool = False) -> None:
    """Record that NIR cannot express `type_name`, and why (to_nir refuses such a node with this reason)."""
    _check_name("refuse_nir_export", type_name)
    if not replace and type_name in _EXPORTS:
        raise TalonUsageError(f"a NIR export for {type_name!r} is already registered (pass replace=True)")
    _EXPORTS.pop(type_name, None)
    _REFUSED[type_name] = str(why)


def register_nir_import(nir_class: str, type_name: str, fn: ImportFn | None = None, *, default: bool = False,
                        replace: bool = False) -> Any:
    """Make `fn(nn, ctx)` how a NIR node of class `nir_class` (e.g. "LIF", "NIRGraph") becomes a TALON `type_name`.

    `fn` returns that node's field values (None: `nn` does not have the structure of an exported `type_name`),
    or a ready Node. default=True: NIR nodes of this class become `type_name` unless TALON's hint names another
    registered type. Usable as a decorator. Returns `fn`."""
    _check_name("register_nir_import", nir_class)
    _check_name("register_nir_import", type_name)

    def add(f: ImportFn) -> ImportFn:
        if not callable(f):
            raise TalonUsageError(f"the NIR import of {nir_class!r} as {type_name!r} must be a function fn(nn, ctx), got {f!r}")
        known = _IMPORTS.get(nir_class, {})
        if not replace and known.get(type_name, f) is not f:
            raise TalonUsageError(f"a NIR import of {nir_class!r} as {type_name!r} is already registered (pass replace=True)")
        if default and not replace and _DEFAULTS.get(nir_class, type_name) != type_name:
            raise TalonUsageError(f"NIR {nir_class!r} already becomes {_DEFAULTS[nir_class]!r} by default (pass replace=True)")
        _IMPORTS.setdefault(nir_class, {})[type_name] = f
        if default:
            _DEFAULTS[nir_class] = type_name
        return f

    return add if fn is None else add(fn)


def unregister_nir_export(type_name: str) -> None:
    """Remove the NIR export (or recorded refusal) of `type_name` (a no-op when there is none)."""
    _EXPORTS.pop(type_name, None)
    _REFUSED.pop(type_name, None)


def unregister_nir_import(nir_class: str, type_name: str) -> None:
    """Remove the import of NIR `nir_class` as `type_name` (a no-op when there is none)."""
    _IMPORTS.get(nir_class, {}).pop(type_name, None)
    if _DEFAULTS.get(nir_class) == type_name:
        del _DEFAULTS[nir_class]


def nir_exporter(type_name: str, ctx: NIRExportContext) -> ExportFn:
    """The export function of `type_name`; NIRConversionError naming the node when NIR cannot express the type
    (with the recorded reason) or none is registered (saying how to register one)."""
    fn = _EXPORTS.get(type_name)
    if fn is not None:
        return fn
    if type_name in _REFUSED:
        raise ctx.refuse(_REFUSED[type_name])
    raise ctx.refuse(f"no NIR export is registered for {type_name}: register one with "
                     f"talon.ir.nir.register_nir_export({type_name!r}, fn) ({_DOC}), or keep the model in .t1c")


def nir_importer(nir_class: str, type_name: str) -> ImportFn | None:
    """The function turning a NIR `nir_class` node into a `type_name` node, or None."""
    return _IMPORTS.get(nir_class, {}).get(type_name)


def nir_default_type(nir_class: str) -> str | None:
    """The TALON type a NIR node of `nir_class` becomes without a hint (None: no default registered)."""
    return _DEFAULTS.get(nir_class)


def nir_export_types() -> tuple[str, ...]:
    """The TALON types with a NIR export, in registration order."""
    return tuple(_EXPORTS)


def nir_import_classes() -> tuple[str, ...]:
    """The NIR classes TALON reads by default, in registration order."""
    return tuple(_DEFAULTS)


def nir_support(type_name: str) -> dict[str, Any]:
    """What the registries say about `type_name`: {"export": bool, "refused": reason or None,
    "imports_from": [NIR classes that can become it]} (for `talon primitives`)."""
    return {"export": type_name in _EXPORTS, "refused": _REFUSED.get(type_name),
            "imports_from": sorted(c for c, types in _IMPORTS.items() if type_name in types)}
