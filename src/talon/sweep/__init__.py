"""`talon.sweep`: which weight width, accumulator width, core budget and mesh reach the accuracy you need
at the lowest energy? (docs/sweep.md)

    from talon.sweep import sweep
    res = sweep("model.t1c", "test.npz", {"weight_bits": [4, 6, 8], "accumulator_bits": [16, 24]}, "out/sweep",
                steps=20, encode="rate")
    res.points[0]["metrics"]["accuracy"], res.pareto

For every point of the grid: convert (talon.sdk), check the fit and map (talon.mapping: cores, packet-hops),
simulate in fixed point on the data set and price it (talon.backend: accuracy, agreement with the float
model, energy, latency). The data set is encoded once and cut into shards of `shard_size` samples; a point
is one `prepare` and one `run_shard` per shard (talon.sweep.point), run in this process or, with
`ray=True`, as Ray tasks spread over a cluster's workers; `price` then prices the shards' summed integer
counts as one run of the data set. No metric depends on the shard or batch size or on where a task ran,
so the results are identical point for point. Layer 3: ray is imported only inside functions.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from talon.errors import TalonError
from talon.sweep.grid import DEFAULTS, PARAMETERS, Point, expand, parse_grid, point_key
from talon.sweep.point import Prepared, ShardResult, fixed_config, prepare, price, readout_function, run_shard
from talon.sweep.results import SCHEMA, load, pareto_front, plot, write_all

__all__ = ["sweep", "SweepResult", "parse_grid", "expand", "pareto_front", "PARAMETERS", "DEFAULTS"]

RAY_HINT = "pip install 't1c-talon[distributed]'  (or: pip install 'ray>=2.9')"


@dataclass
class SweepResult:
    """What `sweep` returns: the points in grid order (as in results.json), the Pareto front, the files."""

    points: list[dict[str, Any]]
    pareto: list[dict[str, Any]]
    out: str
    files: dict[str, str]
    skipped: int = 0  # points read back from an earlier run instead of run again
    wall_time_s: float = 0.0
    reference: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the reader of the numbers should know (e.g. how hardware presets are priced)

    def best(self) -> dict[str, Any] | None:
        """The most accurate measured point (the lower energy on a tie)."""
        return _best(self.points)


@dataclass
class _Job:
    """What every task of a sweep shares: the model, the encoded shards and how to decide and price."""

    graph: Any
    shards: list[np.ndarray]
    labels: np.ndarray
    calibration: np.ndarray
    output: str
    batch_size: int
    readout: Callable
    energy_preset: str
    backend: str


def sweep(
    model: Any,
    data: Any,
    grid: Any,
    out: str,
    *,
    steps: int | None = None,
    encode: str | None = None,
    dt: float | None = None,
    batch_size: int = 64,
    shard_size: int = 256,
    readout: str | Callable = "count",
    output: str | None = None,
    seed: int = 0,
    threshold: float | None = None,
    energy_preset: str = "45nm_cmos",
    max_samples: int | None = None,
    ray: bool = False,
    ray_address: str | None = None,
    workers: int | None = None,
    retries: int = 3,
    calibration_samples: int = 64,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
    plots: bool = True,
    backend: str = "cpu",
) -> SweepResult:
    """Run every point of `grid` (talon.sweep.grid.parse_grid: a dict or "key=v1,v2" strings) on `data`
    (as talon.eval.evaluate takes it), writing `out`/results.json as each point finishes. Points already in
    an earlier results.json of the same sweep are skipped. ray=True runs the tasks on Ray (ray_address: an
    existing cluster; else a local one of `workers` CPUs, started and stopped here); `retries`: how often a
    task whose worker died is run again. calibration_samples: the fixed-point formats of every point are
    calibrated on the data set's first calibration_samples samples. No metric depends on batch_size or
    shard_size (they set how much is simulated at once and how the data set is spread over Ray tasks).
    progress: a bar on stderr (default: when stderr is a terminal); log: called with one line per finished
    point."""
    started = time.perf_counter()
    for name, v, lo in (("batch_size", batch_size, 1), ("shard_size", shard_size, 1), ("retries", retries, 0), ("calibration_samples", calibration_samples, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise TalonError(f"{name} must be a whole number >= {lo}, got {v!r}")
    points = expand(parse_grid(grid))
    decide = readout_function(readout)
    job, settings = _job(model, data, steps, encode, dt, batch_size, shard_size, decide, output, seed, threshold, energy_preset, max_samples, backend,
                         calibration_samples)
    settings["readout"] = readout if isinstance(readout, str) else _function_id(readout)
    if ray:
        _import_ray()  # a missing Ray fails here, before anything is written
    if not isinstance(out, (str, os.PathLike)):
        raise TalonError(f"out must be the folder to write the results in (a path), got {out!r}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise TalonError(f"--out {out!r} is a file; the sweep writes a folder (results.json, results.csv, pareto.csv, pareto.png)")
    os.makedirs(out, exist_ok=True)
    doc = load(out, settings) or {"schema": SCHEMA, "settings": settings, "reference": None, "points": []}
    # a point is its parameters as a mapping: a grid with its keys in another order finds the same points
    done = {point_key(p["params"]): p for p in doc["points"]}
    todo = [p for p in points if p.key not in done]
    keys = list(dict.fromkeys(k for p in points for k, _ in p.params))
    order = {p.key: i for i, p in enumerate(points)}
    notes = [_hardware_note(points, job.energy_preset)] if "hardware" in keys else []
    for note in notes if log is not None else []:
        log(note)
    bar = _Progress(len(points), len(points) - len(todo), progress, log, _best(list(done.values())))

    def finish(point: Point, prep: Prepared, shards: list[ShardResult] | None, error: str | None) -> None:
        rec = _record(point, prep, shards, error, doc["reference"], job)
        doc["points"] = sorted([*(q for q in doc["points"] if point_key(q["params"]) != point.key), rec], key=lambda q: order.get(point_key(q["params"]), len(order)))
        write_all(out, doc, keys)
        bar.point(rec)

    def set_reference(results: list[ShardResult]) -> None:
        doc["reference"] = _reference(results, job)
        write_all(out, doc, keys)

    try:
        if todo or doc["reference"] is None:
            runner = _run_ray if ray else _run_local
            runner(job, todo, doc["reference"] is None, finish, set_reference, **({"address": ray_address, "workers": workers, "retries": retries} if ray else {}))
        else:
            write_all(out, doc, keys)
    finally:
        bar.close()
    files = {k: os.path.join(out, k) for k in ("results.json", "results.csv", "pareto.csv")}
    if plots:
        files["pareto.png"] = plot(doc["points"], os.path.join(out, "pareto.png"))
    by_key = {point_key(q["params"]): q for q in doc["points"]}
    current = [by_key[p.key] for p in points]
    return SweepResult(current, pareto_front(current), out, files, len(points) - len(todo), time.perf_counter() - started, doc["reference"], notes)


def _job(model: Any, data: Any, steps: int | None, encode: str | None, dt: float | None, batch_size: int, shard_size: int, decide: Callable,
         output: str | None, seed: int, threshold: float | None, energy_preset: str, max_samples: int | None, backend: str,
         calibration_samples: int) -> tuple[_Job, dict[str, Any]]:  # fmt: skip
    """Load the model, check it, encode the data set once into shards, and fingerprint the sweep's settings."""
    from talon.backend import get_backend, get_energy_preset
    from talon.eval import check_labels, class_count, readout_output
    from talon.eval_data import Framing, batches, open_source
    from talon.sdk import as_graph, fingerprint_graph

    g = as_graph(model)
    get_backend(backend).check_mode("fixed")
    get_energy_preset(energy_preset)
    inputs = list(g.input_names)
    if len(inputs) != 1:
        raise TalonError(f"a sweep feeds one Input; the graph has {len(inputs)}: {inputs}")
    out_name = readout_output(g, output)
    K = class_count(g, out_name)
    source = open_source(data)
    framing = Framing(tuple(int(d) for d in g.nodes[inputs[0]].shape), steps, encode, dt, seed, threshold)
    shards, labels = [], []
    for x, y in batches(source, framing, shard_size, max_samples):
        check_labels(y, K, source, sum(len(v) for v in labels))
        if shards and x.shape[0] != shards[0].shape[0]:
            raise TalonError(f"{source.where}: samples of {x.shape[0]} steps after samples of {shards[0].shape[0]}; give steps= to cut every sample to one length")
        x = np.ascontiguousarray(x, dtype=np.float32)
        shards.append(x)
        labels.append(np.asarray(y, np.int64))
    if not shards:
        raise TalonError(f"{source.where}: holds no samples to sweep over")
    y_all = np.concatenate(labels)
    # one set of formats for every shard and point, from the data set's first samples however it is cut
    cal = _first_samples(shards, calibration_samples)
    settings = {"model": fingerprint_graph(g), "data": source.where, "data_sha256": data_digest(shards, y_all), "samples": int(len(y_all)),
                "steps": int(shards[0].shape[0]), "encode": encode, "dt": dt, "seed": seed, "threshold": threshold, "calibration_samples": calibration_samples,
                "batch_size": batch_size, "shard_size": shard_size, "output": out_name, "energy_preset": energy_preset, "backend": backend}  # fmt: skip
    return _Job(g, shards, y_all, cal, out_name, batch_size, decide, energy_preset, backend), settings


