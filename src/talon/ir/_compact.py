"""Compact, exact forms of arrays: integers on a power-of-two grid, and the smallest broadcast shape.

Two storage rules and one reading rule, each lossless (every value and dtype comes back bit for bit):

- Integer form (`integer_form`): a float array whose values are all k * 2**-f for integers k that fit
  int8 (or int16, or int32 for float64 arrays) is stored as those integers plus the exponent f; the
  quantized weights of `quantize_weights(power_of_two=True)` are exactly such arrays. `from_integers`
  rebuilds the floats (k * 2**-f is exact in float64 and in the original dtype). `stored_nbytes` is the
  size of either form, the bytes analyze and profile count.
- Smallest broadcast shape (`smallest_broadcast`): the array an exporter should hold for a per-neuron
  constant, reduced along every axis on which it does not vary (to a scalar when it never varies), plus
  `float32_if_exact` for float64 values that float32 holds exactly.
- Flat per-neuron layout (`as_neuron_layout`): the existing SDK stores per-neuron constants flat (a LIF
  after a 12x8x8 convolution has tau of shape (768,)); such an array is the C-order layout of the
  neuron shape when its size matches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from talon.ir.graph import Graph

#: Arrays smaller than this are never stored as integers: the HDF5 attributes would outweigh the saving.
MIN_INTEGER_ELEMENTS = 256
#: HDF5 attributes of an integer-form dataset: the exponent f (values are k * 2**-f) and the float dtype.
EXP_ATTR = "talon_pow2_frac"
DTYPE_ATTR = "talon_float_dtype"
#: (integer dtype, largest magnitude, bits) tried in order: the first that holds the grid wins.
_INT_TYPES = ((np.int8, 127, 8), (np.int16, 32767, 16), (np.int32, 2**31 - 1, 32))


def _bits(arr: np.ndarray) -> np.ndarray:
    """The array's bit patterns: equality of these is equality of values, -0.0 and NaN payloads included."""
    return np.ascontiguousarray(arr).view(f"u{arr.dtype.itemsize}")


def integer_form(arr: np.ndarray) -> tuple[np.ndarray, int] | None:
    """(integers k, exponent f) with arr == k * 2**-f exactly, k in the narrowest of int8/int16/int32 that
    is smaller than `arr`'s dtype; None when there is none (or `arr` is too small to gain)."""
    if arr.dtype.kind != "f" or arr.ndim == 0 or arr.size < MIN_INTEGER_ELEMENTS or _off_every_grid(arr.flat[:_FIRST].tolist(), arr.dtype.itemsize):
        return None
    # A subset of an array with an integer form has one too (its peak is no larger, so its grid is no
    # coarser): a few values refuse most float arrays (trained weights) without copying the whole.
    if arr.size > 4 * _SAMPLE and _grid(np.ascontiguousarray(arr).reshape(-1)[:_SAMPLE], arr.dtype.itemsize) is None:
        return None
    return _grid(arr, arr.dtype.itemsize)


#: Values tried first by integer_form: a few as Python floats, then more with the full rule.
_FIRST, _SAMPLE = 4, 64


