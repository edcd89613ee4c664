"""Atomic file replacement shared by every writer of model files (.t1c, .nir)."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from talon.errors import TalonError, TalonFormatError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it over `path` when the block succeeds.

    On any failure the temporary file is removed, a file already at `path` is left untouched, and
    errors other than TalonError become TalonFormatError naming the path.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise TalonFormatError(f"cannot write {str(target)!r}: folder {str(folder)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, TalonError) or not isinstance(exc, Exception):
            raise
        raise TalonFormatError(f"cannot write {str(target)!r}: {type(exc).__name__}: {exc}") from exc
