"""What both directions of NIR interop share: the optional `nir` package, the error and warning classes,
reading NIR parameters as arrays, broadcasting, and TALON's JSON hints in NIR metadata.

Never imports `nir` (nor torch) at import time: `require_nir()` does, raising MissingDependencyError
without it. Nothing here knows a primitive type: those live in the NIR registry (nir_registry.py).
"""

from __future__ import annotations

import itertools
import json
import warnings
from typing import Any

import numpy as np

from talon.errors import MissingDependencyError, TalonFormatError

#: The timestep assumed for a NIR graph that says nothing about it: snnTorch's exporter hard-codes it.
DEFAULT_DT = 1e-4
#: The oldest `nir` TALON works with (pyproject.toml's `nir` extra says the same).
NIR_MIN_VERSION = "1.0.8"
HINT_KEY = "talon"
HINT_VERSION = 1
_INSTALL = 'NIR support needs the optional "nir" package: pip install "t1c-talon[nir]"'


class NIRConversionError(TalonFormatError):
    """A graph cannot be converted between NIR and TALON without changing what it computes."""


class NIRConversionWarning(UserWarning):
    """A NIR conversion made a choice the caller may want to make explicitly (dt, a batch dimension)."""


def require_nir() -> Any:
    try:
        import nir  # the optional dependency; absolute import, not this module
    except ImportError as exc:
        raise MissingDependencyError(_INSTALL) from exc
    _check_nir_version(getattr(nir, "__version__", None))
    return nir


def _version_tuple(version: str) -> tuple[int, ...]:
    """(1, 0, 8) from "1.0.8", "1.0.8.dev3", "1.0.8rc1": the leading release numbers."""
    out = []
    for part in str(version).split("."):
        digits = "".join(itertools.takewhile(str.isdigit, part))
        if not digits:
            break
        out.append(int(digits))
        if len(digits) != len(part):
            break
    return tuple(out)


def _check_nir_version(version: str | None) -> None:
    """Older `nir` lacks what TALON writes (v_reset on LIF/IF/CubaLIF came in 1.0.6, write(compression=) in
    1.0.8) and would fail with a bare TypeError deep inside a conversion; say which version is needed instead."""
    if version is None:
        return  # a source checkout without metadata: nothing to compare; trust it
    if _version_tuple(version) < _version_tuple(NIR_MIN_VERSION):
        raise MissingDependencyError(
            f"NIR support needs nir>={NIR_MIN_VERSION}, but nir {version} is installed (older nir has no v_reset on its "
            f'neurons and no compressed writing): pip install "nir>={NIR_MIN_VERSION}" (or "t1c-talon[nir]"). Some tools pin '
            "an older nir (sinabs: nir<=1.0.4); install TALON in its own environment if they conflict")


def warn_nir(msg: str) -> None:
    warnings.warn(msg, NIRConversionWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------------------
# Small value helpers
# ----------------------------------------------------------------------------------------------------


def array_of(value: Any, where: str) -> np.ndarray:
    """A numpy array from a NIR parameter (numpy, Python number, or a CPU torch tensor)."""
    if value is None:
        raise NIRConversionError(f"{where} is missing")
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor left in an in-memory graph
        value = value.detach().cpu().numpy()
    try:
        out = np.asarray(value)
    except Exception as exc:
        raise NIRConversionError(f"{where}: cannot read as an array ({exc})") from None
    if out.dtype.kind not in "biuf":
        raise NIRConversionError(f"{where} must be numeric, got dtype {out.dtype}")
    return out


#: Parameters that may be infinite: a time constant (no leak, no input through it) or a threshold (never fires).
INFINITE_OK = ("tau", "tau_mem", "tau_syn", "v_threshold", "threshold")


def finite_parameter(a: np.ndarray, attr: str, where: str) -> np.ndarray:
    """`a`, refused when NaN, or infinite outside INFINITE_OK: NIR's equations are undefined there (Lava's netx
    writes tau_syn = w_in = inf for a current decay of 0, meaning w_in/tau_syn = 1; NIR's inf/inf is no number)."""
    if a.dtype.kind != "f" or np.all(np.isfinite(a)) or (attr in INFINITE_OK and not np.any(np.isnan(a))):
        return a
    bad = "NaN" if np.any(np.isnan(a)) else "infinite"
    lava = (" (Lava's netx writes w_in = tau_syn = inf for a current that never decays; exported with large, equal finite "
            "values instead, w_in/tau_syn is 1)" if attr == "w_in" and bad == "infinite" else "")
    raise NIRConversionError(f"{where} is {bad} (at {int(np.sum(~np.isfinite(a)))} of {a.size} values), where NIR's equations "
                             f"give no number; write finite values in the exporter{lava}")


def int_of(value: Any, where: str) -> int:
    a = array_of(value, where).reshape(-1)
    if a.size != 1 or (a.dtype.kind == "f" and not float(a[0]).is_integer()):
        raise NIRConversionError(f"{where} must be one integer, got {value!r}")
    return int(a[0])


def ints_of(value: Any, n: int, where: str) -> tuple[int, ...]:
    a = array_of(value, where).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, n)
    if a.size != n or (a.dtype.kind == "f" and not np.all(np.mod(a, 1) == 0)):
        raise NIRConversionError(f"{where} must be {n} integers, got {value!r}")
    return tuple(int(v) for v in a)


