"""stamp_graph / get_stamp: a provenance record stored in the graph (and so in its .t1c file).

The stamp lives in `graph.metadata["talon_stamp"]` as a nested dict of str/int/float values, which the
file format stores as nested groups. Metadata is outside the fingerprint, so stamping a graph does not
change its fingerprint, and the stamp can record it: `verify_fingerprint(graph)` checks a stamped graph
against the fingerprint taken when it was stamped.
"""

from __future__ import annotations

import hmac
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

import talon
from talon._versions import package_versions
from talon.errors import TalonError, TalonUsageError
from talon.ir import Graph, write
from talon.sdk._load import GraphLike, as_graph
from talon.sdk.fingerprint import fingerprint_graph

STAMP_KEY = "talon_stamp"
STAMP_VERSION = 1
_PACKAGES = ("numpy", "h5py", "torch", "snntorch")  # looked up by metadata only: nothing is imported


@dataclass(frozen=True)
class Stamp:
    fingerprint: str
    structure_fingerprint: str
    created_utc: str
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str = ""
    git_dirty: bool | None = None
    notes: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stamp_version": STAMP_VERSION,
            "fingerprint": self.fingerprint,
            "structure_fingerprint": self.structure_fingerprint,
            "created_utc": self.created_utc,
            "versions": dict(self.versions),
            "git_commit": self.git_commit,
            "notes": self.notes,
            "metadata": dict(self.metadata),
        }
        if self.git_dirty is not None:
            out["git_dirty"] = int(self.git_dirty)  # ints, not bools: plain in every file format
        return out


def stamp_graph(
    graph: GraphLike,
    *,
    notes: str = "",
    metadata: dict[str, Any] | None = None,
    git: bool = True,
    repo: str | os.PathLike | None = None,
    output: str | os.PathLike | None = None,
) -> Graph:
    """Return a copy of `graph` carrying a Stamp: fingerprints, UTC time, versions, git commit, notes and
    `metadata` (str/int/float values, nested dicts allowed).

    git: record the commit (and whether the work tree has uncommitted changes) of the repository at
    `repo` (default: the current directory); "" when there is none. When `graph` is a path, the stamped
    graph is written back to it, or to `output` if given; a Graph is written only if `output` is given.
    """
    g = as_graph(graph)
    user = _check_metadata(metadata or {}, "metadata")
    commit, dirty = _git_state(repo) if git else ("", None)
    stamp = Stamp(
        fingerprint=fingerprint_graph(g, True),
        structure_fingerprint=fingerprint_graph(g, False),
        created_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        versions=_versions(),
        git_commit=commit,
        git_dirty=dirty,
        notes=str(notes),
        metadata=user,
    )
    stamped = g.copy()
    stamped.metadata[STAMP_KEY] = stamp.to_dict()
    target = output if output is not None else (graph if not isinstance(graph, Graph) else None)
    if target is not None:
        write(os.fspath(target), stamped)
    return stamped


def verify_fingerprint(graph: GraphLike, expected: str | None = None, include_weights: bool = True) -> bool:
    """True if `graph` hashes to `expected`. With expected=None, checks against the fingerprint its stamp
    recorded (see stamp_graph); raises TalonUsageError if no fingerprint is given and the graph carries no stamp."""
    g = as_graph(graph)
    if expected is None:
        stamp = get_stamp(g)
        if stamp is None:
            raise TalonUsageError("verify_fingerprint: no expected fingerprint given and the graph carries no stamp")
        expected = stamp.fingerprint if include_weights else stamp.structure_fingerprint
    return hmac.compare_digest(fingerprint_graph(g, include_weights).encode(), str(expected).lower().encode())


def get_stamp(graph: GraphLike) -> Stamp | None:
    """The graph's Stamp, or None if it was never stamped."""
    raw = as_graph(graph).metadata.get(STAMP_KEY)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TalonError(f"graph metadata {STAMP_KEY!r} is a {type(raw).__name__}, not a stamp")
    plain = _plain(raw)
    dirty = plain.get("git_dirty")
    return Stamp(
        fingerprint=str(plain.get("fingerprint", "")),
        structure_fingerprint=str(plain.get("structure_fingerprint", "")),
        created_utc=str(plain.get("created_utc", "")),
        versions={str(k): str(v) for k, v in dict(plain.get("versions", {})).items()},
        git_commit=str(plain.get("git_commit", "")),
        git_dirty=None if dirty is None else bool(dirty),
        notes=str(plain.get("notes", "")),
        metadata=dict(plain.get("metadata", {})),
    )


def _plain(value: Any) -> Any:
    """numpy scalars and bytes from a file back to Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _plain(value.item())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_metadata(meta: dict, where: str) -> dict:
    if not isinstance(meta, dict):
        raise TalonUsageError(f"stamp_graph: {where} must be a dict, got {type(meta).__name__}")
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if not isinstance(k, str) or not k or "/" in k:
            raise TalonUsageError(f"stamp_graph: {where} key {k!r} must be a non-empty string without '/'")
        if isinstance(v, dict):
            out[k] = _check_metadata(v, f"{where}[{k!r}]")
        elif isinstance(v, (str, int, float)) and not isinstance(v, bool):
            out[k] = v
        else:
            raise TalonUsageError(f"stamp_graph: {where}[{k!r}] is a {type(v).__name__}; stamps hold str, int, float or dicts of them")
    return out


def _versions() -> dict[str, str]:
    out = {"talon": talon.__version__, "python": platform.python_version()}
    # packages that are not installed are left out: stamps hold str values only
    out.update({pkg: v for pkg, v in package_versions(_PACKAGES).items() if v is not None})
    return out


def _git_state(repo: str | os.PathLike | None) -> tuple[str, bool | None]:
    cwd = os.fspath(repo) if repo is not None else None
    try:
        git = _safe_git(cwd)
        head = subprocess.run([*git, "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return "", None
        status = subprocess.run(
            [*git, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return "", None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return head.stdout.strip(), dirty


# The repository being stamped is not trusted: its configuration can name programs that `git status`
# would run (core.fsmonitor, hooks, clean/smudge filters). They are switched off on the command line,
# which takes precedence over every configuration file.
_SAFE_GIT = ("git", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null", "-c", "core.untrackedCache=false")


def _safe_git(cwd: str | None) -> list[str]:
    """git with the repository's program-running settings disabled, its filters included (listing the
    configuration runs nothing)."""
    cmd = list(_SAFE_GIT)
    listed = subprocess.run([*_SAFE_GIT, "--no-optional-locks", "config", "--null", "--name-only", "--list"],
                            cwd=cwd, capture_output=True, text=True, errors="replace", timeout=5)
    names = listed.stdout.split("\0") if listed.returncode == 0 else []
    filters = {n[len("filter."):].rsplit(".", 1)[0] for n in names if n.lower().startswith("filter.") and n.count(".") >= 2}
    for name in sorted(filters):
        for key in ("clean", "smudge", "process"):
            cmd += ["-c", f"filter.{name}.{key}="]
        cmd += ["-c", f"filter.{name}.required=false"]
    return cmd
