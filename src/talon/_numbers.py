"""Whole numbers as users pass them: a Python or numpy integer, or an integral float such as 4.0 (never
a bool, a string, NaN or 2.5). One test for the sdk's and the mapping's argument checks, which each
raise their own error naming the argument."""

from __future__ import annotations

import math
import numbers
from typing import Any


def whole_number(value: Any) -> int | None:
    """`value` as an int when it is a whole number, else None (the caller refuses it by name)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        return int(value)
    f = float(value)
    return int(f) if math.isfinite(f) and f.is_integer() else None
