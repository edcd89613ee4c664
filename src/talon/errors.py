"""TALON's exception hierarchy: every error the library raises on purpose is one of these."""

from __future__ import annotations


class TalonError(Exception):
    """Root of every error TALON raises on purpose."""


class TalonFormatError(TalonError):
    """A .t1c (or other model) file cannot be read or written; the message names file, node and field."""


class TalonUsageError(TalonError, ValueError):
    """A TALON API was called with arguments it cannot accept (an unknown name, a duplicate registration)."""


class GraphValidationError(TalonError):
    """A graph's structure, names or shapes are inconsistent; the message names the nodes at fault."""


class PrimitiveError(GraphValidationError):
    """A primitive was constructed with invalid field values (wrong shape, range or type)."""


class UnsupportedModuleError(TalonError):
    """A PyTorch/snnTorch module cannot be expressed exactly in the IR."""


class BackendError(TalonError):
    """A backend cannot run, profile or compile the graph it was given."""


class MappingError(TalonError):
    """A graph does not fit the target hardware; says which resource, on which core, by how much."""


class MissingDependencyError(TalonError, ImportError):
    """An optional dependency needed for the requested feature is not installed."""
