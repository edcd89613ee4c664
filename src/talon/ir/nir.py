"""NIR interoperability: convert between talon.ir Graphs and the Neuromorphic Intermediate Representation.

NIR (the optional `nir` package, `.nir` HDF5 files) is how Norse, Sinabs, Rockpool, Lava, SpiNNaker2,
Xylo and snnTorch exchange spiking networks. The public functions are

    from_nir(nir_graph_or_path, *, dt=None, strip_batch=None) -> Graph
    to_nir(graph, *, dt=None, approximate_resets=False, measure=None) -> nir.NIRGraph
    read_nir(path, *, dt=None, strip_batch=None) -> Graph      write_nir(path, graph, ...) -> None
    is_nir_file(path) -> bool

`talon.ir.read`/`talon.ir.write` call read_nir/write_nir for `.nir` paths (and read NIR content under
any name). This module never imports `nir` (nor torch) at import time: without `nir` installed, every
conversion raises MissingDependencyError saying `pip install "t1c-talon[nir]"`.

Semantics (docs/nir.md has the full table):

* NIR neurons are continuous-time ODEs; TALON runs them discretised by forward Euler with step `dt`,
  stage by stage in graph order: LIF  tau*dv/dt = (v_leak - v) + r*I  becomes
  v = beta*v + (1-beta)*v_leak + gain*I with beta = 1 - dt/tau, gain = dt*r/tau (neurons.py).
* NIR's reset ("v = v_reset when v > v_threshold", applied at once) is TALON's reset_mode "zero" with
  reset_delay=True: TALON keeps the pre-reset membrane and replaces it by v_reset before the next
  integration, which yields the same spikes. subtract and zero_post have no NIR equivalent: to_nir
  raises, unless approximate_resets=True (nir_resets.py) writes NIR's reset with a measured warning.
  reset_mode "none" is exported exactly as LI (or I, CubaLI) followed by Threshold.
* NIR carries no timestep. from_nir takes `dt`, else the `dt` entry of the graph's metadata (written by
  to_nir), else 1e-4 (snnTorch's export convention) with a NIRConversionWarning.
* Several edges into one NIR node are summed. A cycle must pass through exactly one stateful node
  (neuron, Delay, stateful subgraph), whose output reaches the loop one step late.
* What NIR cannot hold (TALON-only types with an exact NIR expression, parameter shapes before
  broadcasting, unset optional fields, node order, dt, metadata) travels in a JSON string under the
  "talon" key of each NIR node's metadata. NIR itself stays complete and correct without it; from_nir
  uses it only after checking that the restored node re-exports to exactly the NIR node it came with.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from talon.errors import GraphValidationError, MissingDependencyError, PrimitiveError, TalonFormatError
from talon.ir import primitives as P
from talon.ir._hdf5_safety import MAX_GRAPH_DEPTH
from talon.ir._atomic import atomic_path
from talon.ir.graph import Graph, check_name
from talon.ir.node import ARRAY, Node, _coerce, get_node_class, values_equal
from talon.ir.nir_units import TimeUnitAdvice, advise_dt
from talon.ir.nir_resets import ResetMeasure, approximated, approximation_message, needs_approximation, reset_approximation, reset_measure

__all__ = [
    "from_nir", "to_nir", "read_nir", "write_nir", "is_nir_file", "DEFAULT_DT", "NIRConversionError",
    "NIRConversionWarning",
]

#: The timestep assumed for a NIR graph that says nothing about it: snnTorch's exporter hard-codes it.
DEFAULT_DT = 1e-4
#: The oldest `nir` TALON works with (pyproject.toml's `nir` extra says the same).
NIR_MIN_VERSION = "1.0.8"
HINT_KEY = "talon"
_HINT_VERSION = 1
_INSTALL = 'NIR support needs the optional "nir" package: pip install "t1c-talon[nir]"'


class NIRConversionError(TalonFormatError):
    """A graph cannot be converted between NIR and TALON without changing what it computes."""


class NIRConversionWarning(UserWarning):
    """A NIR conversion made a choice the caller may want to make explicitly (dt, a batch dimension)."""


def _require_nir() -> Any:
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


def _warn(msg: str) -> None:
    warnings.warn(msg, NIRConversionWarning, stacklevel=3)


# ----------------------------------------------------------------------------------------------------
# Small value helpers
# ----------------------------------------------------------------------------------------------------


def _arr(value: Any, where: str) -> np.ndarray:
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


def _int(value: Any, where: str) -> int:
    a = _arr(value, where).reshape(-1)
    if a.size != 1 or (a.dtype.kind == "f" and not float(a[0]).is_integer()):
        raise NIRConversionError(f"{where} must be one integer, got {value!r}")
    return int(a[0])


def _ints(value: Any, n: int, where: str) -> tuple[int, ...]:
    a = _arr(value, where).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, n)
    if a.size != n or (a.dtype.kind == "f" and not np.all(np.mod(a, 1) == 0)):
        raise NIRConversionError(f"{where} must be {n} integers, got {value!r}")
    return tuple(int(v) for v in a)


def _shape(value: Any, where: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    a = _arr(value, where).reshape(-1)
    if a.dtype.kind == "f" and a.size and not np.all(np.mod(a, 1) == 0):
        raise NIRConversionError(f"{where} must be a shape, got {value!r}")
    return tuple(int(v) for v in a)


def _declared(types: Any, key: str) -> tuple[int, ...] | None:
    """The single shape in a NIR input_type/output_type dict (None when unknown or several)."""
    if not isinstance(types, dict) or len(types) != 1:
        return None
    value = next(iter(types.values()))
    try:
        return _shape(value, key)
    except NIRConversionError:
        return None


def _full(arr: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """`arr` broadcast to the neuron shape (a copy, dtype kept): NIR wants one value per element."""
    if shape is None or arr.shape == tuple(shape):
        return np.array(arr, copy=True, order="C")
    return np.ascontiguousarray(np.broadcast_to(arr, shape))


def _reduce(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
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


class _Unencodable(Exception):
    pass


def _enc(v: Any) -> Any:
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
            raise _Unencodable(f"array of dtype {v.dtype}")
        return {"__nd__": v.dtype.str, "shape": list(v.shape), "data": v.reshape(-1).tolist()}
    if isinstance(v, tuple):
        return {"__tuple__": [_enc(x) for x in v]}
    if isinstance(v, list):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise _Unencodable("dict with non-string keys")
        return {"__dict__": {k: _enc(x) for k, x in v.items()}}
    raise _Unencodable(type(v).__name__)


def _dec(v: Any) -> Any:
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if not isinstance(v, dict):
        return v
    if "__nd__" in v:
        return np.asarray(v["data"], dtype=np.dtype(v["__nd__"])).reshape(v["shape"])
    if "__np__" in v:
        return np.bool_(v["v"]) if v["__np__"] == "bool" else np.dtype(v["__np__"]).type(v["v"])
    if "__tuple__" in v:
        return tuple(_dec(x) for x in v["__tuple__"])
    if "__dict__" in v:
        return {k: _dec(x) for k, x in v["__dict__"].items()}
    raise ValueError(f"unknown encoded value {v!r}")


def _read_hint(metadata: Any, where: str) -> dict | None:
    if not isinstance(metadata, dict) or HINT_KEY not in metadata:
        return None
    raw = metadata[HINT_KEY]
    if isinstance(raw, np.ndarray) and raw.shape == ():
        raw = raw.item()
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        hint = json.loads(str(raw))
        if not isinstance(hint, dict) or hint.get("v") != _HINT_VERSION:
            raise ValueError(f"unsupported hint version {hint.get('v') if isinstance(hint, dict) else hint!r}")
        return hint
    except Exception as exc:
        _warn(f"{where}: ignoring unreadable TALON metadata in the NIR graph ({exc})")
        return None


def _foreign_metadata(metadata: Any, where: str) -> dict:
    """NIR metadata entries other than our hint, as values a .t1c file can store."""
    out: dict = {}
    if not isinstance(metadata, dict):
        return out
    for k, v in metadata.items():
        if k == HINT_KEY or not isinstance(k, str):
            continue
        if hasattr(v, "detach") and hasattr(v, "cpu"):
            v = v.detach().cpu().numpy()
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if isinstance(v, np.ndarray) and v.shape == ():
            v = v.item()
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if isinstance(v, (str, bool, int, float)) or (isinstance(v, np.ndarray) and v.dtype.kind in "biuf"):
            out[k] = v
        else:
            _warn(f"{where}: NIR metadata entry {k!r} ({type(v).__name__}) is not kept")
    return out


def _nir_metadata_out(metadata: dict | None) -> dict:
    """The entries of metadata["nir_metadata"] that NIR's writer can store, for the way back."""
    src = (metadata or {}).get("nir_metadata")
    if not isinstance(src, dict):
        return {}
    return {k: v for k, v in src.items() if isinstance(k, str) and k != HINT_KEY and (
        isinstance(v, (str, bool, int, float)) or (isinstance(v, np.ndarray) and v.dtype.kind in "biuf"))}


