"""What `talon.eval.evaluate` accepts as data, turned into batches of (T, B, *S) inputs and (B,) labels.

Data forms:
- a path to an .npz holding `x` and `y`, or a dict {"x": ..., "y": ...}, or a pair (x, y) of arrays:
  x (N, T, *S) sequences or (N, *S) samples (then `encode`), y (N,) integer labels;
- a path to a folder of event files in tonic's layout (talon.io.EventFolder);
- any data set with len() and [i] -> (x, y) (a tonic data set, an EventFolder, a torch Dataset), or any
  iterable of (x, y) pairs.
A sample x is a (T, *S) sequence, an (*S) sample with `encode`, or an event array (tonic's structured
events; framed into `steps` bins of `dt` microseconds on the sensor the Input's (C, H, W) shape implies).

Layer 3: numpy and talon.io only (no torch here; tensors are read with numpy.asarray).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from talon._text import plain
from talon.errors import TalonError
from talon.io.encoders import ENCODINGS, delta_encode, encode as encode_sample, events_to_frames


@dataclass
class Source:
    """Samples to evaluate: `items` yields (x, y) pairs; `size` when known; `where` names the data."""

    items: Any
    size: int | None
    where: str
    class_names: dict[int, str] | None = None


def open_source(data: Any) -> Source:
    """Recognise the form of `data` (module docstring); TalonError naming it otherwise."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if os.path.isdir(path):
            from talon.io.datasets import EventFolder

            folder = EventFolder(path)
            return Source(folder, len(folder), path, folder.class_names)
        if not os.path.isfile(path):
            raise TalonError(f"{path}: no such file or folder; DATA is an .npz file (x, y) or a folder of event files ROOT/<class>/<file>")
        return _arrays(_read_npz(path), path)
    if isinstance(data, dict):
        return _arrays(data, "the data dict")
    if isinstance(data, tuple) and len(data) == 2 and _is_label_vector(data[1], data[0]):
        return _arrays({"x": data[0], "y": data[1]}, "the (x, y) arrays")
    if isinstance(data, tuple) and len(data) == 2 and _is_label_column(data[1], data[0]):
        y = np.asarray(data[1])
        raise TalonError(f"the (x, y) arrays: y has shape {y.shape}, a column; pass (N,) labels, one per sample: y.reshape(-1)")
    if isinstance(data, tuple) and len(data) == 2 and _is_label_table(data[1], data[0]):
        y = np.asarray(data[1])
        raise TalonError(f"the (x, y) arrays: y has shape {y.shape}; labels are (N,) class numbers, one per sample (one-hot labels: y.argmax(axis=1))")
    if type(data).__name__ == "DataLoader" and getattr(data, "batch_size", None) is not None:
        # its items are batches with a leading batch axis, which would read as a time axis or a wrong shape
        raise TalonError(f"a DataLoader with batch_size={data.batch_size} yields batches; evaluate takes one (x, y) sample per item and batches "
                         "itself (batch_size=): pass the DataLoader's dataset, or DataLoader(dataset, batch_size=None)")
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        return Source(_Indexed(data), len(data), type(data).__name__, getattr(data, "class_names", None))
    if hasattr(data, "__iter__"):
        return Source(data, None, type(data).__name__)
    raise TalonError(f"cannot evaluate on {type(data).__name__}: give an .npz path, a folder of event files, a dict/pair of x and y arrays, or an iterable of (x, y)")


class _Indexed:
    def __init__(self, ds: Any):
        self.ds = ds

    def __iter__(self) -> Iterator[Any]:
        for i in range(len(self.ds)):
            yield self.ds[i]


def _is_label_vector(y: Any, x: Any) -> bool:
    try:
        ya, n = np.asarray(y), len(x)
    except Exception:  # noqa: BLE001 - not arrays: an (x, y) sample, handled elsewhere
        return False
    return ya.ndim == 1 and ya.shape[0] == n and getattr(np.asarray(x), "ndim", 0) >= 2


def _is_label_column(y: Any, x: Any) -> bool:
    """y is (N, 1) for N samples of x: labels as a column."""
    try:
        ya, n = np.asarray(y), len(x)
    except Exception:  # noqa: BLE001 - not arrays
        return False
    return ya.ndim == 2 and ya.shape == (n, 1) and getattr(np.asarray(x), "ndim", 0) >= 2