def _function_id(fn: Callable) -> str:
    """A custom readout's name and a digest of its code, so that a sweep resumed with another function (two
    lambdas share the name "<lambda>") is refused as a different sweep instead of keeping the old points."""
    import marshal

    code = getattr(fn, "__code__", None) or getattr(getattr(fn, "__call__", None), "__code__", None)
    digest = hashlib.sha256(marshal.dumps(code)).hexdigest()[:16] if code is not None else "no code"
    return f"function {getattr(fn, '__qualname__', type(fn).__name__)} ({digest})"


def data_digest(shards: list[np.ndarray], labels: np.ndarray) -> str:
    """SHA-256 of the encoded data set, sample by sample ((T, *S) float32 each, then the int64 labels and
    the shape): the same for any cut into shards."""
    h = hashlib.sha256()
    for x in shards:
        for j in range(x.shape[1]):
            h.update(np.ascontiguousarray(x[:, j], dtype=np.float32).tobytes())
    h.update(np.asarray(labels, np.int64).tobytes())
    h.update(repr((int(shards[0].shape[0]), tuple(int(d) for d in shards[0].shape[2:]), int(len(labels)))).encode())
    return h.hexdigest()


def _first_samples(shards: list[np.ndarray], n: int) -> np.ndarray:
    """The data set's first `n` samples (T, n, *S), whatever the shard size."""
    parts, have = [], 0
    for x in shards:
        if have >= n:
            break
        parts.append(x[:, : n - have])
        have += parts[-1].shape[1]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def _hardware_note(points: list[Point], energy_preset: str) -> str:
    """What differs in energy between hardware presets: only the network-on-chip hops (docs/sweep.md)."""
    from talon.mapping.hardware import PRESETS

    names = sorted({p.settings["hardware"] for p in points})
    hops = ", ".join(f"{n} {PRESETS[n].energy_per_hop * 1e12:g} pJ/{PRESETS[n].latency_per_hop * 1e9:g} ns" for n in names)
    return (f"note: every hardware preset is priced with the energy preset {energy_preset!r} (operations and memory); presets differ in "
            f"capacity and in network-on-chip hops only (per hop: {hops}), so their energies differ only by the packet-hops of their mappings")


