"""A ccache-like g++ wrapper for the suite's C simulations: tests/conftest.py installs it as $CXX for the session.

Every csim build parses the ap_types headers (ap_int.h, ap_fixed.h) again: about 80% of a build's CPU time, and
the g++ builds were most of the suite's time. The wrapper (1) precompiles those two headers once per session
(a GCC precompiled header, `-include` d ahead of the sources; the binary it gives is byte-identical to a plain
build) and (2) reuses an executable already built from the same sources and flags. The code compiled, the
compiler and its flags are the product's own; only the repeated work is skipped. The cache lives in the
session's temporary folder, removed at the end of the run.

Usage (as the compiler): `python csim_cc.py CACHE_DIR REAL_CXX ARGS...`; tests/conftest.py writes a small
executable script that calls it, since csim runs $CXX directly.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

AP_MACRO = "-DTALON_USE_AP_TYPES"
PCH_HEADER = '#include "ap_int.h"\n#include "ap_fixed.h"\n'


def _atomic_copy(src: str, dst: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(dst), prefix=".cc.")
    os.close(fd)
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _pch(cache: str, cxx: str, args: list[str]) -> list[str]:
    """`-include` flags of the session's precompiled ap_types header for these flags (built on first use);
    none when the build does not use the ap_types headers."""
    if AP_MACRO not in args:
        return []
    keep = [a for a in args if a.startswith(("-std=", "-O", "-D")) or (a.startswith("-I") and os.path.isfile(os.path.join(a[2:], "ap_fixed.h")))]
    key = hashlib.sha256("\0".join([cxx, *keep]).encode()).hexdigest()[:16]
    folder = os.path.join(cache, f"pch_{key}")
    header = os.path.join(folder, "talon_ap_pch.h")
    if not os.path.isfile(header + ".gch"):
        os.makedirs(folder, exist_ok=True)
        with open(header, "w") as f:
            f.write(PCH_HEADER)
        tmp = header + f".{os.getpid()}.tmp"
        proc = subprocess.run([cxx, *keep, "-w", "-x", "c++-header", header, "-o", tmp])
        if proc.returncode != 0:
            return []  # the plain build still works; it only is slower
        os.replace(tmp, header + ".gch")
    return ["-include", header, "-Winvalid-pch"]


def _build_key(cxx: str, args: list[str]) -> str | None:
    """A hash of the compiler, the flags and every file the build reads from the project (its firmware
    folder, the sources): None when the build is not a csim build (no firmware -I folder)."""
    out = args.index("-o") + 1 if "-o" in args else None
    flags = [a for i, a in enumerate(args) if i != out and a != "-o" and not a.endswith(".cpp") and not a.startswith("-I")]
    incs = [a[2:] for a in args if a.startswith("-I")]
    fw = [d for d in incs if os.path.basename(os.path.normpath(d)) == "firmware"]
    if len(fw) != 1:
        return None
    h = hashlib.sha256("\0".join([cxx, *flags, *[d for d in incs if d not in fw]]).encode())
    for root, dirs, names in os.walk(fw[0]):
        dirs.sort()
        for nm in sorted(names):
            p = os.path.join(root, nm)
            with open(p, "rb") as f:
                h.update(os.path.relpath(p, fw[0]).encode() + b"\0" + f.read() + b"\0")
    for src in (a for a in args if a.endswith(".cpp")):
        with open(src, "rb") as f:
            h.update(os.path.basename(src).encode() + b"\0" + f.read() + b"\0")
    return h.hexdigest()


def main(argv: list[str]) -> int:
    cache, cxx, args = argv[0], argv[1], argv[2:]
    key = _build_key(cxx, args) if "-o" in args else None
    target = args[args.index("-o") + 1] if key else None
    stored = os.path.join(cache, f"exe_{key}") if key else None
    if stored and os.path.isfile(stored):
        _atomic_copy(stored, target)
        return 0
    rc = subprocess.run([cxx, *_pch(cache, cxx, args), *args]).returncode
    if rc == 0 and stored:
        _atomic_copy(target, stored)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
