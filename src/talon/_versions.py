"""Versions of installed packages, looked up in their distribution metadata: the one place TALON asks.

Nothing is imported (asking for torch's version must not cost torch's import time), so `talon info`
and stamps stay cheap. TALON's own version is `talon.__version__`.
"""

from __future__ import annotations

from importlib import metadata
from typing import Iterable


def package_version(dist: str) -> str | None:
    """The installed version of distribution `dist` (e.g. "numpy", "t1c-talon"); None if not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def package_versions(dists: Iterable[str]) -> dict[str, str | None]:
    """{dist: version or None} for each of `dists`, in order."""
    return {d: package_version(d) for d in dists}