def _off_every_grid(values: list, itemsize: int) -> bool:
    """True when one of `values` (Python floats) cannot be k * 2**-f for any k of the widest integer type
    tried for floats of `itemsize` bytes, or is NaN or infinite. A value m * 2**j with m odd equals
    k * 2**-f only for k = m * 2**(j + f), so |k| >= |m|: an odd part above that type's peak refuses
    it. Trained float weights have 24-bit odd parts: one value refuses them, for about a tenth of a
    sample check."""
    peak = max((hi for _, hi, bits in _INT_TYPES if bits // 8 < itemsize), default=0)
    for v in values:
        try:
            n, _ = v.as_integer_ratio()  # n / 2**e in lowest terms
        except (OverflowError, ValueError):
            return True
        if n and abs(n >> ((n & -n).bit_length() - 1)) > peak:
            return True
    return False


def _grid(arr: np.ndarray, itemsize: int) -> tuple[np.ndarray, int] | None:
    a64 = arr.astype(np.float64)
    if not np.all(np.isfinite(a64)) or np.any(np.signbit(a64) & (a64 == 0)):
        return None  # -0.0 has no integer form
    peak = float(np.abs(a64).max())
    exp = 0 if peak == 0 else int(np.frexp(peak)[1])  # peak < 2**exp
    for itype, hi, bits in _INT_TYPES:
        if bits // 8 >= itemsize:
            return None
        f = (bits - 1) - exp  # the finest grid on which the peak still fits
        scaled = np.ldexp(a64, f)
        k = np.rint(scaled)
        if np.array_equal(k, scaled) and np.abs(k).max() <= hi:
            return k.astype(itype), f
    return None


def from_integers(k: np.ndarray, f: int, dtype: np.dtype | str) -> np.ndarray:
    """The floats k * 2**-f in `dtype` (exact for what integer_form produced)."""
    return np.ldexp(k.astype(np.float64), -int(f)).astype(dtype)


def decode(k: np.ndarray, f: object, dtype: object) -> np.ndarray:
    """from_integers for values read from a file; ValueError when they do not describe an integer form."""
    if isinstance(dtype, (bytes, np.bytes_)):
        dtype = dtype.decode("ascii", "replace")
    dt = np.dtype(str(dtype)) if isinstance(dtype, str) else None
    f_arr = np.asarray(f)
    if dt is None or dt.kind != "f" or k.dtype.kind not in "iu" or k.dtype.itemsize >= dt.itemsize:
        raise ValueError(f"{k.dtype} integers cannot stand for {dtype!r} floats")
    if f_arr.shape != () or f_arr.dtype.kind not in "iu" or not -1100 <= int(f_arr) <= 1100:
        raise ValueError(f"exponent {f!r} should be an integer from -1100 to 1100")
    return from_integers(k, int(f_arr), dt)


def stored_nbytes(arr: np.ndarray) -> int:
    """Bytes a .t1c file spends on the values of `arr`: its integer form's when it has one."""
    form = integer_form(arr)
    return int(arr.nbytes) if form is None else int(form[0].nbytes)


def smallest_broadcast(arr: np.ndarray) -> np.ndarray:
    """The smallest array that broadcasts back to `arr` exactly: every axis on which `arr` is constant
    reduced to length 1, then leading length-1 axes dropped (a 0-d array when every value is the same)."""
    a = np.asarray(arr)
    if a.size == 0:
        return a
    for axis in range(a.ndim):
        if a.shape[axis] > 1:
            first = np.take(a, [0], axis=axis)
            if np.array_equal(_bits(np.broadcast_to(first, a.shape)), _bits(a)):
                a = first
    while a.ndim and a.shape[0] == 1:
        a = a[0]
    return np.require(a, requirements="C")  # ascontiguousarray would make a 0-d array 1-d


def float32_if_exact(arr: np.ndarray) -> np.ndarray:
    """`arr` as float32 when every value (NaN payloads aside) survives the cast exactly, else unchanged."""
    a = np.asarray(arr)
    if a.dtype != np.float64:
        return a
    a32 = a.astype(np.float32)
    same = a32.astype(np.float64) == a
    if np.all(same | (np.isnan(a) & np.isnan(a32))) and not np.any(np.isnan(a)):
        return a32
    return a


def as_neuron_layout(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """A flat (1-D) per-neuron array of exactly prod(shape) values, reshaped (C order) to `shape`; None when
    `arr` is not such an array (it already broadcasts, or its size does not match)."""
    shape = tuple(int(d) for d in shape)
    if arr.ndim != 1 or len(shape) < 2 or arr.size != int(np.prod(shape)):
        return None
    try:
        np.broadcast_shapes(arr.shape, shape)
        return None  # already a valid layout (e.g. one value per last-axis element)
    except ValueError:
        return arr.reshape(shape)


def adopt_flat_neuron_layouts(graph: "Graph") -> "Graph":
    """The graph with every flat per-neuron array (the existing SDK's layout) reshaped to its neuron's shape.

    Shapes are propagated from the Input nodes in topological order; a stateful or spiking node whose
    shape rule refuses a 1-D field of exactly as many values as it has neurons gets that field in C
    order (as_neuron_layout). The graph is changed in place and returned; where shapes cannot be
    propagated it is left as it is, for validation to report."""
    from talon.errors import PrimitiveError, TalonError

    try:
        order = graph.topological_order()
    except TalonError:
        return graph
    out_idx = graph.edge_output_index()
    outs: dict[str, list[tuple[int, ...]]] = {}
    for name in order:
        node = graph.nodes[name]
        ins = [outs[s][out_idx[i]] for i, (s, d) in enumerate(graph.edges) if d == name and s in outs and out_idx[i] < len(outs[s])]
        try:
            outs[name] = [tuple(s) for s in node.infer_output_shapes(ins)]
            continue
        except (PrimitiveError, TalonError):
            pass
        if not ins or not (node.stateful or node.spiking) or isinstance(node, type(graph)):
            return graph
        changes = {}
        for field, value in node.arrays():
            shaped = as_neuron_layout(value, ins[0])
            if shaped is not None:
                changes[field] = shaped
        if not changes:
            return graph
        try:
            fixed = node.replace(**changes)
            outs[name] = [tuple(s) for s in fixed.infer_output_shapes(ins)]
        except (PrimitiveError, TalonError):
            return graph
        graph.nodes[name] = fixed
    return graph
