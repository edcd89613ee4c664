"""The one range check every primitive's `check` uses for a parameter that must lie in a range (a time
constant > 0, a decay in [0, 1], a variance >= 0): NaN is refused like any value outside it, naming the field.

`np.any(v <= 0)` is False for NaN, so a comparison alone lets NaN through (a NaN tau would read and run
silently, every membrane NaN); here a value passes only if it is a number inside the range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from talon.errors import PrimitiveError


def check_range(type_name: str, name: str, value: Any, rule: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> None:
    """Raise PrimitiveError "<type>.<name> <rule>" unless every element of `value` is a number with low < (or <=)
    it <= high. `rule` is the sentence the message starts with (e.g. "must be > 0 everywhere"). None passes."""
    if value is None:
        return
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        return  # not numeric: the field's own coercion reports it
    nan = np.isnan(a) if a.dtype.kind == "f" else np.zeros(a.shape, bool)
    if np.any(nan):
        raise PrimitiveError(f"{type_name}.{name} {rule}; it is NaN at {int(np.count_nonzero(nan))} of {a.size} values. A NaN "
                             "parameter usually comes from a diverged training run or an exporter's 0/0: set a number there")
    ok = np.ones(a.shape, bool)
    if low is not None:
        ok &= (a > low) if low_open else (a >= low)
    if high is not None:
        ok &= a <= high
    if not np.all(ok):
        bad = a[~ok] if a.ndim else a.reshape(1)
        raise PrimitiveError(f"{type_name}.{name} {rule}, got {bad.reshape(-1)[0]!r} (at {int(np.count_nonzero(~ok))} of {a.size} values)")
