"""Evaluate a model on a labelled data set, in float and on the hardware's fixed point (docs/eval.md).

    from talon.eval import evaluate
    res = evaluate("model.t1c", "test.npz", mode="fixed", steps=25, encode="rate")
    res.accuracy, res.scores["float"].accuracy, res.agreement, res.scores["fixed"].confusion

Every batch runs through the backend's simulator (talon.backend, `simulate` and `profile`): nothing here
computes a layer. The class of a sample is the argmax of its Output summed over the steps (spike counts;
readout="last" takes the last step, or pass a function). In mode "fixed" every batch also runs in float,
for the float accuracy and the float/fixed agreement; the fixed-point formats are calibrated once, on
`calibration` (default: the first batch), so every batch runs the same hardware numerics.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from talon._text import plain
from talon.errors import TalonError
from talon.eval_data import Framing, Source, batches, open_source

MODES = ("float", "fixed")
READOUTS = ("count", "last")


@dataclass
class Scores:
    """One numeric mode's results over the data set. Per sample: spikes of every spiking layer, energy (µJ)."""

    accuracy: float
    per_class_accuracy: dict[int, float | None]
    confusion: np.ndarray  # (K, K): rows the label, columns the prediction
    predictions: np.ndarray
    spikes_per_sample: float
    energy_per_sample_uj: float
    silent_samples: int  # samples whose Output never fired (their class is 0 by argmax's tie rule)
    # (T,): the accuracy had the run stopped after step t (the readout on steps 0..t); None for a custom readout
    accuracy_by_step: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "per_class_accuracy": {str(k): v for k, v in self.per_class_accuracy.items()},
            "confusion": self.confusion.tolist(),
            "spikes_per_sample": self.spikes_per_sample,
            "energy_per_sample_uj": self.energy_per_sample_uj,
            "silent_samples": self.silent_samples,
            "accuracy_by_step": None if self.accuracy_by_step is None else self.accuracy_by_step.tolist(),
        }


@dataclass
class EvaluationResult:
    """What `evaluate` returns. `scores[m]` per numeric mode run ("float"; and "fixed" in mode "fixed");
    `agreement`: fraction of samples whose fixed-point class equals the float class (mode "fixed")."""

    mode: str
    n_samples: int
    steps: int
    n_classes: int
    labels: np.ndarray
    scores: dict[str, Scores]
    agreement: float | None
    readout: str
    energy_preset: str
    data: str
    class_names: dict[int, str] | None = None
    wall_time_s: float = 0.0
    calibration: str = ""

    @property
    def accuracy(self) -> float:
        """The accuracy in the evaluated mode."""
        return self.scores[self.mode].accuracy

    @property
    def confusion(self) -> np.ndarray:
        return self.scores[self.mode].confusion

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "samples": self.n_samples,
            "steps": self.steps,
            "classes": self.n_classes,
            "class_names": None if self.class_names is None else {str(k): v for k, v in self.class_names.items()},
            "readout": self.readout,
            "accuracy": self.accuracy,
            "float": self.scores["float"].to_dict(),
            "fixed": self.scores["fixed"].to_dict() if "fixed" in self.scores else None,
            "agreement": self.agreement,
            "energy_preset": self.energy_preset,
            "calibration": self.calibration or None,
            "data": self.data,
            "wall_time_s": self.wall_time_s,
        }

    def summary(self) -> str:
        lines = [f"evaluation ({self.mode}) of {self.n_samples} samples x {self.steps} steps, {self.n_classes} classes, readout {self.readout}: {self.data}"]
        for m, s in self.scores.items():
            lines.append(
                f"  {m:<5} accuracy {s.accuracy:7.2%}   {s.spikes_per_sample:12,.1f} spikes/sample   "
                f"{s.energy_per_sample_uj:.6f} uJ/sample ({self.energy_preset})" + (f"   {s.silent_samples} silent" if s.silent_samples else "")
            )
        if self.agreement is not None:
            lines.append(f"  float/fixed agreement {self.agreement:.2%} of samples")
        s = self.scores[self.mode]
        per = ", ".join(f"{self._name(k)}: {'-' if v is None else f'{v:.0%}'}" for k, v in s.per_class_accuracy.items())
        lines.append(f"  per class ({self.mode}): {per}")
        return "\n".join(lines)

    __str__ = summary

    def _name(self, k: int) -> str:
        return self.class_names.get(k, str(k)) if self.class_names else str(k)

    def plot_confusion(self, mode: str | None = None) -> Any:
        """A matplotlib Figure of the confusion matrix of `mode` (default: the evaluated one)."""
        from talon.viz.confusion import confusion_matrix

        m = mode or self.mode
        if m not in self.scores:
            raise TalonError(f"plot_confusion: no {m!r} results in this evaluation (it has {sorted(self.scores)}); "
                             "evaluate with mode='fixed' to get both")
        names = [self._name(k) for k in range(self.n_classes)]
        return confusion_matrix(self.scores[m].confusion, names, title=f"{m}: accuracy {self.scores[m].accuracy:.1%} ({self.n_samples} samples)")

    def plot_accuracy_by_step(self) -> Any:
        """A matplotlib Figure of the accuracy against the number of steps run, per numeric mode."""
        from talon.viz.accuracy import accuracy_by_step

        return accuracy_by_step(self, title=f"accuracy against steps ({self.n_samples} samples, readout {self.readout})")

    def _repr_html_(self) -> str:
        from talon._html import card, table

        rows = [
            [m, f"{s.accuracy:.2%}", f"{s.spikes_per_sample:,.1f}", f"{s.energy_per_sample_uj:.6f}", s.silent_samples]
            for m, s in self.scores.items()
        ]
        conf = self.confusion
        head = ["label \\ predicted"] + [self._name(k) for k in range(self.n_classes)]
        crow = [[self._name(i)] + [int(v) for v in conf[i]] for i in range(self.n_classes)]
        notes = [f"{self.n_samples} samples x {self.steps} steps, readout {self.readout}, data {self.data}"]
        if self.agreement is not None:
            notes.append(f"float/fixed agreement: {self.agreement:.2%} of samples")
        return card(
            f"TALON evaluation ({self.mode}): accuracy {self.accuracy:.2%}",
            [table(["mode", "accuracy", "spikes/sample", f"energy/sample (µJ, {self.energy_preset})", "silent"], rows), *notes,
             table(head, crow, caption=f"confusion matrix ({self.mode})")],
        )  # fmt: skip


