"""Benchmark: .t1c write/read against numpy.save/numpy.load of the same arrays.

Run:  PYTHONPATH=src python benchmarks/format.py [--repeats 5] [--dir /tmp] [--profile] [--overlap auto|on|off]

Builds a ~10M-parameter graph (Affine 784->2048, 2048->2048 twice, 2048->10, a per-neuron LIF after each,
plus graph metadata), then times, after one warm-up of each:
  * talon.ir.write(path, graph) and talon.ir.read(path);
  * numpy.save of every array to its own .npy in a folder, and numpy.load of all of them.
Writes are timed twice: over the previous round's files (a checkpoint saved again: .t1c replaces its
file atomically by rename, numpy.save truncates each .npy in place) and to new paths (a first save).
Both should cost about the same: the writer reserves the new file's blocks before the rename (so ext4
does not start writing it back inside `rename`) and closes the replaced file on a worker thread.
The operations are timed round after round (interleaved, so all see the same machine state); each
timing is the minimum over `--repeats` rounds, and the median of the per-round ratios is printed too,
with the load average before and after (on a shared machine, compare runs only at similar load).
Prints file size / raw array bytes and the write- and read-time ratios against numpy, with the targets:
size <= 1.01 x raw + 16 KiB, each time ratio <= 1.5. As references (not targets), h5py on the same HDF5
objects in the same rounds: creating them without the arrays' bytes, writing objects and arrays with
HDF5's own write path, and reading every dataset and attribute; and the arrays' bytes alone written as the
writer writes them (posix_fallocate + pwrite). The objects and the arrays are a write's two parts: their
sum is the floor of a write on one thread, the larger of the two the floor of one that overlaps them on
two (the writer does where a CPU looks idle, and says which). With --profile it also breaks the time down
(shape inference, content digest, HDF5 dataset creation, per-array checksums, array copies, ...).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from talon import ir
from talon.ir import _integrity

TIME_TARGET = 1.5
SIZE_SLACK, SIZE_FIXED = 1.01, 16 * 1024


def build_graph(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    sizes = [784, 2048, 2048, 2048, 10]
    nodes: dict[str, ir.Node] = {"input": ir.Input(shape=(sizes[0],))}
    edges, prev = [], "input"
    for k, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        fc, lif = f"layers.{k}.fc", f"layers.{k}.lif"
        nodes[fc] = ir.Affine(weight=(rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32),
                              bias=rng.standard_normal(n_out).astype(np.float32))
        tau = rng.uniform(2.0, 20.0, n_out).astype(np.float32)
        nodes[lif] = ir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(n_out, np.float32),
                            v_threshold=rng.uniform(0.5, 1.5, n_out).astype(np.float32), reset_mode="subtract")
        edges += [(prev, fc), (fc, lif)]
        prev = lif
    nodes["output"] = ir.Output()
    edges.append((prev, "output"))
    return ir.Graph(nodes, edges, dt=1.0, metadata={"name": "bench-10M", "layers": sizes, "trained": {"epochs": 10, "acc": 0.97}})


def arrays_of(graph: ir.Graph) -> dict[str, np.ndarray]:
    return {f"{name}.{field}": arr for name, node in graph.nodes.items() for field, arr in node.arrays()}


def best_of(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def interleaved(fns: dict[str, Callable[[int], object]], repeats: int) -> dict[str, list[float]]:
    """Time each function once per round, round after round, so that all of them see the same machine.
    Each call gets the round number (-1 for the warm-up)."""
    for fn in fns.values():
        fn(-1)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn(r)
            times[key].append(time.perf_counter() - t0)
    return times


class FreshPaths:
    """A new target path per round for the first-save timings; files two rounds old are deleted
    (outside the timed call) so that the disk does not fill up."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root, self.kind = root, kind

    def __call__(self, r: int) -> Path:
        old = self.root / f"{self.kind}{r - 2}"
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
        path = self.root / f"{self.kind}{r}"
        if self.kind == "npy":
            path.mkdir()
        return path