def _shard_kw(job: _Job) -> dict[str, Any]:
    return {"batch_size": job.batch_size, "readout": job.readout, "output": job.output, "backend": job.backend}


def _run_local(job: _Job, todo: list[Point], need_reference: bool, finish: Callable, set_reference: Callable) -> None:
    kw = _shard_kw(job)
    if need_reference:
        set_reference([_timed(run_shard, job.graph, x, "float", **kw) for x in job.shards])
    for point in todo:
        prep = _timed(prepare, job.graph, point.settings)
        if not prep.fits:
            finish(point, prep, None, None)
            continue
        try:
            shards = [_timed(run_shard, prep.graph, x, "fixed", calibration=job.calibration, config=fixed_config(point.settings), **kw) for x in job.shards]
        except TalonError as exc:
            finish(point, prep, None, f"simulate: {exc}")
            continue
        finish(point, prep, shards, None)


def _timed(fn: Callable, *args: Any, **kw: Any) -> Any:
    """fn(*args, **kw) with its wall time in `.seconds` (the per-point cost results.json reports)."""
    t0 = time.perf_counter()
    res = fn(*args, **kw)
    res.seconds = time.perf_counter() - t0
    return res


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise TalonError(f"--ray needs Ray, which is not installed: {RAY_HINT}") from None
    return ray


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Refuse a --ray-address whose head cannot be reached: Ray itself retries it without end."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise TalonError(f"--ray-address {address!r}: cannot reach a Ray head there ({exc}); give the address its "
                         "`ray start --head` printed (host:port), or leave --ray-address out to start a local cluster") from None