@dataclass
class _Tally:
    """One numeric mode's running totals over the batches."""

    preds: list = field(default_factory=list)
    step_preds: list = field(default_factory=list)  # (T, B) classes per step, for the built-in readouts
    spikes: float = 0.0
    energy: float = 0.0
    silent: int = 0

    def add(self, be: Any, g: Any, xb: np.ndarray, mode: str, kw: dict, energy_preset: str, out_name: str, decide: Callable) -> None:
        """Simulate one (T, B, *S) batch in `mode` on backend `be`, price it, and count it in."""
        T, B = xb.shape[:2]
        sim = be.simulate(g, xb, T, mode=mode, progress=False, **kw)
        prof = be.profile(g, xb, T, energy_preset=energy_preset, mode=mode, simulation=sim)
        out = np.asarray(sim.outputs[out_name].detach().cpu(), dtype=np.float64).reshape(T, B, -1)
        self.preds.append(decide(out))
        by_step = getattr(decide, "by_step", None)
        if by_step is not None:
            self.step_preds.append(by_step(out))
        self.spikes += sim.total_spikes
        self.energy += prof.energy_estimate_uj * B
        self.silent += int((~out.any(axis=(0, 2))).sum())


def _readout(readout: str | Callable) -> Callable[[np.ndarray], np.ndarray]:
    if callable(readout):
        return lambda out: whole_classes(readout(out))
    if readout in ("count", "last"):
        def decide(out: np.ndarray) -> np.ndarray:
            return (out.sum(axis=0) if readout == "count" else out[-1]).argmax(axis=1)

        # the same readout on the first t+1 steps, for every t: the accuracy-against-steps curve
        decide.by_step = (lambda out: np.cumsum(out, axis=0).argmax(axis=2)) if readout == "count" else (lambda out: out.argmax(axis=2))  # type: ignore[attr-defined]
        return decide
    raise TalonError(f"unknown readout {readout!r}; readouts: {', '.join(READOUTS)} or a function of the (T, B, K) outputs")


