"""JSON conversion with one policy for every JSON document TALON writes (the CLI's --json output, the
pipeline's report files, the data embedded in the HTML view).

Standard library only, and never imports numpy or torch (it recognises their values only when the
caller already imported them), so any layer can use it, talon.ir and the CLI's fast commands included.

The policy (`jsonable`):

- NaN, +Inf and -Inf become ``null``. JSON has no such numbers: Python's ``NaN``/``Infinity`` tokens
  are rejected by strict parsers (browsers' ``JSON.parse``, jq, most other languages), and a string
  such as ``"nan"`` would put a string where readers expect a number. ``null`` means "no meaningful
  number", which is what a non-finite ratio, error or utilisation is.
- numpy scalars and arrays, and torch tensors, become Python numbers and nested lists (then the rule
  above applies element by element); bools stay bools.
- tuples, lists, sets become lists (in iteration order); dict keys become strings.
- enums become their value; dataclass instances a dict of their fields; os.PathLike its path string.
- anything else becomes ``str(value)``: a document never fails to encode because of an odd value.

`dumps` / `dump` apply `jsonable` and then encode with ``allow_nan=False``, so a non-finite number
that bypassed the policy is an error rather than invalid JSON.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import sys
from typing import IO, Any


def jsonable(value: Any) -> Any:
    """`value` as plain JSON values under the module's policy (see the module docstring)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)  # int subclasses (IntEnum excepted, handled below) become plain ints
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    # numpy and torch only when the caller has imported them: this module must stay import-free
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return jsonable(float(value))
        if isinstance(value, np.ndarray):
            return jsonable(value.tolist())
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return jsonable(value.detach().cpu().tolist())
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return str(value)


def dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps of jsonable(value); keyword arguments (indent, separators, ...) go to json.dumps."""
    return json.dumps(jsonable(value), allow_nan=False, **kwargs)


def dump(value: Any, fh: IO[str], **kwargs: Any) -> None:
    """json.dump of jsonable(value) into the text file `fh`."""
    json.dump(jsonable(value), fh, allow_nan=False, **kwargs)