def npy_save(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    for key, arr in arrays.items():
        np.save(folder / f"{key}.npy", arr)


def npy_load(folder: Path, keys: list[str]) -> dict[str, np.ndarray]:
    return {key: np.load(folder / f"{key}.npy") for key in keys}


def hdf5_layout(path: Path) -> list[tuple[str, object, dict]]:
    """Every group and dataset of the HDF5 file at `path` (name, None for a group or (data, dtype), attributes),
    in h5py's visit order: what the h5py reference timings below rebuild and read."""
    import h5py

    objects: list[tuple[str, object, dict]] = []
    with h5py.File(path, "r") as f:
        objects.append(("graph", None, dict(f["graph"].attrs)))

        def visit(name: str, obj: object) -> None:
            data = (obj[()], obj.dtype) if isinstance(obj, h5py.Dataset) else None
            objects.append((name, data, dict(obj.attrs)))

        f["graph"].visititems(lambda name, obj: visit(f"graph/{name}", obj))
        objects.append(("version", (f["version"][()], f["version"].dtype), {}))
    return objects


def h5py_write(path: Path, objects: list[tuple[str, object, dict]], arrays: bool = True) -> None:
    """The same objects written with h5py's own API (HDF5's write path, no seal, no rename); with
    `arrays=False` the arrays' datasets are created without their bytes (HDF5's objects alone)."""
    import h5py

    with h5py.File(path, "w", libver=("v110", "latest")) as f:
        for name, data, attrs in objects:
            if data is None:
                obj = f.create_group(name)
            elif arrays or np.size(data[0]) < 1024:
                obj = f.create_dataset(name, data=data[0], dtype=data[1])
            else:
                obj = f.create_dataset(name, shape=np.shape(data[0]), dtype=data[1])
            for key, value in attrs.items():
                obj.attrs[key] = value


def raw_copy(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """The arrays' bytes alone, as the .t1c writer copies them: one new file, its blocks reserved, one
    pwrite per array (no HDF5): with `h5py_write(..., arrays=False)` the two parts of a .t1c write."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.posix_fallocate(fd, 0, sum(a.nbytes for a in arrays.values()))
        offset = 0
        for arr in arrays.values():
            view = memoryview(np.ascontiguousarray(arr)).cast("B")
            while view:
                done = os.pwrite(fd, view, offset)
                view, offset = view[done:], offset + done
    finally:
        os.close(fd)


def h5py_read(path: Path) -> dict[str, object]:
    """Every dataset and attribute of the file read with h5py, no checks: what any reader of these
    objects through h5py spends."""
    import h5py

    out: dict[str, object] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: object) -> None:
            out.update({f"{name}@{k}": v for k, v in obj.attrs.items()})
            if isinstance(obj, h5py.Dataset):
                out[name] = obj[()]

        f.visititems(visit)
    return out


def profile(label: str, fn: Callable[[], object], top: int = 18) -> None:
    prof = cProfile.Profile()
    prof.enable()
    fn()
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\n--- profile: {label} (sorted by own time) ---")
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if "ncalls" in line)
    print("\n".join(lines[start : start + top + 1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dir", default=None, help="scratch folder (default: a new temporary folder)")
    ap.add_argument("--profile", action="store_true", help="profile one write and one read")
    ap.add_argument("--overlap", choices=("auto", "on", "off"), default="auto",
                    help="copy the arrays on a second thread: where a CPU looks idle (auto, the writer's own choice), always, or never")
    args = ap.parse_args()
    choices: list[bool] = []  # the writer's choice at each write (talon.ir._integrity.spare_cpu)
    spare = {"auto": _integrity.spare_cpu, "on": lambda: True, "off": lambda: False}[args.overlap]
    _integrity.spare_cpu = lambda: choices.append(spare()) or choices[-1]

    graph = build_graph()
    arrays = arrays_of(graph)
    raw = sum(a.nbytes for a in arrays.values())
    params = sum(a.size for a in arrays.values())
    work = Path(tempfile.mkdtemp(prefix="talon-bench-", dir=args.dir))
    try:
        path = work / "model.t1c"
        npy_dir = work / "npy"
        npy_dir.mkdir()

        fresh = work / "fresh"
        fresh.mkdir()
        new_t1c, new_npy = FreshPaths(fresh, "t1c"), FreshPaths(fresh, "npy")
        new_h5o, new_h5w, new_raw = FreshPaths(fresh, "h5o"), FreshPaths(fresh, "h5w"), FreshPaths(fresh, "raw")
        targets: dict[str, Path] = {}
        ir.write(path, graph)
        layout = hdf5_layout(path)

        def timed_new(kind: str, save: Callable[[Path], object]) -> Callable[[int], object]:
            return lambda r: save(targets[kind])  # the path `prepare` picked for this round

        def prepare(r: int) -> None:  # untimed: pick (and clear) this round's fresh paths
            targets["t1c"], targets["npy"] = new_t1c(r), new_npy(r)
            targets["h5o"], targets["h5w"], targets["raw"] = new_h5o(r), new_h5w(r), new_raw(r)

        load_before = os.getloadavg()[0]
        rounds = interleaved({
            "write": lambda r: ir.write(path, graph),
            "save": lambda r: npy_save(npy_dir, arrays),
            "read": lambda r: ir.read(path),
            "load": lambda r: npy_load(npy_dir, list(arrays)),
            "prepare": prepare,
            "write_new": timed_new("t1c", lambda p: ir.write(p, graph)),
            "save_new": timed_new("npy", lambda p: npy_save(p, arrays)),
            "h5py_objects": timed_new("h5o", lambda p: h5py_write(p, layout, arrays=False)),
            "h5py_write": timed_new("h5w", lambda p: h5py_write(p, layout)),
            "h5py_read": lambda r: h5py_read(path),
            "raw_copy": timed_new("raw", lambda p: raw_copy(p, arrays)),
        }, args.repeats)
        times = {k: v for k, v in rounds.items() if k != "prepare"}
        best = {k: min(v) for k, v in times.items()}
        # Ratio of the same round's timings, median over rounds: a second view, robust to a noisy machine.
        med = lambda xs: float(np.median(xs))  # noqa: E731
        paired = {(a, b): med([x / y for x, y in zip(times[a], times[b])]) for a, b in (("write", "save"), ("write_new", "save_new"), ("read", "load"),
                                                                                                  ("h5py_objects", "save_new"), ("h5py_write", "save_new"), ("h5py_read", "load"),
                                                                                                  ("raw_copy", "save_new"))}

        back = ir.read(path)
        assert back == graph, "round trip changed the graph"
        size = path.stat().st_size
        npy_size = sum(p.stat().st_size for p in npy_dir.iterdir())
        size_limit = raw * SIZE_SLACK + SIZE_FIXED

        ok = lambda good: "OK" if good else "MISSED"  # noqa: E731
        print(f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after the timed rounds ({os.cpu_count()} CPUs)")
        print(f"the writer copied arrays of 1 MiB and more on a second thread, overlapping the HDF5 objects, in {sum(choices)} of {len(choices)} "
              f"writes (--overlap {args.overlap}; in auto, where a CPU looked idle: fewer tasks runnable than CPUs, talon.ir._integrity.spare_cpu)")
        print(f"graph: {len(graph.nodes)} nodes, {params:,} parameters in {len(arrays)} arrays, {raw:,} raw bytes")
        print(f"file size      {size:>14,} bytes  = raw x {size / raw:.4f} (+{size - raw:,} B)   "
              f"target <= raw x {SIZE_SLACK} + {SIZE_FIXED // 1024} KiB: {ok(size <= size_limit)}   (.npy files: {npy_size:,} B)")
        for label, ours, theirs, their_name in (("write (overwrite)", "write", "save", "numpy.save"), ("write (new path)", "write_new", "save_new", "numpy.save"),
                                                ("read", "read", "load", "numpy.load")):
            a, b = best[ours], best[theirs]
            print(f"{label:18s} {a * 1e3:8.1f} ms   {their_name} {b * 1e3:8.1f} ms   ratio {a / b:5.2f}   "
                  f"target <= {TIME_TARGET}: {ok(a / b <= TIME_TARGET)}   (median per-round ratio {paired[ours, theirs]:.2f})")

        # References, not targets: the same HDF5 objects through h5py alone (docs/performance.md, "Floors").
        print("h5py on the same objects (references: no seal, no digests, no checks, no atomic rename):")
        for label, ours, theirs, their_name in (("objects, no array bytes (new path)", "h5py_objects", "save_new", "numpy.save"),
                                                ("objects and arrays (new path)", "h5py_write", "save_new", "numpy.save"),
                                                ("reading every dataset and attribute", "h5py_read", "load", "numpy.load")):
            a, b = best[ours], best[theirs]
            print(f"  {label:36s} {a * 1e3:8.1f} ms   ratio to {their_name} {a / b:5.2f}   (median per-round ratio {paired[ours, theirs]:.2f})")

        # What a .t1c write cannot go below: its two parts, HDF5's objects (through h5py, as above) and the
        # arrays' bytes, one after the other on one thread, or overlapped on two.
        b = best["raw_copy"]
        print(f"  {'arrays alone (fallocate + pwrite)':36s} {b * 1e3:8.1f} ms   ratio to numpy.save {b / best['save_new']:5.2f}   "
              f"(median per-round ratio {paired['raw_copy', 'save_new']:.2f})")
        parts = list(zip(times["h5py_objects"], times["raw_copy"], times["save_new"]))
        serial, overlapped = med([(o + c) / s for o, c, s in parts]), med([max(o, c) / s for o, c, s in parts])
        print(f"  floor of a new-path write / numpy.save (median per round): objects + arrays on one thread {serial:.2f}, overlapped on two {overlapped:.2f}")

        # Compression, for information (not a target).
        gz = work / "model_gzip.t1c"
        t_gz_write = best_of(lambda: ir.write(gz, graph, compression="gzip"), 1)
        t_gz_read = best_of(lambda: ir.read(gz), 1)
        print(f"gzip (info)    write {t_gz_write * 1e3:.1f} ms, read {t_gz_read * 1e3:.1f} ms, size {gz.stat().st_size:,} B "
              f"({gz.stat().st_size / raw:.3f} x raw; random float32 weights barely compress)")

        durable = work / "model_durable.t1c"
        t_durable = best_of(lambda: ir.write(durable, graph, durable=True), 2)
        print(f"durable (info) write {t_durable * 1e3:.1f} ms with durable=True (fsync of the file and its folder; "
              f"numpy.save has no equivalent)")

        if args.profile:
            profile("write", lambda: ir.write(path, graph))
            profile("read", lambda: ir.read(path))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
