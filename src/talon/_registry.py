"""How a registry keyed by primitive type takes an entry: a second, different entry for the same type is an
error naming what is registered, unless the caller asks to replace it (re-registering the same object is
harmless, so a module imported twice does not fail)."""

from __future__ import annotations

from typing import TypeVar

from talon.errors import TalonUsageError

V = TypeVar("V")


def put(table: dict[str, V], type_name: str, value: V, *, what: str, replace: bool) -> V:
    """table[type_name] = value, refusing to overwrite a different entry unless `replace`; returns value."""
    if type_name in table and table[type_name] is not value and not replace:
        raise TalonUsageError(f"{what} for {type_name!r} is already registered (pass replace=True)")
    table[type_name] = value
    return value


__all__ = ["put"]