# ----------------------------------------------------------------------------------------------------
# TALON -> NIR, one node
# ----------------------------------------------------------------------------------------------------

_EXACT_NEURONS = ("LIF", "IF", "CubaLIF")
#: TALON types computed as the identity in inference; exported as Scale(ones), tagged.
_IDENTITIES = ("Dropout", "HybridRegion")


def _no_nir(name: str, node: Node, why: str) -> NIRConversionError:
    return NIRConversionError(f"node {name!r} ({node.type_name}) cannot be exported to NIR: {why}")


def _spike_reset_ok(name: str, node: Node) -> None:
    """reset_mode "zero" (NIR's reset) or "none"; reset_delay=False only where it changes no spike."""
    mode = node.reset_mode
    if mode == "subtract":
        raise _no_nir(name, node, "reset_mode 'subtract' (v -= v_threshold after a spike, snnTorch's default) has no NIR "
                      "equivalent: NIR neurons reset to v_reset. Pass approximate_resets=True (talon convert "
                      "--approximate-resets) to write NIR's reset anyway, with the effect on the spikes measured; or retrain "
                      "with reset_mechanism='zero'; or keep the model in .t1c")
    if mode == "zero_post":
        raise _no_nir(name, node, "reset_mode 'zero_post' (the membrane after the step following a spike is cleared, "
                      "snnTorch Synaptic/RLeaky 'zero') has no NIR equivalent: NIR resets at the spike and integrates the "
                      "next input from v_reset. Pass approximate_resets=True (talon convert --approximate-resets) to write "
                      "NIR's reset anyway, with the effect on the spikes measured")
    if not node.reset_delay and mode == "zero":
        v_reset_zero = node.v_reset is None or bool(np.all(node.v_reset == 0))
        if not (v_reset_zero and bool(np.all(node.v_threshold > 0))):
            raise _no_nir(name, node, "reset_delay=False with a non-zero v_reset or a threshold <= 0 spikes differently "
                          "from NIR's reset; only reset_delay=False with v_reset 0 and positive thresholds is exact")


def _gsf_exact(node: Node) -> bool:
    return node.graded_spikes_factor == 1.0


def _neuron_core(nir: Any, node: Node, shape: tuple, dt: float) -> Any:
    """The NIR neuron node for reset "zero" (LIF, IF, CubaLIF), parameters broadcast to `shape`."""
    thr = _full(node.v_threshold, shape)
    v_reset = _full(np.zeros((), dtype=node.v_threshold.dtype) if node.v_reset is None else node.v_reset, shape)
    if node.type_name == "LIF":
        return nir.LIF(tau=_full(node.tau, shape), r=_full(node.r, shape), v_leak=_full(node.v_leak, shape),
                       v_threshold=thr, v_reset=v_reset)
    if node.type_name == "IF":
        r = np.ones((), dtype=thr.dtype) if node.r is None else node.r
        return nir.IF(r=_full(r, shape), v_threshold=thr, v_reset=v_reset)
    w_in = np.asarray(node.tau_syn, dtype=np.float64) / dt if node.w_in is None else node.w_in
    return nir.CubaLIF(tau_syn=_full(node.tau_syn, shape), tau_mem=_full(node.tau_mem, shape), r=_full(node.r, shape),
                       v_leak=_full(node.v_leak, shape), v_threshold=thr, v_reset=v_reset, w_in=_full(np.asarray(w_in), shape))


def _neuron_integrator(nir: Any, node: Node, shape: tuple, dt: float) -> tuple[str, Any]:
    """The non-spiking part of a reset-"none" neuron: LI, I or CubaLI."""
    if node.type_name == "LIF":
        return "li", nir.LI(tau=_full(node.tau, shape), r=_full(node.r, shape), v_leak=_full(node.v_leak, shape))
    if node.type_name == "IF":
        r = np.ones((), dtype=node.v_threshold.dtype) if node.r is None else node.r
        return "i", nir.I(r=_full(r, shape))
    w_in = np.asarray(node.tau_syn, dtype=np.float64) / dt if node.w_in is None else node.w_in
    return "cubali", nir.CubaLI(tau_syn=_full(node.tau_syn, shape), tau_mem=_full(node.tau_mem, shape), r=_full(node.r, shape),
                                v_leak=_full(node.v_leak, shape), w_in=_full(np.asarray(w_in), shape))


def _chain(nir: Any, shape: tuple, parts: list[tuple[str, Any]]) -> Any:
    nodes = {"input": nir.Input(input_type={"input": np.array(shape, dtype=np.int64)})}
    nodes.update(parts)
    nodes["output"] = nir.Output(output_type={"output": np.array(shape, dtype=np.int64)})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={}, type_check=False)


def _export_neuron(nir: Any, name: str, node: Node, shape: tuple, dt: float, approx: bool = False) -> Any:
    if approx and needs_approximation(node):
        node = approximated(node)  # the hint still records the true reset (_node_hint compares with the original)
    _spike_reset_ok(name, node)
    gsf = [] if _gsf_exact(node) else [("scale", nir.Scale(scale=np.full(shape, np.float32(node.graded_spikes_factor), dtype=np.float32)))]
    if node.reset_mode == "zero":
        core = _neuron_core(nir, node, shape, dt)
        if not gsf:
            return core
        return _chain(nir, shape, [(node.type_name.lower(), core)] + gsf)
    # reset_mode "none": the membrane never resets, so the neuron is its integrator followed by a Threshold.
    return _chain(nir, shape, [_neuron_integrator(nir, node, shape, dt), ("threshold", nir.Threshold(threshold=_full(node.v_threshold, shape)))] + gsf)


def _grouped(conv: Any, in_shape: tuple) -> Any:
    """nir (<= 1.0.8) types a convolution's input as (weight.shape[1], ...), which is C_in/groups: set the real one."""
    conv.input_type = {"input": np.array(in_shape, dtype=np.int64)}
    return conv


def _set_types(nnode: Any, in_shape: tuple | None, out_shape: tuple | None) -> Any:
    if in_shape is not None:
        nnode.input_type = {"input": np.array(in_shape, dtype=np.int64)}
    if out_shape is not None:
        nnode.output_type = {"output": np.array(out_shape, dtype=np.int64)}
    return nnode