def whole_classes(pred: Any) -> np.ndarray:
    """A custom readout's classes as int64; fractional or non-numeric values are refused, not truncated."""
    arr = np.asarray(pred).reshape(-1)
    if arr.dtype.kind not in "biuf" or (arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr))):
        bad = arr[:5] if arr.dtype.kind not in "biuf" else arr[arr != np.round(arr)][:5]
        raise TalonError(f"the readout returned {plain(bad)} ({arr.dtype}); it must return whole class numbers, one per sample (e.g. scores.argmax(axis=1))")
    return arr.astype(np.int64)


def _scores(preds: np.ndarray, labels: np.ndarray, K: int, spikes: float, energy: float, silent: int) -> Scores:
    conf = np.zeros((K, K), dtype=np.int64)
    np.add.at(conf, (labels, preds), 1)
    totals = conf.sum(axis=1)
    per = {k: (float(conf[k, k] / totals[k]) if totals[k] else None) for k in range(K)}
    n = len(labels)
    return Scores(float(np.mean(preds == labels)) if n else 0.0, per, conf, preds, spikes / max(n, 1), energy / max(n, 1), silent)


def _progress(total: int | None, show: bool | None) -> Any:
    if not (show if show is not None else sys.stderr.isatty()):
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=True)  # fmt: skip


def evaluate(
    model: Any,
    data: Any,
    mode: str = "float",
    steps: int | None = None,
    *,
    encode: str | None = None,
    dt: float | None = None,
    batch_size: int = 64,
    readout: str | Callable = "count",
    output: str | None = None,
    seed: int = 0,
    energy_preset: str = "45nm_cmos",
    calibration: Any = None,
    fixed_config: Any = None,
    threshold: float | None = None,
    max_samples: int | None = None,
    progress: bool | None = None,
    backend: str = "cpu",
) -> EvaluationResult:
    """Accuracy, per-class accuracy, confusion matrix, spikes and energy per sample of `model` (a Graph
    or .t1c path) on `data` (see talon.eval_data: .npz, event folder, tonic data set, (x, y) iterable).

    mode: "float", or "fixed" (the hardware's fixed point; the float run is reported beside it with the
    agreement). steps: timesteps per sample (sequences are cut to it; needed to encode samples or frame
    events). encode: "rate", "latency", "direct" (samples) or "delta" (sequences); talon.io's encoders,
    rate seeded by (seed, sample index). dt: microseconds per step when framing events. readout: "count"
    (argmax of the Output summed over steps), "last", or f((T, B, K) outputs) -> (B,) classes.
    calibration: (T, B, *S) inputs the fixed-point formats are calibrated on (default: the first batch).
    """
    from talon.backend import get_backend, get_energy_preset
    from talon.sdk import as_graph

    started = time.perf_counter()
    if mode not in MODES:
        raise TalonError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise TalonError(f"batch_size must be a positive integer, got {plain(batch_size)}")
    if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer)) or max_samples < 1):
        raise TalonError(f"max_samples must be a positive whole number (or None for every sample), got {plain(max_samples)}")
    g = as_graph(model)
    be = get_backend(backend)
    be.check_mode(mode)
    get_energy_preset(energy_preset)  # an unknown preset fails here, before any simulation
    inputs = list(g.input_names)
    if len(inputs) != 1:
        raise TalonError(f"evaluate feeds one Input; the graph has {len(inputs)}: {inputs}")
    out_name = readout_output(g, output)
    K = class_count(g, out_name)
    decide = _readout(readout)
    source = open_source(data)
    framing = Framing(tuple(int(d) for d in g.nodes[inputs[0]].shape), steps, encode, dt, seed, threshold)
    runs = ["float"] + (["fixed"] if mode == "fixed" else [])
    tallies = {m: _Tally() for m in runs}
    labels: list[np.ndarray] = []
    T = None
    cal = calibration
    fixed_kw = None
    total = source.size if max_samples is None or source.size is None else min(source.size, max_samples)
    bar = _progress(total, progress)
    task = bar.add_task("evaluate", total=total) if bar is not None else None
    if bar is not None:
        bar.start()
    try:
        for xb, yb in batches(source, framing, batch_size, max_samples):
            check_labels(yb, K, source, sum(len(y) for y in labels))
            if T is None:
                T = int(xb.shape[0])
            elif xb.shape[0] != T:
                raise TalonError(f"{source.where}: a batch of {xb.shape[0]} steps after batches of {T}; give steps= to cut every sample to one length")
            if mode == "fixed" and cal is None:
                cal = xb
            if mode == "fixed" and fixed_kw is None:  # calibrated once: every batch runs with these formats
                fixed_kw = {**kept_calibration(be, g, cal), "compare": False, "fixed_config": fixed_config}
            for m in runs:
                kw = fixed_kw if m == "fixed" else {}
                checked = lambda out: _checked_predictions(decide(out), xb.shape[1], K)  # noqa: E731
                checked.by_step = getattr(decide, "by_step", None)  # type: ignore[attr-defined]
                tallies[m].add(be, g, xb, m, kw, energy_preset, out_name, checked)
            labels.append(yb)
            if bar is not None:
                bar.update(task, advance=len(yb))
    finally:
        if bar is not None:
            bar.stop()
    if not labels:
        raise TalonError(f"{source.where}: holds no samples to evaluate")
    y = np.concatenate(labels)
    scores = {m: _scores(np.concatenate(t.preds), y, K, t.spikes, t.energy, t.silent) for m, t in tallies.items()}
    for m, t in tallies.items():
        if t.step_preds:
            scores[m].accuracy_by_step = (np.concatenate(t.step_preds, axis=1) == y[None, :]).mean(axis=1)
    agreement = float(np.mean(scores["fixed"].predictions == scores["float"].predictions)) if mode == "fixed" else None
    cal_what = "" if mode == "float" else ("the first batch" if calibration is None else "the given calibration inputs")
    return EvaluationResult(mode, len(y), int(T), K, y, scores, agreement, readout if isinstance(readout, str) else getattr(readout, "__name__", "custom"),
                            energy_preset, source.where, source.class_names, time.perf_counter() - started, cal_what)  # fmt: skip


