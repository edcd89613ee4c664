"""Benchmark: cold start of `talon analyze` and `talon lint`, against the floor `import numpy, h5py`.

Run:  PYTHONPATH=src python benchmarks/cli_startup.py [--runs 15] [--baseline OTHER/src]

Writes a small model (Input -> Affine -> LIF -> Affine -> LIF -> Output) to a temporary .t1c file and
times fresh interpreters, each contender once per round in turn (so they share the machine's background
load), with the modules byte-compiled as in an installed package: `python -c pass`, the floor `python -c "import numpy, h5py"` (the two libraries any .t1c reader
needs), and `python -m talon.cli analyze/lint MODEL`. With --baseline, the two commands also run from
another source tree (e.g. an older checkout's src) in the same rounds, for a before/after comparison.
Prints the median and minimum wall time and CPU time (user + system, less disturbed by other processes on
a loaded machine) of each, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from talon import ir


def write_model(path: str) -> None:
    rng = np.random.default_rng(0)

    def lif(n: int) -> ir.LIF:
        tau = np.full(n, 10.0, np.float32)
        return ir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(n, np.float32), v_threshold=np.ones(n, np.float32))

    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(8,)))
    g.add_node("fc1", ir.Affine(weight=rng.normal(size=(16, 8)).astype(np.float32), bias=np.zeros(16, np.float32)))
    g.add_node("lif1", lif(16))
    g.add_node("fc2", ir.Affine(weight=rng.normal(size=(4, 16)).astype(np.float32), bias=np.zeros(4, np.float32)))
    g.add_node("lif2", lif(4))
    g.add_node("out", ir.Output())
    g.chain("inp", "fc1", "lif1", "fc2", "lif2", "out")
    ir.write(path, g)


def run_once(argv: list[str], src: str | None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run."""
    # byte-compiled modules, as an installed package has: the warm-up run writes them
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if src is not None:
        env["PYTHONPATH"] = src
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed (exit {res.returncode}): {res.stderr.strip()}")
    return elapsed, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15, help="rounds (each contender runs once per round)")
    ap.add_argument("--baseline", metavar="SRC", help="another source tree to time the commands from as well")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.t1c")
        write_model(model)
        contenders: dict[str, tuple[list[str], str | None]] = {
            "python -c pass": ([py, "-c", "pass"], None),
            "floor: import numpy, h5py": ([py, "-c", "import numpy, h5py"], None),
        }
        trees = [("", None)] + ([(" (baseline)", args.baseline)] if args.baseline else [])
        for suffix, src in trees:
            for command in ("analyze", "lint"):
                contenders[f"talon {command}{suffix}"] = ([py, "-m", "talon.cli", command, model], src)
        for argv, src in contenders.values():  # warm the OS file cache
            run_once(argv, src)
        load_before = os.getloadavg()
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
        for _ in range(args.runs):
            for name, (argv, src) in contenders.items():
                times[name].append(run_once(argv, src))
        load_after = os.getloadavg()
    print(f"{args.runs} rounds; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    print(f"  {'':<32} {'wall median':>11} {'wall min':>9} {'CPU median':>11} {'CPU min':>8}  (ms)")
    for name, ts in times.items():
        wall, cpu = [t[0] * 1000 for t in ts], [t[1] * 1000 for t in ts]
        print(f"  {name:<32} {statistics.median(wall):11.0f} {min(wall):9.0f} {statistics.median(cpu):11.0f} {min(cpu):8.0f}")


if __name__ == "__main__":
    main()