def _export_node(nir: Any, name: str, node: Node, in_shape: tuple | None, out_shape: tuple | None, dt: float,
                 approx: bool = False) -> Any:
    """The NIR node computing exactly what `node` computes, given its (sample) input and output shapes
    (approx: subtract/zero_post neurons as NIR's reset, see nir_resets)."""
    t = node.type_name

    def need(shape: tuple | None, rank: int | None = None) -> tuple:
        if shape is None:
            raise _no_nir(name, node, "its input shape is unknown (give the graph an Input shape)")
        if rank is not None and len(shape) != rank:
            raise _no_nir(name, node, f"NIR's {t if t in ('Conv1d', 'Conv2d') else 'Affine/Linear'} takes rank-{rank} "
                          f"inputs (batch excluded), this node receives shape {tuple(shape)}")
        return tuple(shape)

    if t == "Input":
        return nir.Input(input_type={"input": np.array(node.shape, dtype=np.int64)})
    if t == "Output":
        shape = out_shape if out_shape is not None else node.shape
        if shape is None:
            raise _no_nir(name, node, "its shape is unknown")
        return nir.Output(output_type={"output": np.array(shape, dtype=np.int64)})
    if t in ("Affine", "SpikingAffine"):
        need(in_shape, 1)
        return nir.Affine(weight=node.weight.copy(), bias=node.bias.copy())
    if t == "Linear":
        need(in_shape, 1)
        return nir.Linear(weight=node.weight.copy())
    if t == "Scale":
        return nir.Scale(scale=_full(node.scale, need(in_shape)))
    if t == "Conv1d":
        shape = need(in_shape, 2)
        return _grouped(nir.Conv1d(input_shape=int(shape[1]), weight=node.weight.copy(), stride=node.stride, padding=node.padding,
                          dilation=node.dilation, groups=node.groups, bias=node.bias.copy()), shape)
    if t in ("Conv2d", "SConv", "SDConv"):
        shape = need(in_shape, 3)
        return _grouped(nir.Conv2d(input_shape=tuple(int(s) for s in shape[1:]), weight=node.weight.copy(), stride=tuple(node.stride),
                          padding=tuple(node.padding), dilation=tuple(node.dilation), groups=node.groups, bias=node.bias.copy()), shape)
    if t == "SepConv2d":
        shape = need(in_shape, 3)
        c = int(node.depthwise_weight.shape[0])
        dw = _grouped(nir.Conv2d(input_shape=tuple(shape[1:]), weight=node.depthwise_weight.copy(), stride=tuple(node.stride),
                                 padding=tuple(node.padding), dilation=tuple(node.dilation), groups=c, bias=node.depthwise_bias.copy()), shape)
        mid = tuple(int(s) for s in dw.output_type["output"][1:])
        pw = nir.Conv2d(input_shape=mid, weight=node.pointwise_weight.copy(), stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                        groups=1, bias=node.pointwise_bias.copy())
        nodes = {"input": nir.Input(input_type={"input": np.array(shape, dtype=np.int64)}), "depthwise": dw, "pointwise": pw,
                 "output": nir.Output(output_type={"output": np.array(pw.output_type["output"], dtype=np.int64)})}
        return nir.NIRGraph(nodes=nodes, edges=[("input", "depthwise"), ("depthwise", "pointwise"), ("pointwise", "output")],
                            metadata={}, type_check=False)
    if t == "SumPool2d":
        return _set_types(nir.SumPool2d(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                                        padding=np.array(node.padding)), in_shape, out_shape)
    if t == "AvgPool2d":
        if node.ceil_mode:
            raise _no_nir(name, node, "ceil_mode=True: NIR's AvgPool2d rounds its output size down")
        if not node.count_include_pad and any(node.padding):
            raise _no_nir(name, node, "count_include_pad=False with padding: NIR's AvgPool2d is a SumPool2d scaled by "
                          "1/(kernel area), which counts the padding")
        return _set_types(nir.AvgPool2d(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                                        padding=np.array(node.padding)), in_shape, out_shape)
    if t == "MaxPool2d":
        raise _no_nir(name, node, "NIR has no max pooling primitive (only SumPool2d and AvgPool2d); replace it by "
                      "AvgPool2d/SumPool2d and retrain, or keep the model in .t1c")
    if t == "Flatten":
        return nir.Flatten(input_type={"input": np.array(need(in_shape), dtype=np.int64)}, start_dim=node.start_dim, end_dim=node.end_dim)
    if t in _EXACT_NEURONS:
        return _export_neuron(nir, name, node, need(in_shape), dt, approx)
    if t == "LI":
        shape = need(in_shape)
        return nir.LI(tau=_full(node.tau, shape), r=_full(node.r, shape), v_leak=_full(node.v_leak, shape))
    if t == "Integrator":
        return nir.I(r=_full(node.r, need(in_shape)))
    if t == "Threshold":
        return nir.Threshold(threshold=_full(node.v_threshold, need(in_shape)))
    if t == "Delay":
        return nir.Delay(delay=_full(node.delay, need(in_shape)).astype(np.float64) * dt)
    if (t == "Skip" and node.skip_type in ("residual", "passthrough")) or t in _IDENTITIES:
        # The identity: NIR sums the edges into a node, so Scale(1) is an exact residual sum as well.
        return nir.Scale(scale=np.ones(need(in_shape), dtype=np.float32))
    if t == "Graph":
        return _export_graph(nir, node, dt, top=False, where=name, approx=approx)
    hints = {
        "ReLU": "NIR has no activation functions besides Threshold",
        "Sigmoid": "NIR has no activation functions besides Threshold",
        "Tanh": "NIR has no activation functions besides Threshold",
        "Softmax": "NIR has no softmax", "GELU": "NIR has no activation functions besides Threshold",
        "ELU": "NIR has no activation functions besides Threshold", "PReLU": "NIR has no activation functions besides Threshold",
        "BatchNorm1d": "NIR has no normalisation; fold the batch norm into the preceding Affine/Conv first",
        "BatchNorm2d": "NIR has no normalisation; fold the batch norm into the preceding Affine/Conv first",
        "LayerNorm": "NIR has no normalisation",
        "Upsample": "NIR has no upsampling primitive",
        "Concat": "NIR has no concatenation (edges into a NIR node are summed)",
        "ChannelSplit": "NIR has no split: a NIR node sends its whole output along every edge",
        "Skip": "NIR has no concatenation (edges into a NIR node are summed)",
    }
    raise _no_nir(name, node, hints.get(t, f"NIR has no {t} primitive"))


# ----------------------------------------------------------------------------------------------------
# NIR -> TALON, one node: the fields a NIR node determines for a given TALON type
# ----------------------------------------------------------------------------------------------------

#: NIR type name -> the TALON type it maps to by default.
_NATURAL = {
    "Input": "Input", "Output": "Output", "Affine": "Affine", "Linear": "Linear", "Scale": "Scale", "Conv1d": "Conv1d",
    "Conv2d": "Conv2d", "SumPool2d": "SumPool2d", "AvgPool2d": "AvgPool2d", "Flatten": "Flatten", "LIF": "LIF", "IF": "IF",
    "CubaLIF": "CubaLIF", "LI": "LI", "I": "Integrator", "Threshold": "Threshold", "Delay": "Delay",
}
#: TALON types a tagged NIR node may restore to, beyond the natural one.
_ALTERNATIVES = {
    "Conv2d": ("SConv", "SDConv"), "Affine": ("SpikingAffine",), "Scale": ("Skip", "Dropout", "HybridRegion"),
    "NIRGraph": ("LIF", "IF", "CubaLIF", "SepConv2d"),
}