def shape_of(value: Any, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    a = array_of(value, where).reshape(-1)
    if a.dtype.kind == "f" and a.size and not np.all(np.mod(a, 1) == 0):
        raise NIRConversionError(f"{where} must be a shape, got {value!r}")
    return tuple(int(v) for v in a)


def declared_shape(types: Any, key: str) -> tuple[int, ...] | None:
    """The single shape in a NIR input_type/output_type dict (None when unknown or several)."""
    if not isinstance(types, dict) or len(types) != 1:
        return None
    value = next(iter(types.values()))
    try:
        return shape_of(value, key)
    except NIRConversionError:
        return None


def broadcast_full(arr: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """`arr` broadcast to the neuron shape (a copy, dtype kept): NIR wants one value per element."""
    if shape is None or arr.shape == tuple(shape):
        return np.array(arr, copy=True, order="C")
    return np.ascontiguousarray(np.broadcast_to(arr, shape))


def reduce_to(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """The array of `shape` whose broadcast is `arr`, bit for bit, or None if there is none."""
    shape = tuple(shape)
    if arr.shape == shape:
        return arr
    lead = arr.ndim - len(shape)
    if lead < 0:
        return None
    tail = arr.shape[lead:]
    if any(s not in (1, t) for s, t in zip(shape, tail)):
        return None
    small = arr[(0,) * lead + tuple(slice(0, 1) if s == 1 else slice(None) for s in shape)]
    if small.shape != shape or np.broadcast_to(small, arr.shape).tobytes() != np.ascontiguousarray(arr).tobytes():
        return None
    return np.ascontiguousarray(small)


# -- JSON encoding of hints (exact for floats, ints, arrays, tuples and nested dicts) --------------


class Unencodable(Exception):
    pass


def encode(v: Any) -> Any:
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, (np.integer, np.floating)):
        return v
    if isinstance(v, np.bool_):
        return {"__np__": "bool", "v": bool(v)}
    if isinstance(v, np.integer):
        return {"__np__": v.dtype.str, "v": int(v)}
    if isinstance(v, np.floating):
        return {"__np__": v.dtype.str, "v": float(v)}
    if isinstance(v, np.ndarray):
        if v.dtype.kind not in "biuf":
            raise Unencodable(f"array of dtype {v.dtype}")
        return {"__nd__": v.dtype.str, "shape": list(v.shape), "data": v.reshape(-1).tolist()}
    if isinstance(v, tuple):
        return {"__tuple__": [encode(x) for x in v]}
    if isinstance(v, list):
        return [encode(x) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise Unencodable("dict with non-string keys")
        return {"__dict__": {k: encode(x) for k, x in v.items()}}
    raise Unencodable(type(v).__name__)


def decode(v: Any) -> Any:
    if isinstance(v, list):
        return [decode(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "__nd__" in v:
        return np.asarray(v["data"], dtype=np.dtype(v["__nd__"])).reshape(v["shape"])
    if "__np__" in v:
        return np.bool_(v["v"]) if v["__np__"] == "bool" else np.dtype(v["__np__"]).type(v["v"])
    if "__tuple__" in v:
        return tuple(decode(x) for x in v["__tuple__"])
    if "__dict__" in v:
        return {k: decode(x) for k, x in v["__dict__"].items()}
    raise ValueError(f"unknown encoded value {v!r}")


def read_hint(metadata: Any, where: str) -> dict | None:
    if not isinstance(metadata, dict) or HINT_KEY not in metadata:
        return None
    raw = metadata[HINT_KEY]
    if isinstance(raw, np.ndarray) and raw.shape == ():
        raw = raw.item()
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        hint = json.loads(str(raw))
        if not isinstance(hint, dict) or hint.get("v") != HINT_VERSION:
            raise ValueError(f"unsupported hint version {hint.get('v') if isinstance(hint, dict) else hint!r}")
        return hint
    except Exception as exc:
        warn_nir(f"{where}: ignoring unreadable TALON metadata in the NIR graph ({exc})")
        return None


def foreign_metadata(metadata: Any, where: str) -> dict:
    """NIR metadata entries other than our hint, as values a .t1c file can store (nested dicts kept: nir
    writes them as HDF5 groups, e.g. a training record {"training": {"lr": 0.01}})."""
    if not isinstance(metadata, dict):
        return {}
    return _storable_dict({k: v for k, v in metadata.items() if k != HINT_KEY}, where, "")


_DROP = object()


def _storable_dict(d: dict, where: str, prefix: str) -> dict:
    out: dict = {}
    for k, v in d.items():
        if not isinstance(k, str):
            continue
        kept = _storable(v, where, f"{prefix}{k}")
        if kept is not _DROP:
            out[k] = kept
    return out


def _storable(v: Any, where: str, key: str) -> Any:
    if hasattr(v, "detach") and hasattr(v, "cpu"):
        v = v.detach().cpu().numpy()
    if isinstance(v, np.ndarray) and v.shape == ():
        v = v.item()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, (str, bool, int, float)) or (isinstance(v, np.ndarray) and v.dtype.kind in "biuf"):
        return v
    if isinstance(v, dict):
        return _storable_dict(v, where, f"{key}.")
    warn_nir(f"{where}: NIR metadata entry {key!r} ({type(v).__name__}) is not kept")
    return _DROP


def nir_metadata_out(metadata: dict | None) -> dict:
    """The entries of metadata["nir_metadata"] that NIR's writer can store, for the way back."""
    src = (metadata or {}).get("nir_metadata")
    return _writable({k: v for k, v in src.items() if k != HINT_KEY}) if isinstance(src, dict) else {}


def _writable(d: dict) -> dict:
    out: dict = {}
    for k, v in d.items():
        if not isinstance(k, str):
            continue
        if isinstance(v, dict):
            out[k] = _writable(v)
        elif isinstance(v, (str, bool, int, float)) or (isinstance(v, np.ndarray) and v.dtype.kind in "biuf"):
            out[k] = v
    return out




def chain(nir: Any, shape: tuple, parts: list[tuple[str, Any]]) -> Any:
    """A NIRGraph Input -> parts (in order) -> Output, all of sample shape `shape`: how one TALON node that NIR
    writes as several (a neuron with reset "none" or graded spikes, SepConv2d) travels."""
    nodes = {"input": nir.Input(input_type={"input": np.array(shape, dtype=np.int64)})}
    nodes.update(parts)
    nodes["output"] = nir.Output(output_type={"output": np.array(shape, dtype=np.int64)})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={}, type_check=False)


def check_cycles(g: Any, where: str) -> None:
    """Each cycle must hold exactly one stateful node: that is where both sides put the step of delay."""
    for comp in g.cycles():
        stateful = [n for n in comp if g.nodes[n].stateful]
        if not stateful:
            raise NIRConversionError(f"{where}: the cycle through {comp} has no stateful node (neuron or Delay) to carry it "
                                     "from one step to the next")
        if len(stateful) > 1:
            raise NIRConversionError(
                f"{where}: the cycle through {comp} holds {len(stateful)} stateful nodes {stateful}. TALON delays the output of "
                "every stateful node inside a cycle by one step, while NIR does not say where a loop's delay sits (its "
                "simulators put one delay per loop), so this loop would not compute the same on both sides. Restructure it "
                "so that one neuron (or a nested graph) carries the recurrence")