def _is_label_table(y: Any, x: Any) -> bool:
    """y is (N, K) numbers for N samples of x: one-hot or score labels rather than class numbers."""
    try:
        ya, xa = np.asarray(y), np.asarray(x)
    except Exception:  # noqa: BLE001 - not arrays
        return False
    return ya.ndim == 2 and ya.dtype.kind in "biuf" and xa.ndim >= 2 and ya.shape[0] == xa.shape[0] and ya.shape[1] > 1


def _read_npz(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise TalonError(f"{path}: a .npy array; DATA is an .npz file holding x and y (numpy.savez(path, x=x, y=y))")
            return {k: f[k] for k in f.files}
    except TalonError:
        raise
    except Exception as exc:  # noqa: BLE001 - not an npz, damaged, pickled objects
        raise TalonError(f"{path}: not a readable .npz file ({exc}); DATA is an .npz holding x and y, or a folder of event files") from None


def _arrays(d: dict[str, Any], where: str) -> Source:
    missing = [k for k in ("x", "y") if k not in d]
    if missing:
        raise TalonError(f"{where}: lacks {missing} (it holds {sorted(d)}); give x (N, T, *S) or (N, *S) and y (N,) labels")
    x, y = np.asarray(d["x"]), np.asarray(d["y"])
    if y.ndim == 2 and y.shape[1] == 1 and x.ndim >= 1 and x.shape[0] == y.shape[0]:
        raise TalonError(f"{where}: y has shape {y.shape}, a column; pass (N,) labels, one per sample: y.reshape(-1)")
    if y.ndim != 1 or x.ndim < 1 or x.shape[0] != y.shape[0]:
        raise TalonError(f"{where}: x has shape {x.shape} and y {y.shape}; y must be (N,) labels, one per sample of x (N, ...)")
    return Source(zip(x, y), int(y.shape[0]), where)


@dataclass
class Framing:
    """How samples become (T, *S) float32 sequences for a graph whose Input has shape `shape`."""

    shape: tuple[int, ...]
    steps: int | None
    encode: str | None
    dt: float | None
    seed: int
    threshold: float | None = None

    def __post_init__(self) -> None:
        if self.encode is not None and self.encode not in ENCODINGS:
            raise TalonError(f"unknown encoding {self.encode!r}; encodings: {', '.join(ENCODINGS)}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, (int, np.integer)) or self.steps < 1):
            raise TalonError(f"steps must be a positive integer, got {plain(self.steps)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise TalonError(f"seed must be a whole number >= 0 (numpy's seeds), got {plain(self.seed)}")
        if self.threshold is not None and self.encode not in ("latency", "delta"):
            raise TalonError(f"threshold sets the 'latency' and 'delta' encoders; with encode={self.encode!r} it would change nothing: leave it out")

    def sequence(self, x: Any, index: int, where: str) -> np.ndarray:
        arr = np.asarray(x)
        if arr.dtype.names is not None:
            return self._frames(arr, index, where)
        if self.dt is not None:
            raise TalonError(f"{where}, sample {index}: dt (--dt, microseconds per step) frames event data, and this sample is an array "
                             f"of shape {arr.shape}, not events; leave out dt (steps and encode say how arrays become steps)")
        if arr.dtype.kind not in "biuf":
            raise TalonError(f"{where}, sample {index}: x holds {_kind(arr.dtype)} values; inputs must be numbers (bool, int or float): "
                             f"convert them first (e.g. x.astype(np.float32) for numbers stored as text)")
        arr = arr.astype(np.float32, copy=False)
        finite = np.isfinite(arr)
        if not finite.all():
            pos = tuple(int(i) for i in np.unravel_index(int(np.argmin(finite)), arr.shape))
            v = float(arr[pos])
            what = "NaN" if np.isnan(v) else ("+inf" if v > 0 else "-inf")
            raise TalonError(f"{where}: x contains {what} at sample {index} (element {pos}; {int(arr.size - finite.sum())} of its {arr.size} values are not finite); "
                             "replace or drop such samples before evaluating")
        S, n = self.shape, len(self.shape)
        if arr.shape == S:
            if self.encode in (None, "delta"):
                how = "'delta' takes (T, *S) sequences; " if self.encode == "delta" else ""
                raise TalonError(
                    f"{where}, sample {index}: a single {S} sample, not a (T, *S) sequence; {how}give encode= 'rate', 'latency' or 'direct' "
                    f"(--encode) and steps to make a sequence of it"
                )
            if self.steps is None:
                raise TalonError(f"{where}: encoding samples needs steps (--steps)")
            seed = [self.seed, index]
            try:
                return encode_sample(arr, self.encode, self.steps, seed=seed, threshold=self.threshold)  # type: ignore[arg-type]
            except TalonError as exc:
                raise TalonError(f"{where}, sample {index}: {exc}") from None
        if arr.ndim == n + 1 and arr.shape[1:] == S:
            if self.encode == "delta":
                arr = delta_encode(arr, **({} if self.threshold is None else {"threshold": self.threshold}))
            elif self.encode is not None and self.encode != "direct":
                raise TalonError(f"{where}, sample {index}: a (T, *S) sequence {arr.shape} is already in time; {self.encode!r} encodes single samples (leave out encode)")
            return self._cut(arr, index, where)
        raise TalonError(
            f"{where}, sample {index}: shape {arr.shape} fits neither the model's Input {S} nor a (T, *{S}) sequence; "
            f"reshape the data to the Input's shape"
        )

    def _cut(self, arr: np.ndarray, index: int, where: str) -> np.ndarray:
        if self.steps is None:
            return arr
        if arr.shape[0] < self.steps:
            raise TalonError(f"{where}, sample {index}: holds {arr.shape[0]} steps but steps={self.steps}; give at most {arr.shape[0]} steps")
        return arr[: self.steps]

    def _frames(self, events: np.ndarray, index: int, where: str) -> np.ndarray:
        S = self.shape
        if len(S) != 3 or S[0] not in (1, 2):
            raise TalonError(f"{where}: event data need a model whose Input is (C, H, W) with C = 2 (polarities) or 1; this one's is {S}")
        if self.encode is not None:
            raise TalonError(f"{where}, sample {index}: an event recording, and encode={self.encode!r} (--encode) encodes arrays; events are "
                             "framed into steps bins of dt microseconds instead: leave out encode")
        if self.steps is None:
            raise TalonError(f"{where}: framing events needs steps (--steps), and dt (--dt, microseconds per step) or else steps bins over each recording")
        from talon.io.events import as_events

        ev = as_events(events, what=f"{where}, sample {index}")
        try:
            return events_to_frames(ev, (S[2], S[1]), dt=self.dt, steps=self.steps, polarity=S[0] == 2)
        except TalonError as exc:
            raise TalonError(f"{where}, sample {index}: {exc}") from None


def _kind(dtype: np.dtype) -> str:
    return {"U": "text", "S": "bytes", "O": "Python object", "M": "datetime", "m": "timedelta", "c": "complex"}.get(dtype.kind, str(dtype)) + f" ({dtype})"


def label_of(y: Any, index: int, where: str) -> int:
    arr = np.asarray(y)
    if arr.size > 1:
        raise TalonError(
            f"{where}, item {index}: the label holds {arr.size} values; evaluate takes one (x, y) sample per item, not batches "
            f"(pass a DataLoader's dataset, or batch_size=None to the DataLoader)"
        )
    if arr.size != 1 or arr.dtype.kind not in "iub" and not (arr.dtype.kind == "f" and float(arr.reshape(-1)[0]).is_integer()):
        raise TalonError(f"{where}, sample {index}: label {plain(y)} is not a whole class number; labels are integers 0..K-1 (map class names to numbers first, e.g. with a tonic data set's target_transform)")
    return int(arr.reshape(-1)[0])


def batches(source: Source, framing: Framing, batch_size: int, limit: int | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(T, B, *S) float32 inputs and (B,) labels, `batch_size` samples at a time (the last may be smaller)."""
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for i, item in enumerate(source.items):
        if limit is not None and i >= limit:
            break
        try:
            x, y = item
        except (TypeError, ValueError):
            raise TalonError(f"{source.where}, sample {i}: expected an (x, y) pair, got {type(item).__name__}") from None
        label = label_of(y, i, source.where)
        seq = framing.sequence(x, i, source.where)
        if xs and seq.shape[0] != xs[0].shape[0]:
            raise TalonError(f"{source.where}, sample {i}: {seq.shape[0]} steps where earlier samples have {xs[0].shape[0]}; give steps= to cut every sample to one length")
        xs.append(seq)
        ys.append(label)
        if len(xs) == batch_size:
            yield np.stack(xs, axis=1), np.asarray(ys)
            xs, ys = [], []
    if xs:
        yield np.stack(xs, axis=1), np.asarray(ys)
