"""Instrumented CPU simulator vs the bare bridge executor on the same workload (target, issue 20: ratio <= 1.05).

Workload: the tutorial's hybrid ANN-SNN (Conv2d -> ReLU -> MaxPool -> Affine -> LIF -> Affine), the
documented default stimulus (uniform [0, 1) seed 0, batch 1), N_STEPS steps, float mode.

- bare: `ir_to_torch(graph, return_state=True)` then `executor.run(x_seq)` under inference_mode,
  which is the same runtime doing the same work without counters.
- simulate: `get_backend("cpu").simulate(graph, n_steps=N_STEPS)`: the whole call (stimulus, executor,
  spike and event counters, output checks, result object).

The two are timed interleaved (bare, simulate, bare, simulate, ...; REPEATS pairs after a warm-up) so
that load from other processes hits both alike; the headline ratio is the median of the per-pair
ratios (robust to load that drifts during the run); best over best is printed too. Also printed: fixed mode over float mode (information only: fixed
mode runs a float calibration run plus a float64 run) and profile over simulate.
Fails (exit status 1) when simulate's output differs from the bare executor's.
glibc's malloc is told to keep freed memory (benchmarks/malloc_policy.py; --default-malloc to leave it):
otherwise a fresh run faults in thousands of pages or none, depending on the heap's state, which may differ
between the two contenders (about 10 ms of a 25-30 ms call).
Run: python benchmarks/backend.py [n_steps] [--default-malloc]
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (docs/performance.md)

import numpy as np
import torch

from talon import ir
from talon.backend import get_backend
from talon.backend.stimulus import default_stimulus
from talon.bridge.executor import ir_to_torch

from malloc_policy import keep_freed_memory

N_STEPS = 200  # main() takes another from the command line
REPEATS = 41


def hybrid_graph(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    tau = np.full(64, 10.0)
    nodes = {
        "input": ir.Input(shape=(1, 28, 28)),
        "conv1": ir.Conv2d(weight=rng.normal(0, 0.3, (16, 1, 3, 3)).astype(np.float32), bias=rng.normal(0, 0.1, 16).astype(np.float32), padding=(1, 1)),
        "relu": ir.ReLU(),
        "pool": ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2)),
        "flatten": ir.Flatten(),
        "fc1": ir.Affine(weight=rng.normal(0, 0.02, (64, 3136)).astype(np.float32), bias=rng.normal(0, 0.1, 64).astype(np.float32)),
        "lif": ir.LIF(tau=tau, r=tau, v_leak=np.zeros(64), v_threshold=np.ones(64)),
        "fc2": ir.Affine(weight=rng.normal(0, 0.1, (10, 64)).astype(np.float32), bias=np.zeros(10, np.float32)),
        "output": ir.Output(),
    }
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def best(fn, repeats: int = REPEATS) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    global N_STEPS
    args = [a for a in sys.argv[1:] if a != "--default-malloc"]
    if args:
        N_STEPS = int(args[0])
    malloc = "default malloc (--default-malloc)" if "--default-malloc" in sys.argv[1:] else keep_freed_memory()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; {malloc}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    g = hybrid_graph()
    cpu = get_backend("cpu")
    x = default_stimulus((1, 28, 28))

    def bare() -> None:
        ex = ir_to_torch(g, return_state=True)
        with torch.inference_mode():
            ex.run(x.unsqueeze(0).expand(N_STEPS, *x.shape), state=None)

    def instrumented() -> None:
        cpu.simulate(g, n_steps=N_STEPS)

    bare()
    instrumented()
    pairs = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        bare()
        t1 = time.perf_counter()
        instrumented()
        t2 = time.perf_counter()
        pairs.append((t1 - t0, t2 - t1))
    t_bare = min(p[0] for p in pairs)
    t_sim = min(p[1] for p in pairs)
    median_ratio = float(np.median([s / b for b, s in pairs]))
    t_fixed = best(lambda: cpu.simulate(g, n_steps=N_STEPS, mode="fixed"), 3)
    t_prof = best(lambda: cpu.profile(g, n_steps=N_STEPS), 3)
    sim = cpu.simulate(g, n_steps=N_STEPS)
    ex = ir_to_torch(g, return_state=True)
    with torch.inference_mode():
        want, _ = ex.run(x.unsqueeze(0).expand(N_STEPS, *x.shape), state=None)
    if not torch.equal(sim.outputs["output"], want):
        raise SystemExit("FAIL: cpu.simulate's output differs from the bare executor's")
    print(f"workload: hybrid ANN-SNN, {N_STEPS} steps, batch 1, torch threads {torch.get_num_threads()}; spikes {sim.spike_counts}")
    print(f"bare executor (build + run)   {t_bare * 1e3:9.2f} ms (best)")
    print(f"cpu.simulate (float)          {t_sim * 1e3:9.2f} ms (best)")
    print(f"ratio simulate / bare         {median_ratio:9.3f}   (target <= 1.05; median of {REPEATS} interleaved pairs; best/best {t_sim / t_bare:.3f})")
    print(f"fixed / float simulate        {t_fixed / t_sim:9.3f}   (information)")
    print(f"profile / simulate            {t_prof / t_sim:9.3f}   (information)")


if __name__ == "__main__":
    main()
