"""The optional libraries of talon.io (the `io` extra), imported when first needed."""

from __future__ import annotations

import importlib
from typing import Any

from talon.errors import TalonError


def require(module: str, what: str) -> Any:
    """Import `module`, or raise TalonError saying that `what` needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TalonError(f"{what} needs the '{module}' package: pip install 't1c-talon[io]' (or pip install {module})") from None