def kept_calibration(be: Any, graph: Any, calibration_inputs: Any) -> dict[str, Any]:
    """The keyword that runs fixed point calibrated on `calibration_inputs` on backend `be`: a calibration
    made once here (`calibration=`, the same bits as calibrating in every call) where the backend keeps
    one, else the inputs themselves (`calibration_inputs=`, calibrated again in each call)."""
    calibrate = getattr(be, "calibrate", None)
    if calibrate is None:
        return {"calibration_inputs": calibration_inputs}
    return {"calibration": calibrate(graph, calibration_inputs)}


def _checked_predictions(pred: np.ndarray, batch: int, K: int) -> np.ndarray:
    """A readout's classes: one whole number in 0..K-1 per sample (a custom readout's mistakes named)."""
    if pred.shape != (batch,):
        raise TalonError(f"the readout returned {pred.shape[0]} classes for a batch of {batch} samples; it must return one class per sample")
    if pred.size and (pred.min() < 0 or pred.max() >= K):
        raise TalonError(f"the readout returned classes in [{pred.min()}, {pred.max()}]; the Output has {K} values, classes 0..{K - 1}")
    return pred


def readout_output(g: Any, output: str | None) -> str:
    """The Output whose values are read out: `output`, checked, or the graph's only Output."""
    outs = list(g.output_names)
    if output is not None:
        if output not in outs:
            raise TalonError(f"output {output!r} is not an Output node; outputs: {outs}")
        return output
    if len(outs) != 1:
        raise TalonError(f"the graph has {len(outs)} outputs {outs}: name the one to decode with output=")
    return outs[0]


def class_count(g: Any, name: str) -> int:
    """Classes a readout of Output `name` can tell apart (its element count)."""
    shape = g.nodes[name].output_shape
    if shape is None:
        shape = g.infer_shapes()[name][0]
    return int(np.prod(shape))


def check_labels(y: np.ndarray, K: int, source: Source, offset: int) -> None:
    """Refuse labels outside 0..K-1, naming the data source and the first bad sample."""
    bad = (y < 0) | (y >= K)
    if bad.any():
        i = int(np.argmax(bad))
        raise TalonError(
            f"{source.where}, sample {offset + i}: label {int(y[i])} does not match the model, whose Output has {K} values "
            f"(classes 0..{K - 1}); check the labels, or evaluate the model they belong to"
        )
