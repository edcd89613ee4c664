"""Benchmark: fixed-point simulation against float simulation, and how its cost follows input activity.

Run:  PYTHONPATH=src python benchmarks/fixed_point.py [--steps 100] [--batch 32] [--repeats 5] [--threads 1] [--cpu]

Workloads (fixed weights, seed 0):
  * hybrid: the tutorial's ANN-SNN (Conv2d-ReLU-MaxPool-Affine-LIF-Affine, benchmarks/backend.py), the
    default stimulus, batch 1, 200 steps;
  * mlp: a 784-512-512-10 LIF MLP fed Bernoulli spikes (RateEncoder) at 5% and at 40% activity.
Contenders, taking turns in every round so that they share the machine's background load:
  * `simulate(mode="float")` and `simulate(mode="fixed")`: whole calls. A fixed call includes one float
    run (calibration, also the reference for the agreement report), so its ratio to float is >= 1 plus
    the fixed run's own share;
  * the fixed run alone, given the plan (what the ratio above is made of beyond the float run), and the
    float run alone (the same runtime call without a plan): the fair floor of the fixed run.
Printed: medians and minimums of each, the ratios (median of per-round ratios and min/min) with their
floors beside them, and the load average. Every fixed run's spikes and outputs are compared with the
same run on plain float64 products (the simulator's reference arithmetic): any difference exits non-zero.

Threading policy: OMP_WAIT_POLICY=PASSIVE (set before torch loads, unless already set) so that idle
OpenMP workers sleep instead of spinning on a shared machine; `--threads` intra-op threads (default 1:
per-step neuron work is too small to split).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (see the docstring)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from talon import ir  # noqa: E402
from talon.backend import get_backend  # noqa: E402
from talon.backend.cpu.simulator import plan_for, run_instrumented  # noqa: E402
from talon.backend.stimulus import RateEncoder, make_stimulus  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backend import hybrid_graph  # noqa: E402


def mlp_graph(seed: int = 0) -> ir.Graph:
    rng = np.random.default_rng(seed)
    sizes = [784, 512, 512, 10]
    nodes: dict[str, ir.Node] = {"input": ir.Input(shape=(784,))}
    for k, (a, b) in enumerate(zip(sizes, sizes[1:]), 1):
        nodes[f"fc{k}"] = ir.Affine(weight=rng.normal(0, 2.0 / np.sqrt(a), (b, a)).astype(np.float32), bias=np.zeros(b, np.float32))
        nodes[f"lif{k}"] = ir.LIF(tau=np.full(b, 5.0), r=np.full(b, 5.0), v_leak=np.zeros(b), v_threshold=np.full(b, 0.5), reset_mode="subtract")
    nodes["output"] = ir.Output()
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


CLOCK = time.perf_counter  # --cpu: time.process_time (this process's CPU seconds, what a loaded machine leaves)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = CLOCK()
            fn()
            times[k].append(CLOCK() - t0)
    return times


#: A whole fixed call runs a float run (calibration and the agreement's reference) and a fixed run, so its
#: ratio to the whole float call has the floor 1 + fixed run alone / float run alone: printed beside it.
FLOORS = {
    ("simulate fixed", "simulate float"): ("fixed run alone (plan given)", "float run alone"),
    **{(f"fixed {p}", f"float {p}"): (f"fixed run alone {p}", f"float run alone {p}") for p in ("5%", "40%")},
}


def show(times: dict[str, list[float]], rows: list[tuple[str, str, str, float | None]]) -> None:
    for k, ts in times.items():
        print(f"  {k:28s} median {statistics.median(ts) * 1e3:8.1f} ms   min {min(ts) * 1e3:8.1f} ms")
    for text, a, b, target in rows:
        med = statistics.median(x / y for x, y in zip(times[a], times[b]))
        mn = min(times[a]) / min(times[b])
        goal = f"target <= {target}: {'met' if med <= target else 'NOT met'}" if target else "information"
        runs = FLOORS.get((a, b))
        if runs is not None and all(k in times for k in runs):
            floor = 1 + statistics.median(x / y for x, y in zip(times[runs[0]], times[runs[1]]))
            goal += f"; floor 1 + fixed run / float run = {floor:.2f}"
        print(f"  {text:44s} median {med:5.2f}   min/min {mn:5.2f}   ({goal})")


def check_exact(label: str, graph: ir.Graph, stim: object, plan: object) -> None:
    """The fast products (float32 / event-driven) must give the very bits of plain float64 products."""
    try:
        from talon.backend.cpu import exact_products as xp
    except ImportError:  # a TALON without them: nothing to check
        return
    spiking = [n for n, node in graph.nodes.items() if node.spiking]
    fast = run_instrumented(graph, stim, plan=plan, record_spikes=spiking)
    saved = xp.SPARSE_BELOW, xp.float32_exact
    xp.SPARSE_BELOW, xp.float32_exact = 0.0, lambda *a, **k: False
    try:
        slow = run_instrumented(graph, stim, plan=plan, record_spikes=spiking)
    finally:
        xp.SPARSE_BELOW, xp.float32_exact = saved
    for n in spiking:
        if not torch.equal(fast.spikes[n], slow.spikes[n]):
            raise SystemExit(f"FAIL {label}: node {n!r} spikes of the fast fixed-point products differ from float64 products")
    for n in graph.output_names:
        if not torch.equal(fast.outputs[n], slow.outputs[n]):
            raise SystemExit(f"FAIL {label}: output {n!r} of the fast fixed-point products differs from float64 products")
    print(f"  {label}: fixed-point spikes and outputs identical with float64 products")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cpu", action="store_true", help="time CPU seconds of this process instead of wall seconds")
    args = parser.parse_args()
    global CLOCK
    if args.cpu:
        CLOCK = time.process_time
    torch.set_num_threads(args.threads)
    cpu = get_backend("cpu")
    print(f"torch {torch.__version__}, {args.threads} intra-op threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, "
          f"{'CPU' if args.cpu else 'wall'} time")

    g = hybrid_graph()
    stim = make_stimulus(None, {"input": (1, 28, 28)}, 200)
    plan, _ = plan_for(g, stim, None)
    print(f"\n== hybrid ANN-SNN, 200 steps, batch 1 ({load()})")
    check_exact("hybrid", g, stim, plan)
    times = interleaved({
        "simulate float": lambda: cpu.simulate(g, n_steps=200),
        "simulate fixed": lambda: cpu.simulate(g, n_steps=200, mode="fixed"),
        "fixed run alone (plan given)": lambda: run_instrumented(g, stim, plan=plan),
        "float run alone": lambda: run_instrumented(g, stim),
    }, args.repeats)
    show(times, [("fixed simulate / float simulate", "simulate fixed", "simulate float", 1.5),
                 ("fixed run alone / float run alone", "fixed run alone (plan given)", "float run alone", 1.5),
                 ("fixed run alone / float simulate", "fixed run alone (plan given)", "simulate float", None)])
    print(f"  after: {load()}")

    g = mlp_graph()
    fns: dict[str, Callable[[], object]] = {}
    for p in (0.05, 0.40):
        inputs = RateEncoder(torch.full((args.batch, 784), p), seed=1)
        res = cpu.simulate(g, inputs=inputs, n_steps=args.steps, mode="fixed")
        stim = make_stimulus(RateEncoder(torch.full((args.batch, 784), p), seed=1), {"input": (784,)}, args.steps)
        seq = torch.stack([stim.step(t)["input"] for t in range(args.steps)])  # encode once, outside the timing
        check_exact(f"mlp at {p:.0%} (agreement with float: {min(res.agreement.values()):.3f})", g, make_stimulus(seq, {"input": (784,)}, None), res.fixed_point)
        fns[f"float {p:.0%}"] = lambda seq=seq: cpu.simulate(g, inputs=seq)
        fns[f"fixed {p:.0%}"] = lambda seq=seq: cpu.simulate(g, inputs=seq, mode="fixed")
        seq_stim = make_stimulus(seq, {"input": (784,)}, None)
        fns[f"fixed run alone {p:.0%}"] = lambda s=seq_stim, pl=res.fixed_point: run_instrumented(g, s, plan=pl)
        fns[f"float run alone {p:.0%}"] = lambda s=seq_stim: run_instrumented(g, s)
    print(f"\n== 784-512-512-10 LIF MLP, {args.steps} steps, batch {args.batch}, Bernoulli spike input ({load()})")
    times = interleaved(fns, args.repeats)
    show(times, [
        ("fixed simulate / float simulate, 40%", "fixed 40%", "float 40%", 1.5),
        ("fixed simulate 5% / 40%", "fixed 5%", "fixed 40%", 0.5),
        ("fixed run alone 5% / 40%", "fixed run alone 5%", "fixed run alone 40%", 0.5),
        ("float simulate 5% / 40% (floor: dense, exact)", "float 5%", "float 40%", None),
        ("fixed run alone / float run alone, 40%", "fixed run alone 40%", "float run alone 40%", 1.5),
        ("fixed run alone / float run alone, 5%", "fixed run alone 5%", "float run alone 5%", None),
        ("fixed run alone 40% / float simulate 40%", "fixed run alone 40%", "float 40%", None),
    ])
    print(f"  after: {load()}")


if __name__ == "__main__":
    main()