def _run_ray(job: _Job, todo: list[Point], need_reference: bool, finish: Callable, set_reference: Callable, *, address: str | None,
             workers: int | None, retries: int) -> None:  # fmt: skip
    """The same tasks as _run_local, as Ray tasks: prepares and shards of every point in flight at once."""
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            kw["num_cpus"] = workers or os.cpu_count() or 1
        # a local cluster's workers import talon as this process does
        kw["runtime_env"] = {"env_vars": {k: os.environ[k] for k in ("PYTHONPATH", "OMP_NUM_THREADS") if k in os.environ}}
        if address not in (None, "auto", "local"):
            _check_reachable(address)
        try:
            ray.init(address=address, **kw)
        except (ConnectionError, RuntimeError) as exc:
            if address is None:
                raise
            raise TalonError(f"--ray-address {address!r}: Ray could not connect ({str(exc).splitlines()[0]}). A cluster with token authentication "
                             "needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN, or ~/.ray/auth_token) in this process's environment, "
                             "as every Ray client does (docs/sweep.md)") from exc
    try:
        _ray_loop(ray, job, todo, need_reference, finish, set_reference, retries)
    finally:
        if started_here:
            ray.shutdown()


def _ray_loop(ray: Any, job: _Job, todo: list[Point], need_reference: bool, finish: Callable, set_reference: Callable, retries: int) -> None:
    prep_task = ray.remote(num_cpus=1, max_retries=retries)(_timed)
    shard_task = ray.remote(num_cpus=1, max_retries=retries)(_timed)
    graph = ray.put(job.graph)
    shards = [ray.put(x) for x in job.shards]
    kw = _shard_kw(job)
    cal = ray.put(job.calibration)
    pending: dict[Any, tuple[str, Any, int]] = {}
    if need_reference:
        for i, x in enumerate(shards):
            pending[shard_task.remote(run_shard, graph, x, "float", **kw)] = ("reference", None, i)
    for point in todo:
        pending[prep_task.remote(prepare, graph, point.settings)] = ("prepare", point, 0)
    ref: list[Any] = [None] * len(shards) if need_reference else []
    state: dict[str, dict[str, Any]] = {}  # point id -> {"point", "prep", "shards": [...], "error"}
    waiting: list[str] = []  # points measured before the reference was complete
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        what, point, i = pending.pop(ready[0])
        try:
            res = ray.get(ready[0])
        except TalonError as exc:  # Ray re-raises a task's exception as its own class: a point's refusal to simulate
            if what != "shard":
                raise
            st = state[point.id]
            st["error"] = st["error"] or f"simulate: {exc}"
            res = None
        if what == "reference":
            ref[i] = res
            if all(r is not None for r in ref):
                set_reference(ref)
                for pid in waiting:
                    st = state[pid]
                    finish(st["point"], st["prep"], st["shards"], st["error"])
                waiting.clear()
            continue
        if what == "prepare":
            st = state[point.id] = {"point": point, "prep": res, "shards": [None] * len(shards), "left": len(shards), "error": None}
            if res.fits:
                g = ray.put(res.graph)
                for j, x in enumerate(shards):
                    pending[shard_task.remote(run_shard, g, x, "fixed", calibration=cal, config=fixed_config(point.settings), **kw)] = ("shard", point, j)
                continue
        else:
            st = state[point.id]
            st["shards"][i] = res
            st["left"] -= 1
            if st["left"]:
                continue
        done_shards = None if st["error"] or not st["prep"].fits else st["shards"]
        if need_reference and any(r is None for r in ref):
            st["shards"] = done_shards
            waiting.append(point.id)
        else:
            finish(point, st["prep"], done_shards, st["error"])


