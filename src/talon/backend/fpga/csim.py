"""C simulation of a generated project with g++ (no Xilinx tool needed), and the ap_types lookup."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass, field

import numpy as np

from talon.backend.saturation_report import FixedPointSaturationWarning, describe, half_up_clip, message
from talon.errors import BackendError

AP_TYPES_HINT = (
    "the ap_types headers (ap_int.h, ap_fixed.h) were not found: install the optional extra "
    "`pip install 't1c-talon[hls4ml]'` (hls4ml's wheel ships them under hls4ml/templates/vivado/ap_types) "
    "or set TALON_AP_TYPES_DIR to a folder holding them; without them csim uses plain C++ integer ports"
)


def find_ap_types() -> str | None:
    """The folder holding ap_int.h/ap_fixed.h: $TALON_AP_TYPES_DIR, else the installed hls4ml's copy."""
    env = os.environ.get("TALON_AP_TYPES_DIR")
    if env and os.path.isfile(os.path.join(env, "ap_int.h")):
        return os.path.abspath(env)
    try:
        spec = importlib.util.find_spec("hls4ml")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for base in spec.submodule_search_locations:
            d = os.path.join(base, "templates", "vivado", "ap_types")
            if os.path.isfile(os.path.join(d, "ap_int.h")) and os.path.isfile(os.path.join(d, "ap_fixed.h")):
                return d
    return None


def find_compiler() -> str | None:
    """$CXX, else g++ on PATH."""
    cxx = os.environ.get("CXX")
    if cxx and shutil.which(cxx):
        return shutil.which(cxx)
    return shutil.which("g++")


@dataclass
class CSimResult:
    """What `csim` returns: integer words (int64, shape (T, B, *shape)) per port, and their formats.
    `value(kind, name)` gives the real values (word * 2^-frac, float64), as `simulate` reports them."""

    spikes: dict[str, np.ndarray]
    membranes: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    formats: dict[str, dict[str, tuple[int, int]]]
    project: str
    ap_types: bool
    n_steps: int
    batch_size: int
    log: str = field(default="", repr=False)

    def value(self, kind: str, name: str) -> np.ndarray:
        words = getattr(self, kind)[name]
        return np.ldexp(words.astype(np.float64), -self.formats[kind][name][1])


def _build(project: str, manifest: dict, ap_dir: str | None) -> tuple[str, str]:
    cxx = find_compiler()
    if cxx is None:
        raise BackendError("csim needs a C++ compiler: g++ was not found on PATH (or set CXX)")
    top = manifest["top"]
    srcs = [os.path.join(project, "firmware", f"{top}.cpp"), os.path.join(project, "tb", "talon_tb.cpp")]
    flags = ["-std=c++14", "-O1", "-w", f"-I{os.path.join(project, 'firmware')}"]
    if ap_dir:
        flags += ["-DTALON_USE_AP_TYPES", f"-I{ap_dir}"]
    h = hashlib.sha256(" ".join([cxx] + flags).encode())
    for root, _, names in sorted(os.walk(os.path.join(project, "firmware"))):
        for nm in sorted(names):
            with open(os.path.join(root, nm), "rb") as f:
                h.update(nm.encode() + b"\0" + f.read())
    with open(srcs[1], "rb") as f:
        h.update(f.read())
    build = os.path.join(project, "build", "csim")
    os.makedirs(build, exist_ok=True)
    exe = os.path.join(build, f"talon_tb_{h.hexdigest()[:16]}")
    if os.path.isfile(exe):
        return exe, "(cached build)"
    # a fresh, exclusively created name (a predictable one could be a planted symlink), renamed into place
    fd, tmp = tempfile.mkstemp(dir=build, prefix=f".{os.path.basename(exe)}.", suffix=".tmp")
    os.close(fd)
    try:
        proc = subprocess.run([cxx, *flags, *srcs, "-o", tmp], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BackendError(f"g++ failed to build the C simulation of {project}:\n{proc.stderr[-4000:]}")
        os.replace(tmp, exe)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return exe, proc.stderr


def run_csim(project: str, stimulus_seqs: dict[str, np.ndarray], n_steps: int, *, use_ap_types: bool | str = "auto", timeout: float = 600) -> CSimResult:
    """Build (cached by content hash under PROJECT/build/csim) and run the testbench of `project` on
    float inputs {input name: (T, B, *shape)}."""
    with open(os.path.join(project, "talon_project.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    ap_dir = None
    if use_ap_types is True or use_ap_types == "auto":
        ap_dir = find_ap_types()
        if ap_dir is None and use_ap_types is True:
            raise BackendError(AP_TYPES_HINT)
    elif use_ap_types is not False:
        raise BackendError(f"use_ap_types must be True, False or 'auto', got {use_ap_types!r}")
    exe, log = _build(project, manifest, ap_dir)
    batch = None
    clipped: list[str] = []
    with tempfile.TemporaryDirectory(prefix="talon-csim-") as data:
        for p in manifest["inputs"]:
            if p["name"] not in stimulus_seqs:
                raise BackendError(f"csim: no input for Input node {p['name']!r}")
            x = np.asarray(stimulus_seqs[p["name"]], dtype=np.float64)
            if x.ndim != len(p["shape"]) + 2 or list(x.shape[2:]) != p["shape"] or x.shape[0] < n_steps:
                raise BackendError(f"csim: input {p['name']!r} has shape {x.shape}; expected (>= {n_steps}, B, *{p['shape']})")
            if batch is not None and x.shape[1] != batch:
                raise BackendError("csim: every input must have the same batch size")
            batch = int(x.shape[1])
            far = half_up_clip(x[:n_steps], *p["format"])  # the testbench saturates it: say so
            if far is not None:
                clipped.append(describe(p["name"], "input", *p["format"], far))
            np.ascontiguousarray(x[:n_steps], dtype="<f8").tofile(os.path.join(data, f"{p['port']}.bin"))
        if clipped:
            warnings.warn(message(clipped), FixedPointSaturationWarning, stacklevel=3)
        proc = subprocess.run([exe, data, str(n_steps), str(batch)], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise BackendError(f"the C testbench failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
        res: dict[str, dict[str, np.ndarray]] = {"outputs": {}, "spikes": {}, "membranes": {}}
        fmts: dict[str, dict[str, tuple[int, int]]] = {"outputs": {}, "spikes": {}, "membranes": {}}
        for kind in res:
            for p in manifest[kind]:
                a = np.fromfile(os.path.join(data, f"{p['port']}.out.bin"), dtype="<i8").astype(np.int64)
                res[kind][p["name"]] = a.reshape(n_steps, batch, *p["shape"])
                fmts[kind][p["name"]] = tuple(p["format"])
    return CSimResult(res["spikes"], res["membranes"], res["outputs"], fmts, project, ap_dir is not None, n_steps, batch, log + proc.stdout)