def _conv_padding(value: Any, kernel: tuple, stride: tuple, dilation: tuple, where: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes, np.str_)):
        mode = value.decode() if isinstance(value, bytes) else str(value)
        if mode == "valid":
            return (0,) * len(kernel)
        if mode == "same":
            out = []
            for k, s, d in zip(kernel, stride, dilation):
                total = d * (k - 1)
                if s != 1 or total % 2:
                    raise NIRConversionError(f"{where}: padding='same' with kernel {k}, stride {s}, dilation {d} needs "
                                             "asymmetric or stride-dependent padding, which TALON's convolution does not have")
                out.append(total // 2)
            return tuple(out)
        raise NIRConversionError(f"{where}: unknown padding {mode!r}")
    return _ints(value, len(kernel), where)


def _fields_from_nir(nn: Any, ttype: str, dt: float, where: str) -> dict | None:
    """Field values of a TALON `ttype` node that the NIR node `nn` determines (None: not a source of it)."""
    nt = type(nn).__name__
    g = lambda attr: _arr(getattr(nn, attr, None), f"{where}.{attr}")  # noqa: E731
    if nt == "Input":
        shape = _declared(nn.input_type, f"{where}.input_type")
        if shape is None:
            raise NIRConversionError(f"{where}: Input has no shape")
        return {"shape": shape} if ttype == "Input" else None
    if nt == "Output":
        return {"shape": _declared(nn.output_type, f"{where}.output_type")} if ttype == "Output" else None
    if nt in ("Affine", "Linear"):
        w = g("weight")
        if w.ndim != 2:
            raise NIRConversionError(f"{where}: {nt} weight must be 2-D (out, in), got shape {w.shape}")
        if nt == "Linear":
            return {"weight": w} if ttype == "Linear" else None
        return {"weight": w, "bias": g("bias")} if ttype in ("Affine", "SpikingAffine") else None
    if nt == "Scale":
        if ttype == "Scale":
            return {"scale": g("scale")}
        if ttype in ("Skip", "Dropout", "HybridRegion"):
            return {}
        return None
    if nt in ("Conv1d", "Conv2d"):
        if not (ttype == nt or (nt == "Conv2d" and ttype in ("SConv", "SDConv"))):
            return None
        w = g("weight")
        n = 1 if nt == "Conv1d" else 2
        if w.ndim != n + 2:
            raise NIRConversionError(f"{where}: {nt} weight must be {n + 2}-D, got shape {w.shape}")
        bias = getattr(nn, "bias", None)
        bias = np.zeros(w.shape[0], dtype=w.dtype) if bias is None else g("bias")
        stride = _ints(nn.stride, n, f"{where}.stride")
        dilation = _ints(nn.dilation, n, f"{where}.dilation")
        padding = _conv_padding(nn.padding, tuple(w.shape[2:]), stride, dilation, f"{where}.padding")
        groups = _int(nn.groups, f"{where}.groups")
        if n == 1:
            return {"weight": w, "bias": bias, "stride": stride[0], "padding": padding[0], "dilation": dilation[0], "groups": groups}
        return {"weight": w, "bias": bias, "stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    if nt in ("SumPool2d", "AvgPool2d"):
        if ttype != nt:
            return None
        out: dict[str, Any] = {"kernel_size": _ints(nn.kernel_size, 2, f"{where}.kernel_size"), "stride": _ints(nn.stride, 2, f"{where}.stride"),
               "padding": _ints(nn.padding, 2, f"{where}.padding")}
        if nt == "AvgPool2d":
            out.update(ceil_mode=False, count_include_pad=True)  # NIR: SumPool2d then Scale(1/area)
        return out
    if nt == "Flatten":
        return {"start_dim": _int(nn.start_dim, f"{where}.start_dim"), "end_dim": _int(nn.end_dim, f"{where}.end_dim")} if ttype == "Flatten" else None
    if nt == "LIF":
        return {"tau": g("tau"), "r": g("r"), "v_leak": g("v_leak"), "v_threshold": g("v_threshold"),
                "v_reset": _v_reset(nn, where), "reset_mode": "zero"} if ttype == "LIF" else None
    if nt == "IF":
        return {"r": g("r"), "v_threshold": g("v_threshold"), "v_reset": _v_reset(nn, where), "reset_mode": "zero"} if ttype == "IF" else None
    if nt == "CubaLIF":
        return {"tau_syn": g("tau_syn"), "tau_mem": g("tau_mem"), "r": g("r"), "v_leak": g("v_leak"), "v_threshold": g("v_threshold"),
                "w_in": g("w_in"), "v_reset": _v_reset(nn, where), "reset_mode": "zero"} if ttype == "CubaLIF" else None
    if nt == "LI":
        return {"tau": g("tau"), "r": g("r"), "v_leak": g("v_leak")} if ttype == "LI" else None
    if nt == "I":
        return {"r": g("r")} if ttype == "Integrator" else None
    if nt == "Threshold":
        return {"v_threshold": g("threshold")} if ttype == "Threshold" else None
    if nt == "Delay":
        if ttype != "Delay":
            return None
        d = g("delay").astype(np.float64) / dt
        steps = np.rint(d)
        if np.any(~np.isfinite(d)) or np.any(np.abs(d - steps) > 1e-6 * np.maximum(1.0, np.abs(steps))) or np.any(steps < 0):
            raise NIRConversionError(f"{where}: Delay of {np.unique(g('delay'))[:4]} is not a whole number of steps of dt={dt:g}; "
                                     "TALON delays by whole steps (choose dt accordingly)")
        return {"delay": steps.astype(np.int64)}
    if nt == "NIRGraph" and ttype in _ALTERNATIVES["NIRGraph"]:
        return _fields_from_composite(nn, ttype, dt, where)
    return None


def _v_reset(nn: Any, where: str) -> np.ndarray:
    v = getattr(nn, "v_reset", None)
    return np.zeros_like(_arr(nn.v_threshold, f"{where}.v_threshold")) if v is None else _arr(v, f"{where}.v_reset")


def _fields_from_composite(nn: Any, ttype: str, dt: float, where: str) -> dict | None:
    """Fields of a neuron (reset "none" or graded spikes) or SepConv2d exported as a small NIR chain."""
    inner = {k: v for k, v in nn.nodes.items() if type(v).__name__ not in ("Input", "Output")}
    kinds = {k: type(v).__name__ for k, v in inner.items()}
    out: dict = {}
    if ttype == "SepConv2d":
        if kinds != {"depthwise": "Conv2d", "pointwise": "Conv2d"}:
            return None
        dw = _fields_from_nir(inner["depthwise"], "Conv2d", dt, f"{where}/depthwise")
        pw = _fields_from_nir(inner["pointwise"], "Conv2d", dt, f"{where}/pointwise")
        return {"depthwise_weight": dw["weight"], "depthwise_bias": dw["bias"], "pointwise_weight": pw["weight"],
                "pointwise_bias": pw["bias"], "stride": dw["stride"], "padding": dw["padding"], "dilation": dw["dilation"]}
    scale = inner.pop("scale", None)
    kinds.pop("scale", None)
    if scale is not None:
        if type(scale).__name__ != "Scale":
            return None
        s = _arr(scale.scale, f"{where}/scale.scale").reshape(-1)
        if s.size == 0 or not np.all(s == s[0]):
            return None
        out["graded_spikes_factor"] = float(s[0])
    core = {"LIF": "lif", "IF": "if", "CubaLIF": "cubalif"}[ttype]
    if kinds == {core: ttype}:
        base = _fields_from_nir(inner[core], ttype, dt, f"{where}/{core}")
        return None if base is None else {**base, **out}
    integ = {"LIF": ("li", "LI"), "IF": ("i", "I"), "CubaLIF": ("cubali", "CubaLI")}[ttype]
    if kinds != {integ[0]: integ[1], "threshold": "Threshold"}:
        return None
    src = inner[integ[0]]
    a = lambda attr: _arr(getattr(src, attr, None), f"{where}/{integ[0]}.{attr}")  # noqa: E731
    out.update(v_threshold=_arr(inner["threshold"].threshold, f"{where}/threshold.threshold"), reset_mode="none")
    if ttype == "LIF":
        out.update(tau=a("tau"), r=a("r"), v_leak=a("v_leak"))
    elif ttype == "IF":
        out.update(r=a("r"))
    else:
        out.update(tau_syn=a("tau_syn"), tau_mem=a("tau_mem"), r=a("r"), v_leak=a("v_leak"), w_in=a("w_in"))
    return out


def _construct(ttype: str, fields: dict, where: str) -> Node:
    cls = get_node_class(ttype)
    if cls is None:
        raise NIRConversionError(f"{where}: unknown TALON type {ttype!r}")
    try:
        return cls(**fields)
    except (PrimitiveError, TypeError) as exc:
        raise NIRConversionError(f"{where}: the NIR node does not make a valid {ttype}: {exc}") from None


def _coerced(ttype: str, fields: dict) -> dict:
    """Field values as the TALON node would hold them (dtype and container canonical)."""
    specs = get_node_class(ttype).field_specs()
    out = {}
    for k, v in fields.items():
        try:
            out[k] = _coerce(ttype, k, specs[k], v)
        except PrimitiveError:
            out[k] = v
    return out


# ----------------------------------------------------------------------------------------------------
# Hints: what the NIR node cannot say about the TALON node, as the difference from the restored fields
# ----------------------------------------------------------------------------------------------------


def _node_hint(node: Node, nn: Any, dt: float, where: str) -> dict:
    """The smallest hint that turns the fields NIR node `nn` determines back into `node`, exactly."""
    hint: dict = {}
    if isinstance(node, Graph):
        return hint
    natural = _NATURAL.get(type(nn).__name__)
    if node.type_name != natural:
        hint["type"] = node.type_name
    base = _fields_from_nir(nn, node.type_name, dt, where) or {}
    base = _coerced(node.type_name, base)
    defaults = type(node).field_defaults()
    none, shapes, arrays, fields = [], {}, {}, {}
    for name, spec in node.field_specs().items():
        if name == "metadata":
            continue
        value = getattr(node, name)
        ref = base.get(name, defaults.get(name))
        if values_equal(value, ref):
            continue
        if value is None:
            none.append(name)
        elif spec.kind == ARRAY and isinstance(ref, np.ndarray) and ref.dtype == value.dtype and _same(_reduce(ref, value.shape), value):
            shapes[name] = list(value.shape)
        elif spec.kind == ARRAY:
            arrays[name] = _enc(value)
        else:
            fields[name] = _enc(value)
    if none:
        hint["none"] = none
    if shapes:
        hint["shapes"] = shapes
    if arrays:
        hint["arrays"] = arrays
    if fields:
        hint["fields"] = fields
    if node.metadata is not None:
        try:
            hint["metadata"] = _enc(node.metadata)
        except _Unencodable as exc:
            _warn(f"{where}: node metadata is not exported to NIR ({exc})")
    return hint


def _same(a: np.ndarray | None, b: np.ndarray) -> bool:
    return a is not None and values_equal(a, b)


def _apply_hint(base: dict, hint: dict, ttype: str, where: str) -> Node:
    fields = _coerced(ttype, base)
    for name in hint.get("none", []):
        fields[name] = None
    for name, shape in hint.get("shapes", {}).items():
        red = _reduce(np.asarray(fields.get(name)), tuple(shape)) if fields.get(name) is not None else None
        if red is None:
            raise NIRConversionError(f"{where}: {name} is not a broadcast of shape {tuple(shape)}")
        fields[name] = red
    for name, value in hint.get("arrays", {}).items():
        fields[name] = _dec(value)
    for name, value in hint.get("fields", {}).items():
        fields[name] = _dec(value)
    if "metadata" in hint:
        fields["metadata"] = _dec(hint["metadata"])
    return _construct(ttype, fields, where)


def _nir_equal(a: Any, b: Any) -> bool:
    """Do two NIR nodes describe the same computation (metadata and derived types aside)?"""
    if type(a) is not type(b):
        return False
    if type(a).__name__ == "NIRGraph":
        # Node order is not part of a NIR graph (HDF5 files return it sorted); edge order is kept.
        return (set(a.nodes) == set(b.nodes) and [tuple(map(str, e)) for e in a.edges] == [tuple(map(str, e)) for e in b.edges]
                and all(_nir_equal(a.nodes[k], b.nodes[k]) for k in a.nodes))
    da, db = a.to_dict(), b.to_dict()
    for d in (da, db):
        d.pop("metadata", None)
    if set(da) != set(db):
        return False
    for k in da:
        x, y = da[k], db[k]
        if isinstance(x, dict) or isinstance(y, dict):
            x, y = (next(iter(v.values())) if isinstance(v, dict) and len(v) == 1 else v for v in (x, y))
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
            continue
        if x is None or y is None:
            if x is not y:
                return False
            continue
        try:
            xa, ya = _arr(x, k), _arr(y, k)
        except NIRConversionError:
            return False
        if xa.dtype.kind == "f" or ya.dtype.kind == "f":
            if xa.dtype != ya.dtype or xa.shape != ya.shape or xa.tobytes() != ya.tobytes():
                return False
        elif xa.shape != ya.shape or not np.array_equal(xa, ya):
            return False
    return True


def _nir_in_shape(nn: Any) -> tuple[int, ...] | None:
    """The sample shape a NIR node declares it receives."""
    if type(nn).__name__ == "NIRGraph":
        ins = [v for v in nn.nodes.values() if type(v).__name__ == "Input"]
        return _declared(ins[0].input_type, "input") if len(ins) == 1 else None
    if type(nn).__name__ == "Input":
        return None
    return _declared(getattr(nn, "input_type", None), "input_type")


def _import_node(nir: Any, name: str, nn: Any, dt: float, opts: dict, where: str) -> Node:
    """The TALON node for NIR node `nn`: its hint's restoration when that re-exports to `nn` exactly, else the
    natural conversion."""
    nt = type(nn).__name__
    hint = _read_hint(getattr(nn, "metadata", None), where)
    if nt == "NIRGraph":
        if hint and hint.get("type") in _ALTERNATIVES["NIRGraph"]:
            node = _restore(nir, nn, hint, hint["type"], dt, where)
            if node is not None:
                return node
        return _import_graph(nir, nn, dt, opts, top=False, where=where)
    natural = _NATURAL.get(nt)
    if nt == "CubaLI":
        return _cubali_graph(nn, dt, where)
    if natural is None:
        raise NIRConversionError(f"{where}: NIR type {nt!r} has no TALON equivalent (supported: "
                                 f"{', '.join(sorted([*_NATURAL, 'CubaLI', 'NIRGraph']))})")
    if hint is not None:
        ttype = hint.get("type", natural)
        if ttype == natural or ttype in _ALTERNATIVES.get(nt, ()):
            node = _restore(nir, nn, hint, ttype, dt, where)
            if node is not None:
                return node
        else:
            _warn(f"{where}: ignoring a TALON hint that names type {ttype!r} for a NIR {nt}")
    fields = _fields_from_nir(nn, natural, dt, where)
    if natural == "Output":
        fields["shape"] = None  # declared NIR output shapes are often stale; set from shape inference later
    fields["metadata"] = _nir_node_metadata(nn, where)
    return _construct(natural, fields, where)


def _nir_node_metadata(nn: Any, where: str) -> dict | None:
    foreign = _foreign_metadata(getattr(nn, "metadata", None), where)
    return {"nir_metadata": foreign} if foreign else None


def _restore(nir: Any, nn: Any, hint: dict, ttype: str, dt: float, where: str) -> Node | None:
    """The TALON node a hint describes, if it re-exports to exactly `nn`; otherwise None (with a warning)."""
    try:
        base = _fields_from_nir(nn, ttype, dt, where)
        if base is None:
            raise NIRConversionError(f"the NIR {type(nn).__name__} does not have the structure of an exported {ttype}")
        node = _apply_hint(base, hint, ttype, where)
        shape = _nir_in_shape(nn)
        out_shape = _declared(getattr(nn, "output_type", None), "output_type") if ttype == "Output" else None
        # approx: a neuron whose hint names a reset NIR cannot hold was written approximated; so is its re-export
        again = _export_node(nir, where, node, shape, out_shape, dt, approx=True)
        if not _nir_equal(again, nn):
            raise NIRConversionError("it does not re-export to the same NIR node (edited after export?)")
        return node
    except MissingDependencyError:
        raise
    except Exception as exc:  # any failure to restore means: fall back to the plain conversion
        _warn(f"{where}: TALON hint ({ttype}) not used: {exc}")
        return None


def _cubali_graph(nn: Any, dt: float, where: str) -> Graph:
    """NIR CubaLI (no TALON primitive) as a nested graph: synaptic LI (tau_syn, r=w_in, v_leak=0), then membrane LI."""
    a = lambda attr: _arr(getattr(nn, attr, None), f"{where}.{attr}")  # noqa: E731
    tau_syn, w_in = a("tau_syn"), a("w_in")
    shape = tuple(np.broadcast_shapes(tau_syn.shape, w_in.shape, a("tau_mem").shape))
    syn = P.LI(tau=tau_syn, r=w_in, v_leak=np.zeros((), dtype=tau_syn.dtype))
    mem = P.LI(tau=a("tau_mem"), r=a("r"), v_leak=a("v_leak"))
    g = Graph({"input": P.Input(shape=shape), "synapse": syn, "membrane": mem, "output": P.Output(shape=shape)},
              [("input", "synapse"), ("synapse", "membrane"), ("membrane", "output")], dt=dt)
    foreign = _foreign_metadata(getattr(nn, "metadata", None), where)
    g.metadata = {"nir_type": "CubaLI", **({"nir_metadata": foreign} if foreign else {})}
    return g


# ----------------------------------------------------------------------------------------------------
# Graphs
# ----------------------------------------------------------------------------------------------------


def _check_cycles(g: Graph, where: str) -> None:
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


def _export_graph(nir: Any, g: Graph, dt: float, *, top: bool, where: str, approx: bool = False) -> Any:
    try:
        g.validate()
    except GraphValidationError as exc:
        raise NIRConversionError(f"{where or 'graph'}: cannot export an invalid graph: {exc}") from None
    _check_cycles(g, where or "graph")
    if not top:
        if len(g.input_names) != 1 or len(g.output_names) != 1:
            raise NIRConversionError(
                f"nested graph {where!r} has {len(g.input_names)} inputs and {len(g.output_names)} outputs: NIR cannot address "
                "one input or output of a subgraph (its edges name whole nodes), so only nested graphs with one Input and one "
                "Output export")
    nodes: dict[str, Any] = {}
    for name, node in g.nodes.items():
        here = f"{where}/{name}" if where else name
        in_shape = node.input_shapes[0] if node.input_shapes else None
        out_shape = node.output_shapes[0] if node.output_shapes else None
        nn = _export_node(nir, here, node, in_shape, out_shape, dt, approx)
        if not isinstance(node, Graph):
            hint = _node_hint(node, nn, dt, here)
            md = _nir_metadata_out(node.metadata)
            if hint:
                md[HINT_KEY] = json.dumps({"v": _HINT_VERSION, **hint}, separators=(",", ":"))
            nn.metadata = md
        nodes[name] = nn
    ghint: dict = {"v": _HINT_VERSION, "dt": g.dt, "order": list(g.nodes)}
    for key in ("metadata", "extras"):
        value = getattr(g, key)
        if value:
            try:
                ghint[key] = _enc(value)
            except _Unencodable as exc:
                _warn(f"{where or 'graph'}: graph {key} is not exported to NIR ({exc})")
    md = _nir_metadata_out(g.metadata)
    if top:
        md["dt"] = float(g.dt)
    md[HINT_KEY] = json.dumps(ghint, separators=(",", ":"))
    out = nir.NIRGraph(nodes=nodes, edges=[tuple(e) for e in g.edges], metadata=md, type_check=False)
    return out


def to_nir(graph: Graph, *, dt: float | None = None, approximate_resets: bool = False, measure: ResetMeasure | None = None) -> Any:
    """The `nir.NIRGraph` computing exactly what `graph` computes.

    Node names, edges and their order are kept. Neuron parameters are broadcast to one value per neuron
    (NIR's convention); time constants keep their units, and `graph.dt` is recorded in the metadata.
    `dt`: write the graph for a reader that steps by `dt` in its own time unit instead (snnTorch's NIR
    importer assumes 1e-4): time constants are scaled by dt/graph.dt and IF/Integrator gains by its
    inverse (primitives.neurons.in_time_unit), so the dynamics are the same up to rounding.
    `approximate_resets=True`: write neurons with reset modes NIR cannot express (subtract, snnTorch's default;
    zero_post) as NIR's reset to v_reset instead of refusing them, and warn (NIRConversionWarning) with the
    effect on the spikes, measured by `measure(graph, approximated graph)` (default: the one TALON's runtime
    registers, talon.bridge.reset_effect). The true reset travels in TALON's metadata: from_nir restores it
    exactly; readers that ignore the metadata run NIR's reset (nir_resets.reset_approximation).
    Raises NIRConversionError naming the node for anything NIR cannot express exactly (reset modes
    subtract/zero_post unless approximated, MaxPool2d, activations, normalisation, ...), and
    MissingDependencyError without `nir`.
    """
    nir = _require_nir()
    if not isinstance(graph, Graph):
        raise NIRConversionError(f"to_nir expects a talon.ir.Graph, got {type(graph).__name__}")
    original = graph
    if dt is not None:
        if not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and math.isfinite(dt) and dt > 0):
            raise NIRConversionError(f"to_nir: dt must be a positive number, got {dt!r}")
        graph = _in_time_unit(graph, float(dt))
    out = _export_graph(nir, graph, graph.dt, top=True, where="", approx=bool(approximate_resets))
    if approximate_resets:  # measured once the export succeeded, on the graph as the caller gave it
        _warn_approximation(original, measure)
    try:  # other tools read NIR files with type checking on; say so if they would refuse this one
        out.check_types()
    except Exception as exc:  # pragma: no cover - depends on nir's checker
        _warn(f"nir's type checker rejects the exported graph ({exc}); other tools may need nir.read(..., type_check=False)")
    return out


def _warn_approximation(graph: Graph, measure: ResetMeasure | None) -> None:
    approx_graph, changed = reset_approximation(graph)
    if not changed:
        return
    measure = measure if measure is not None else reset_measure()
    effect = None if measure is None else measure(graph, approx_graph)
    warnings.warn(approximation_message(changed, effect), NIRConversionWarning, stacklevel=3)


def _in_time_unit(graph: Graph, dt: float) -> Graph:
    """`graph` stepped by `dt`: every neuron (nested graphs included) in the new time unit."""
    k = dt / graph.dt
    nodes = {n: (_in_time_unit(node, node.dt * k) if isinstance(node, Graph) else P.in_time_unit(node, k)) for n, node in graph.nodes.items()}
    return Graph(nodes, list(graph.edges), dt=dt, metadata=graph.metadata, extras=graph.extras)


def _input_successors(nn_graph: Any) -> dict[str, list]:
    succ: dict[str, list] = {}
    for s, d in nn_graph.edges:
        succ.setdefault(str(s), []).append(nn_graph.nodes.get(str(d)))
    return succ


def _batch_leak(shape: tuple, successors: list) -> bool:
    """Does the Input's first dimension look like a batch dimension the exporter forgot to drop?"""
    if not shape:
        return False
    declared = [_nir_in_shape(s) for s in successors if s is not None]
    if any(d == shape for d in declared if d):
        return False
    if any(d == shape[1:] for d in declared if d):
        return True
    for s in successors:
        t = type(s).__name__
        if _nir_in_shape(s) is None and ((t in ("Conv2d", "SumPool2d", "AvgPool2d") and len(shape) == 4) or (t == "Conv1d" and len(shape) == 3)):
            return True
    return False


def _sums_inputs(node: Node) -> bool:
    return (node.max_inputs is None and not isinstance(node, Graph) and node.type_name not in ("Concat", "Skip")) or (
        node.type_name == "Skip" and node.skip_type == "residual")


def _import_graph(nir: Any, ng: Any, dt: float, opts: dict, *, top: bool, where: str) -> Graph:
    label = where or "NIR graph"
    nodes_in = getattr(ng, "nodes", None)
    if not isinstance(nodes_in, dict):
        raise NIRConversionError(f"{label}: not a NIR graph (no nodes dict)")
    ghint = _read_hint(getattr(ng, "metadata", None), label)
    edges: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for e in ng.edges:
        try:
            s, d = (x.decode() if isinstance(x, bytes) else str(x) for x in e)
        except Exception:
            raise NIRConversionError(f"{label}: malformed edge {e!r}") from None
        for end in (s, d):
            if end not in nodes_in:
                raise NIRConversionError(f"{label}: edge {s!r} -> {d!r} refers to unknown node {end!r}")
        if (s, d) in seen:
            raise NIRConversionError(f"{label}: duplicate edge {s!r} -> {d!r} (NIR forbids them; its simulators disagree on their meaning)")
        seen.add((s, d))
        edges.append((s, d))

    nodes: dict[str, Node] = {}
    succ = _input_successors(ng)
    for name, nn in nodes_in.items():
        name = str(name)
        try:
            check_name(name)
        except GraphValidationError as exc:
            raise NIRConversionError(f"{label}: {exc}") from None
        here = f"{where}/{name}" if where else name
        node = _import_node(nir, name, nn, dt, opts, here)
        if isinstance(node, P.Input):
            strip = opts["strip_batch"]
            leak = _batch_leak(tuple(node.shape), succ.get(name, []))
            if strip is True or (strip is None and leak):
                if not node.shape:
                    raise NIRConversionError(f"{here}: strip_batch=True but the Input has no dimension to strip")
                if strip is None:
                    _warn(f"{here}: NIR Input shape {tuple(node.shape)} starts with a batch dimension (an exporter without "
                          f"ignore_dims=[0]); using {tuple(node.shape[1:])}. Pass strip_batch=False to keep it")
                node = node.replace(shape=tuple(node.shape[1:]))
        if isinstance(node, Graph) and (len(node.input_names) != 1 or len(node.output_names) != 1):
            raise NIRConversionError(
                f"{here}: subgraph with {len(node.input_names)} Input and {len(node.output_names)} Output nodes; NIR edges "
                "name whole nodes, so which input an edge feeds (or which output it carries) is undefined")
        nodes[name] = node

    # NIR's own type inference adds Input/Output nodes to dangling ends; do the same.
    has_in = {d for _, d in edges}
    has_out = {s for s, _ in edges}
    for name in list(nodes):
        node = nodes[name]
        if name not in has_in and not isinstance(node, P.Input):
            shape = _nir_in_shape(nodes_in[name])
            if shape is None:
                raise NIRConversionError(f"{label}: node {name!r} has no input edge and no declared input shape")
            new = _fresh(f"input_{name}", nodes)
            nodes[new] = P.Input(shape=shape)
            edges.append((new, name))
        if name not in has_out and not isinstance(node, P.Output):
            new = _fresh(f"output_{name}", nodes)
            nodes[new] = P.Output()
            edges.append((name, new))

    # Several edges into a node that takes one input: NIR sums them; TALON says so with a Skip(residual).
    indegree: dict[str, int] = {}
    for _, d in edges:
        indegree[d] = indegree.get(d, 0) + 1
    sums: dict[str, str] = {}  # inserted sum node -> the node it feeds
    into: dict[str, str] = {}
    for name, node in list(nodes.items()):
        if indegree.get(name, 0) > 1 and not _sums_inputs(node):
            s_name = _fresh(f"{name}_sum", nodes)
            nodes[s_name] = P.Skip(skip_type="residual")
            sums[s_name], into[name] = name, s_name
    if into:
        edges = [(s, into.get(d, d)) for s, d in edges] + [(s_name, name) for s_name, name in sums.items()]

    metadata: dict = {}
    extras: dict = {}
    own_dt = dt
    order = None
    if ghint is not None:
        try:
            metadata = _dec(ghint["metadata"]) if "metadata" in ghint else {}
            extras = _dec(ghint["extras"]) if "extras" in ghint else {}
            if not top:
                own_dt = float(ghint.get("dt", dt))
            order = ghint.get("order")
        except Exception as exc:
            _warn(f"{label}: TALON graph hint not used ({exc})")
            metadata, extras, order = {}, {}, None
    foreign = _foreign_metadata(getattr(ng, "metadata", None), label)
    if ghint is None and foreign:
        metadata = {"nir_metadata": foreign}
    if not (isinstance(order, list) and sorted(order) == sorted(nodes)):
        order = None
    try:
        g = Graph({n: nodes[n] for n in (order or nodes)}, edges, dt=own_dt if own_dt > 0 else dt, metadata=metadata, extras=extras)
        _check_cycles(g, label)
        if order is None and (sums or opts.get("reorder")):
            g = Graph({n: g.nodes[n] for n in _pretty_order(g, sums, opts.get("reorder", False))}, edges, dt=g.dt,
                      metadata=metadata, extras=extras)
        g.validate()
    except NIRConversionError:
        raise
    except GraphValidationError as exc:
        raise NIRConversionError(f"{label}: the NIR graph does not make a valid TALON graph: {exc}") from None

    # Output nodes record their shape (NIR declares one), unless the hint says the TALON node had none.
    changed = False
    for name, node in g.nodes.items():
        if isinstance(node, P.Output) and node.shape is None and name in nodes_in and not _hint_says_none(nodes_in[name], label):
            inferred = node.input_shape
            declared = _declared(getattr(nodes_in[name], "output_type", None), "output_type")
            if declared and inferred is not None and declared != inferred and int(np.prod(declared)) != int(np.prod(inferred)):
                _warn(f"{label}/{name}: NIR Output declares shape {declared}, but the graph computes {inferred}; using {inferred}")
            g.nodes[name] = node.replace(shape=inferred)
            changed = True
    if changed:
        g.infer_shapes()
    return g


def _hint_says_none(nn: Any, label: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hint = _read_hint(getattr(nn, "metadata", None), label)
    return bool(hint) and "shape" in hint.get("none", [])


def _fresh(base: str, taken: dict) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


def _pretty_order(g: Graph, sums: dict[str, str], topological: bool) -> list[str]:
    """NIR's node order, or a topological one (for files, whose node order HDF5 does not keep), with
    inserted sum nodes just before the node they feed."""
    order = [n for n in (g.topological_order() if topological else g.nodes) if n not in sums]
    out: list[str] = []
    feeds: dict[str, list[str]] = {}
    for s, d in sums.items():
        feeds.setdefault(d, []).append(s)
    for n in order:
        out.extend(feeds.get(n, []))
        out.append(n)
    return out


def _resolve_dt(ng: Any, dt: float | None, advice: TimeUnitAdvice | None = None) -> float:
    if dt is not None:
        value = float(dt)
        if not (np.isfinite(value) and value > 0):
            raise NIRConversionError(f"dt must be a positive number, got {dt!r}")
        return value
    md = getattr(ng, "metadata", None)
    if isinstance(md, dict) and "dt" in md:
        try:
            value = float(np.asarray(md["dt"]).reshape(-1)[0])
            if np.isfinite(value) and value > 0:
                return value
        except Exception:
            pass
        _warn(f"ignoring the NIR graph's metadata dt={md['dt']!r}: not a positive number")
    if advice is not None:
        _warn(advice.message(DEFAULT_DT))
        return DEFAULT_DT
    _warn(f"the NIR graph does not say which timestep it was made for; using dt={DEFAULT_DT:g} (snnTorch's export "
          "convention). NIR time constants are in the exporter's time unit, so pass dt= in that unit (e.g. dt=1e-3 for "
          "Norse after 1.1, whose time constants are in seconds, run with its default 1 ms step; files from Norse 1.1 "
          "need dt=1e-6 and files from sinabs, in steps, dt=1)")
    return DEFAULT_DT


def _foreign_time_unit(ng: Any) -> TimeUnitAdvice | None:
    """What a file without TALON's record of dt says about its time unit (nir_units)."""
    md = getattr(ng, "metadata", None)
    if isinstance(md, dict) and ("dt" in md or HINT_KEY in md):
        return None
    return advise_dt(ng)


def _check_stability(g: Graph, dt: float, where: str = "", advice: TimeUnitAdvice | None = None) -> None:
    """Forward Euler with dt > tau overshoots (beta < 0): legal, but rarely what the exporter meant.
    (Nested graphs run with their parent's dt.)"""
    for name, node in g.nodes.items():
        here = f"{where}/{name}" if where else name
        if isinstance(node, Graph):
            _check_stability(node, dt, here, advice)
            continue
        for field in ("tau", "tau_syn", "tau_mem"):
            tau = getattr(node, field, None)
            if isinstance(tau, np.ndarray) and tau.size and np.any(dt > tau):
                better = (f"; {advice.evidence}: pass dt={advice.dt:g}" if advice is not None and advice.dt < dt
                          else "; choose a smaller dt")
                _warn(f"{here}: dt={dt:g} exceeds {field}={float(np.min(tau)):g}, so beta = 1 - dt/{field} < 0 and the "
                      f"discretised neuron oscillates{better}")
                break


def from_nir(nir_graph_or_path: Any, *, dt: float | None = None, strip_batch: bool | None = None, _reorder: bool = False) -> Graph:
    """A talon.ir Graph computing what a NIR graph (or `.nir` file) describes, discretised with step `dt`.

    dt: the timestep, in the unit of the graph's time constants. Default: the graph's metadata `dt` (set
        by to_nir), else 1e-4 (snnTorch's export convention) with a NIRConversionWarning.
    strip_batch: drop the first dimension of Input shapes (True), keep it (False), or (None) drop it where
        it is evidently a batch dimension leaked by the exporter, with a warning.

    Raises NIRConversionError naming the node for anything TALON cannot run exactly as NIR specifies it,
    and MissingDependencyError without `nir`.
    """
    if isinstance(nir_graph_or_path, (str, os.PathLike)):
        return read_nir(nir_graph_or_path, dt=dt, strip_batch=strip_batch)
    nir = _require_nir()
    ng = nir_graph_or_path
    if not isinstance(ng, nir.NIRGraph):
        if not isinstance(ng, nir.NIRNode):
            raise NIRConversionError(f"from_nir expects a nir.NIRGraph, a NIR node or a path, got {type(ng).__name__}")
        try:
            ng = nir.NIRGraph.from_list(ng, type_check=False)
        except Exception as exc:
            raise NIRConversionError(f"cannot wrap the single {type(ng).__name__} node into a graph ({exc}); wrap it in a "
                                     "nir.NIRGraph with Input and Output nodes") from None
    advice = _foreign_time_unit(ng)
    step = _resolve_dt(ng, dt, advice)
    g = _import_graph(nir, ng, step, {"strip_batch": strip_batch, "reorder": _reorder}, top=True, where="")
    g.dt = step
    _check_stability(g, step, advice=advice)
    return g


# ----------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------


def is_nir_file(path: str | os.PathLike) -> bool:
    """True for a `.nir` path, or an HDF5 file holding NIR's top-level `node` group and no TALON `graph`."""
    p = Path(path)
    if p.suffix.lower() == ".nir":
        return True
    if not p.is_file():
        return False
    import h5py

    from talon.ir import _hdf5_safety

    try:  # links are looked at, never followed: an external link may name a FIFO
        with _hdf5_safety.opened(p) as (raw, _), _hdf5_safety.hdf5_file(raw, p) as f:
            return "graph" not in f and isinstance(f.get("node", getlink=True), h5py.HardLink) and isinstance(f.get("node"), h5py.Group)
    except Exception:
        return False


def _nir_read(nir: Any, f: Any) -> Any:
    """nir.read with type checking off at every level (nested graphs too): TALON checks shapes itself, and
    files from older exporters often carry inconsistent declared types. `f` is an open, checked h5py file."""
    import h5py

    from nir.serialization import hdf2dict

    def no_check(d: dict) -> None:
        if isinstance(d, dict) and d.get("type") in ("NIRGraph", b"NIRGraph"):
            d["type_check"] = False
            for child in (d.get("nodes") or {}).values():
                no_check(child)

    if not isinstance(f.get("node"), h5py.Group):
        raise ValueError("no top-level 'node' group")
    data = hdf2dict(f["node"])
    if _nir_depth(data) > MAX_GRAPH_DEPTH:
        raise TalonFormatError(f"graphs nested more than {MAX_GRAPH_DEPTH} levels deep (the limit, see docs/format.md)")
    no_check(data)
    return nir.dict2NIRNode(data)


def _nir_depth(d: Any, limit: int = MAX_GRAPH_DEPTH + 1) -> int:
    """How deep NIRGraphs nest inside the NIRGraph dict `d` (counted up to `limit`)."""
    inner = [c for c in ((d.get("nodes") if isinstance(d, dict) else None) or {}).values()
             if isinstance(c, dict) and c.get("type") in ("NIRGraph", b"NIRGraph")]
    if not inner or limit <= 0:
        return 0
    return 1 + max(_nir_depth(c, limit - 1) for c in inner)


def read_nir(path: str | os.PathLike, *, dt: float | None = None, strip_batch: bool | None = None) -> Graph:
    """Read a `.nir` file into a talon.ir Graph (see from_nir for dt and strip_batch).

    The file is opened once and checked as a .t1c is (docs/format.md, "Opening untrusted files").
    Raises TalonFormatError (NIRConversionError for a readable file TALON cannot convert exactly), naming the file.
    """
    from talon.ir import _hdf5_safety

    p = Path(path)
    if not p.exists():
        raise _hdf5_safety.TalonFileNotFoundError(f"{str(p)!r}: no such file")
    if p.is_dir():
        raise TalonFormatError(f"{str(p)!r} is a folder, not a .nir file")
    _require_nir()
    with _hdf5_safety.checked_hdf5(p) as (f, census, size):
        return read_nir_hdf5(f, p, census, size, dt=dt, strip_batch=strip_batch, checked=True)


def read_nir_hdf5(f: Any, p: Path, census: Any, size: int, *, dt: float | None = None, strip_batch: bool | None = None,
                  checked: bool = False) -> Graph:
    """The Graph in an open HDF5 file holding NIR content, whose links and heaps `census` has checked."""
    from talon.ir import _hdf5_safety

    nir = _require_nir()
    if not checked:
        _hdf5_safety.check_declared_sizes(census, size, lambda m: TalonFormatError(f"{p.name}: {m}"))
    try:
        ng = _nir_read(nir, f)
    except TalonFormatError as exc:
        raise TalonFormatError(f"{p.name}: {exc}") from None
    except Exception as exc:
        raise TalonFormatError(f"cannot read {p.name} as a NIR file: {type(exc).__name__}: {exc}") from None
    try:
        return from_nir(ng, dt=dt, strip_batch=strip_batch, _reorder=True)
    except NIRConversionError as exc:
        raise NIRConversionError(f"{p.name}: {exc}") from None


def write_nir(path: str | os.PathLike, graph: Graph, *, compression: str | None = None, durable: bool = False, dt: float | None = None,
              approximate_resets: bool = False, measure: ResetMeasure | None = None) -> None:
    """Write `graph` as a `.nir` file (atomically: a temporary file in the same folder, then renamed).

    compression: None, "gzip" or "lzf" for the arrays (NIR's writer applies it to every array).
    durable: flush the file and the rename to disk before returning (see talon.ir.write).
    dt: the timestep, in the reader's time unit, to write the time constants for (see to_nir).
    approximate_resets, measure: write resets NIR cannot express as NIR's, with a measured warning (see to_nir).
    """
    nir = _require_nir()
    if compression not in (None, "gzip", "lzf"):
        raise TalonFormatError(f"write_nir({str(path)!r}): compression must be None, 'gzip' or 'lzf', got {compression!r}")
    ng = to_nir(graph, dt=dt, approximate_resets=approximate_resets, measure=measure)
    with atomic_path(path, durable=durable) as tmp:
        nir.write(str(tmp), ng, compression=compression)
