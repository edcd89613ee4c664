"""Where a traced value comes from in the user's code: the source line of an fx node, an indexing expression
written as the user wrote it (`x[:, step]`), and the user frame of an exception raised while tracing.

Error messages name these instead of torch.fx's internal node names (`getitem_5`), which the user never wrote.
"""

from __future__ import annotations

import functools
import linecache
import os
import re
import sys
import traceback
from types import TracebackType
from typing import Any

import torch
import torch.fx as fx

_LIBRARY_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep for m in (torch, fx) if m.__file__)
_TALON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
#: fx node meta key holding (file, line) of the user's code that created the node.
META_KEY = "talon_user_frame"
_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n(?P<code>[^\n]*)')


def _is_library(path: str) -> bool:
    path = os.path.abspath(path)
    if path.startswith(_LIBRARY_DIRS) or path.startswith(_TALON_DIR):
        return True
    return f"{os.sep}snntorch{os.sep}" in path or f"{os.sep}site-packages{os.sep}" in path


def _format(file: str, line: int | str, code: str) -> str:
    return f"`{code.strip()}` ({os.path.basename(file)}:{line})"


@functools.lru_cache(maxsize=4096)
def _library_file(path: str) -> bool:
    return _is_library(path)


def user_frame() -> tuple[str, int] | None:
    """(file, line) of the innermost caller outside torch, snnTorch and TALON: where the user's forward is.
    Cheap enough to call for every traced node (fx's own record_stack_traces formats whole tracebacks)."""
    frame = sys._getframe(1)
    while frame is not None:
        if not _library_file(frame.f_code.co_filename):
            return frame.f_code.co_filename, frame.f_lineno
        frame = frame.f_back
    return None


def source_line(n: fx.Node | None) -> str | None:
    """The user's line that created `n`, as "`code` (file.py:12)"; None when it is not known."""
    if n is None:
        return None
    where = n.meta.get(META_KEY)
    if where is not None:
        code = linecache.getline(where[0], where[1])
        return _format(where[0], where[1], code) if code.strip() else None
    trace = getattr(n, "stack_trace", None)
    for m in _FRAME.finditer(trace or ""):
        if not _is_library(m["file"]):
            return _format(m["file"], m["line"], m["code"])
    return None


def at(n: fx.Node | None) -> str:
    """" at `code` (file.py:12)" for a message, or "" when the line is unknown."""
    line = source_line(n)
    return f" at {line}" if line else ""


def exception_line(tb: TracebackType | None) -> str | None:
    """The innermost frame of the user's own code in a traceback, as "`code` (file.py:12)"."""
    found = None
    for frame in traceback.extract_tb(tb):
        if not _is_library(frame.filename) and frame.line:
            found = _format(frame.filename, frame.lineno or 0, frame.line)
    return found


def _index_item(i: Any) -> str:
    if i is Ellipsis:
        return "..."
    if i is None:
        return "None"
    if isinstance(i, slice):
        parts = ["" if v is None else _index_item(v) for v in (i.start, i.stop)]
        text = ":".join(parts)
        return text + (f":{_index_item(i.step)}" if i.step is not None else "")
    if isinstance(i, fx.Node):
        return "<tensor>"  # an index computed in forward
    return repr(i)


def index_expr(n: fx.Node) -> str:
    """`x[:, 3]` for a traced `operator.getitem(x, (slice(None), 3))`: x is forward's argument name, a layer call
    `self.fc1(...)`, or `...` for another intermediate value."""
    src, index = n.args[0], n.args[1]
    if isinstance(src, fx.Node) and src.op == "placeholder":
        base = src.name  # forward's own argument name
    elif isinstance(src, fx.Node) and src.op == "call_module":
        base = f"self.{src.target}(...)"
    else:
        base = "..."  # an intermediate value: the quoted source line shows which (fx's names are not the user's)
    items = index if isinstance(index, tuple) else (index,)
    return f"{base}[{', '.join(_index_item(i) for i in items)}]"


__all__ = ["source_line", "at", "exception_line", "index_expr", "user_frame", "META_KEY"]
