"""Values written plainly into messages: numbers as Python writes them (2.5, not np.float64(2.5)).

Layer 0: no imports of talon or numpy; numpy scalars and arrays are recognised by what they offer
(`.item()` / `.tolist()`).
"""

from __future__ import annotations

from typing import Any


def plain(value: Any) -> str:
    """`value` for an error message: numpy scalars and arrays as their Python values, containers element by
    element, strings quoted (so that an empty or blank one shows), everything else as repr."""
    return repr(_py(value))


def _py(value: Any) -> Any:
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy scalar or array (0-d included)
        try:
            return _py(value.tolist())
        except Exception:  # noqa: BLE001 - an object that only looks like numpy's: as it is
            return value
    if isinstance(value, tuple):
        return tuple(_py(v) for v in value)
    if isinstance(value, list):
        return [_py(v) for v in value]
    return value
