"""Keyword arguments of the sdk functions as users pass them: one node name or lint code where a list is
expected (a str is one name, never its characters), and byte counts / tolerances that must be plain
numbers. Anything else is a TalonUsageError naming the function, the argument and the way forward,
never a bare TypeError from a comparison deep inside, nor a silently fractional byte count.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable

from talon._numbers import whole_number
from talon.errors import TalonUsageError


def names(value: Iterable[str] | str, where: str) -> list[str]:
    """A list of names; a single str is one name (iterating it would give its characters)."""
    if isinstance(value, str):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise TalonUsageError(f"{where} must be a name or a list of names, got {type(value).__name__}") from None


def whole(value: Any, where: str, *, minimum: int = 0) -> int:
    """A whole number >= minimum (an integral float such as 4.0 is accepted, 2.5 is not)."""
    out = whole_number(value)
    if out is None or out < minimum:
        raise TalonUsageError(f"{where} must be a whole number >= {minimum}, got {value!r}")
    return out


def real(value: Any, where: str, *, minimum: float = 0.0) -> float:
    """A real number >= minimum (infinity included; NaN, strings and bools are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) >= minimum:
        raise TalonUsageError(f"{where} must be a number >= {minimum:g}, got {value!r}")
    return float(value)
