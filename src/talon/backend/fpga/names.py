"""Sanitising names that come from a graph before they become C identifiers or file names.

A node name is arbitrary UTF-8 text (it may hold spaces, quotes, path separators, ``..``, C keywords).
`c_identifiers` maps every node name to a unique identifier matching ``[A-Za-z][A-Za-z0-9_]*``:
``n_`` + the name with every other character replaced by ``_``, truncated with a short stable hash
when long, and de-duplicated in layer order. The identifiers are also the only graph-derived parts of
generated file names, so no name can escape the project folder.
"""

from __future__ import annotations

import hashlib
import re

_MAX = 40


def _base(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    s = re.sub(r"_+", "_", s).strip("_") or "node"
    if len(s) > _MAX or s != name:
        # changed or shortened: a stable hash of the original keeps distinct names distinct
        s = f"{s[:_MAX]}_{hashlib.sha1(name.encode('utf-8')).hexdigest()[:8]}"
    return "n_" + s


def c_identifiers(names: list[str]) -> dict[str, str]:
    """{name: unique C identifier}, deterministic for a given ordered list of names."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        ident = _base(str(name))
        k = 2
        cand = ident
        while cand in used:
            cand = f"{ident}_{k}"
            k += 1
        used.add(cand)
        out[name] = cand
    return out


def c_string(text: str) -> str:
    """`text` made safe for a C `//` comment or a Markdown table cell: every character outside
    ``[A-Za-z0-9 _.,:=+()-]`` becomes ``?`` (no newlines, no backslash line continuations, no ``*/``,
    no ``|``, no preprocessor text)."""
    return re.sub(r"[^A-Za-z0-9 _.,:=+()\-]", "?", str(text))[:200]