def _reference(results: list[ShardResult], job: _Job) -> dict[str, Any]:
    """The float model's run: its predictions (the agreement's reference), accuracy and price."""
    preds = np.concatenate([r.predictions for r in results])
    t0 = time.perf_counter()
    priced = price(job.graph, results, "float", energy_preset=job.energy_preset, backend=job.backend)
    priced_s = time.perf_counter() - t0
    return {"accuracy": float(np.mean(preds == job.labels)), "predictions": preds.tolist(), "energy_uj": priced.energy_uj,
            "latency_us": priced.latency_us, "spikes_per_sample": priced.spikes_per_sample, "pricing": priced.pricing,
            "seconds": sum(getattr(r, "seconds", 0.0) for r in results) + priced_s}  # fmt: skip


def _record(point: Point, prep: Prepared, shards: list[ShardResult] | None, error: str | None, reference: dict[str, Any], job: _Job) -> dict[str, Any]:
    n = len(job.labels)
    metrics: dict[str, Any] = {"fits": prep.fits, "accuracy": None, "float_accuracy": reference["accuracy"], "agreement": None, "energy_uj": None,
                               "latency_us": None, "spikes_per_sample": None, "cores": prep.mapping.get("cores"),
                               "packet_hops_per_step": prep.mapping.get("packet_hops_per_step")}  # fmt: skip
    seconds = getattr(prep, "seconds", 0.0)
    pricing: dict[str, Any] = {"energy_preset": job.energy_preset}
    if shards is not None:
        preds = np.concatenate([s.predictions for s in shards])
        seconds += sum(getattr(s, "seconds", 0.0) for s in shards)
        t0 = time.perf_counter()
        try:
            priced = price(prep.graph, shards, "fixed", energy_preset=job.energy_preset, config=fixed_config(point.settings), backend=job.backend)
        except TalonError as exc:
            shards, error = None, f"price: {exc}"
        seconds += time.perf_counter() - t0
    if shards is not None:
        pricing = priced.pricing
        metrics.update(accuracy=float(np.mean(preds == job.labels)), agreement=float(np.mean(preds == np.asarray(reference["predictions"]))),
                       energy_uj=priced.energy_uj, latency_us=priced.latency_us, spikes_per_sample=priced.spikes_per_sample)  # fmt: skip
    status = "ok" if shards is not None else ("does-not-fit" if prep.fits is False else "error")
    return {"id": point.id, "params": dict(point.params), "settings": point.settings, "status": status, "fits": prep.fits,
            "reason": prep.reason or error, "metrics": metrics, "mapping": prep.mapping, "pricing": pricing, "accumulator_bits": prep.accumulator_bits,
            "samples": n, "seconds": seconds, "seconds_prepare": getattr(prep, "seconds", 0.0)}  # fmt: skip


def _best(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    ok = [p for p in points if p and p["status"] == "ok"]
    return min(ok, key=lambda p: (-p["metrics"]["accuracy"], p["metrics"]["energy_uj"]), default=None)


class _Progress:
    """Points done, the current best and the time left: a rich bar on stderr, and/or one line per point."""

    def __init__(self, total: int, done: int, show: bool | None, log: Callable[[str], None] | None, best: dict[str, Any] | None) -> None:
        self.total, self.done, self.log, self.best = total, done, log, best
        self.start, self.first = time.perf_counter(), done
        self.bar = None
        if show if show is not None else sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("points"), TimeRemainingColumn(),
                                TextColumn("{task.description}"), console=Console(stderr=True), transient=True)  # fmt: skip
            self.task = self.bar.add_task(self._best_text(), total=total, completed=done)
            self.bar.start()

    def _best_text(self) -> str:
        b = self.best
        return "" if b is None else f"best {b['metrics']['accuracy']:.2%} at {b['metrics']['energy_uj']:.4g} uJ ({b['id']})"

    def point(self, rec: dict[str, Any]) -> None:
        self.done += 1
        self.best = _best([self.best, rec])
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=self._best_text())
        if self.log is not None:
            m = rec["metrics"]
            what = (f"accuracy {m['accuracy']:.2%}, agreement {m['agreement']:.2%}, {m['energy_uj']:.4g} uJ, {m['latency_us']:.4g} us, {m['cores']} cores"
                    if rec["status"] == "ok" else f"{rec['status']}: {rec['reason']}")  # fmt: skip
            ran = self.done - self.first
            left = (time.perf_counter() - self.start) / ran * (self.total - self.done)
            self.log(f"[{self.done}/{self.total}] {rec['id']}: {what}; {self._best_text() or 'no measured point yet'}; about {left:.0f} s left")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
