"""Benchmark: fixed-point simulation against float simulation, and how its cost follows input activity.

Run:  PYTHONPATH=src python benchmarks/fixed_point.py [--steps 100] [--batch 32] [--repeats 5] [--threads 1] [--cpu]

Workloads (fixed weights, seed 0):
  * hybrid: the tutorial's ANN-SNN (Conv2d-ReLU-MaxPool-Affine-LIF-Affine, benchmarks/backend.py), the
    default stimulus, batch 1, 200 steps;
  * mlp: a 784-512-512-10 LIF MLP fed Bernoulli spikes (RateEncoder) at 5% and at 40% activity; its
    hidden layers fire at 12-35% whatever the input (dense Gaussian weights: a neuron sums many inputs);
  * relay: the same shapes, neurons and stimulus, but fc1 and fc2 give each neuron ONE input (weight 1,
    from a random source; every other weight 0) and fc3 stays dense: one input spike fires its neuron,
    so every hidden layer fires at about the input's rate. It is not a model anyone would train; it
    shows how the runtime's cost follows activity where a model's activity follows the input (sparse
    excitatory fan-in), everything else (dense weight matrices, layer sizes, neurons) being the MLP's.
Contenders, taking turns in every round so that they share the machine's background load:
  * `simulate(mode="float")` and `simulate(mode="fixed")`: whole calls. A fixed call includes one float
    run (calibration, also the reference for the agreement report), so its ratio to float is >= 1 plus
    the fixed run's own share;
  * `simulate(mode="fixed", calibration=kept, compare=False)`: a whole call with a calibration kept from
    an earlier call (`result.fixed_point.calibration`, the same ranges, so the same plan and bits): no
    float run, so its floor is the fixed run alone against the float run alone; with compare=True
    (hybrid, information) it runs the float run of the stimulus for the agreement;
  * the fixed run alone, given the plan (what the ratio above is made of beyond the float run), and the
    float run alone (the same runtime call without a plan): the fair floor of the fixed run. Both are
    given the event-counted layers and the cost table once, as simulate() gives them to its runs;
  * per layer: the fixed run timed between the executor's observer calls ("setup": building the runtime
    and the input's conversion; "rest": what follows the last layer), for the floors of 5% / 40%:
    the 5% run with fc1 costing nothing, and with every synaptic product costing nothing (what is left:
    the neuron updates, which run every step whatever the activity, and the run outside the layers).
Printed: medians and minimums of each, the ratios (median of per-round ratios and min/min) with their
floors beside them, the firing rates, and the load average. Every fixed run's spikes and outputs are compared with the
same run on plain float64 products, float64 between every layer and step-by-step neurons (the reference
arithmetic): any difference exits non-zero.

Threading policy: OMP_WAIT_POLICY=PASSIVE (set before torch loads, unless already set) so that idle
OpenMP workers sleep instead of spinning on a shared machine; `--threads` intra-op threads (default 1:
per-step neuron work is too small to split).
"""

from __future__ import annotations

import argparse
import copy
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
from talon.backend.cpu import simulator  # noqa: E402
from talon.backend.cpu.simulator import plan_for, run_instrumented, spike_driven_layers  # noqa: E402
from talon.sdk.cost import graph_costs  # noqa: E402
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


def relay_graph(seed: int = 0) -> ir.Graph:
    """The MLP's shapes with one weight-1 input per hidden neuron (see the module docstring)."""
    g = mlp_graph(seed)
    rng = np.random.default_rng(seed + 1)
    for name, n_in in (("fc1", 784), ("fc2", 512)):
        w = np.zeros((512, n_in), np.float32)
        w[np.arange(512), rng.permutation(n_in)[:512]] = 1.0
        g.nodes[name] = g.nodes[name].replace(weight=w)
    return g


def run_alone(graph: ir.Graph) -> Callable[..., object]:
    """run_instrumented as simulate() calls it: the event-counted layers and the cost table computed once."""
    common = {"count_events": spike_driven_layers(graph), "costs": graph_costs(graph)}
    return lambda stim, plan=None, **kw: run_instrumented(graph, stim, plan=plan, **common, **kw)


def layer_times(run: Callable[[], object]) -> dict[str, float]:
    """CLOCK seconds of one run per node, between the executor's observer calls; "setup" is the time
    before the executor's first chunk starts (building it, converting the input)."""
    marks: list[tuple[str, float]] = []
    build = simulator.ir_to_torch

    def timed(*a: object, observer: Callable | None = None, **k: object) -> object:
        def obs(name: str, *rest: object) -> None:
            observer(name, *rest)
            marks.append((name, CLOCK()))
        ex = build(*a, observer=obs, **k)
        inner_run = ex.run
        def run_marked(*ra: object, **rk: object) -> object:
            marks.append(("setup", CLOCK()))
            return inner_run(*ra, **rk)
        ex.run = run_marked
        return ex

    simulator.ir_to_torch = timed
    try:
        t0 = CLOCK()
        run()
        t1 = CLOCK()
    finally:
        simulator.ir_to_torch = build
    out: dict[str, float] = {}
    prev = t0
    for name, t in marks:
        out[name] = out.get(name, 0.0) + t - prev
        prev = t
    out["rest"] = t1 - prev
    out["total"] = t1 - t0
    return out


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
#: A fixed call with a kept calibration (`calibration=`, compare=False) runs no float run: its floor is the
#: fixed run alone against the float run alone (0 + ...), and its 5% / 40% floor that of the fixed runs alone.
#: With compare=True it runs the float run of the stimulus (the agreement's reference): 1 + ... again.
FLOORS = {
    ("simulate fixed", "simulate float"): ("fixed run alone (plan given)", "float run alone", 1),
    **{(f"fixed {p}", f"float {p}"): (f"fixed run alone {p}", f"float run alone {p}", 1) for p in ("5%", "40%")},
    ("simulate fixed, kept calibration", "simulate float"): ("fixed run alone (plan given)", "float run alone", 0),
    ("simulate fixed, kept calibration, compare", "simulate float"): ("fixed run alone (plan given)", "float run alone", 1),
    ("fixed kept 40%", "float 40%"): ("fixed run alone 40%", "float run alone 40%", 0),
    ("fixed kept 5%", "fixed kept 40%"): ("fixed run alone 5%", "fixed run alone 40%", 0),
}


def show(times: dict[str, list[float]], rows: list[tuple[str, str, str, float | None]]) -> None:
    for k, ts in times.items():
        print(f"  {k:42s} median {statistics.median(ts) * 1e3:8.1f} ms   min {min(ts) * 1e3:8.1f} ms")
    for text, a, b, target in rows:
        med = statistics.median(x / y for x, y in zip(times[a], times[b]))
        mn = min(times[a]) / min(times[b])
        goal = f"target <= {target}: {'met' if med <= target else 'NOT met'}" if target else "information"
        runs = FLOORS.get((a, b))
        if runs is not None and all(k in times for k in runs[:2]):
            floor = runs[2] + statistics.median(x / y for x, y in zip(times[runs[0]], times[runs[1]]))
            what = "fixed run / float run" if "float" in runs[1] else "fixed run 5% / fixed run 40%"
            goal += f"; floor {'1 + ' if runs[2] else ''}{what} = {floor:.2f}"
        print(f"  {text:62s} median {med:5.2f}   min/min {mn:5.2f}   ({goal})")


def check_exact(label: str, graph: ir.Graph, stim: object, plan: object) -> None:
    """The fast products (float32 / event-driven / float32 between exact layers / spikes by construction
    summed from 8-bit rows) must give the very bits of plain float64 products everywhere, with
    step-by-step neurons."""
    try:
        from talon.backend.cpu import exact_products as xp
    except ImportError:  # a TALON without them: nothing to check
        return
    try:
        from talon.backend.cpu import fixed_lif_seq
    except ImportError:  # a TALON without the fused neuron loop
        fixed_lif_seq = None
    spiking = [n for n, node in graph.nodes.items() if node.spiking]
    fast = run_instrumented(graph, stim, plan=plan, record_spikes=spiking)
    saved = xp.SPARSE_BELOW, xp.float32_exact
    xp.SPARSE_BELOW, xp.float32_exact = 0.0, lambda *a, **k: False
    narrow = getattr(simulator, "narrow_float32", None)  # float32 between exact layers (talon.backend.cpu.fixed_narrow)
    if narrow is not None:
        simulator.narrow_float32 = lambda *a, **k: []  # no layer narrowed: float64 everywhere
    marks = getattr(simulator, "mark_spike_inputs", None)  # spikes by construction (talon.backend.cpu.fixed_events)
    if marks is not None:
        simulator.mark_spike_inputs = lambda *a, **k: []  # every event value checked, float32 weight rows
    inputs32 = getattr(simulator, "float32_inputs", None)  # spike inputs passed in float32
    if inputs32 is not None:
        simulator.float32_inputs = lambda *a, **k: []
    if fixed_lif_seq is not None:
        fixed_lif_seq.ENABLED = False
    reference = copy.deepcopy(plan)  # without the decisions cached on the plan by the fast runs
    for p in reference.nodes.values():
        p.__dict__.pop("_derived_weights", None)
    try:
        slow = run_instrumented(graph, stim, plan=reference, record_spikes=spiking)
    finally:
        xp.SPARSE_BELOW, xp.float32_exact = saved
        if narrow is not None:
            simulator.narrow_float32 = narrow
        if marks is not None:
            simulator.mark_spike_inputs = marks
        if inputs32 is not None:
            simulator.float32_inputs = inputs32
        if fixed_lif_seq is not None:
            fixed_lif_seq.ENABLED = True
    for n in spiking:
        if not torch.equal(fast.spikes[n], slow.spikes[n]):
            raise SystemExit(f"FAIL {label}: node {n!r} spikes of the fast fixed-point products differ from float64 products")
    for n in graph.output_names:
        if not torch.equal(fast.outputs[n], slow.outputs[n]):
            raise SystemExit(f"FAIL {label}: output {n!r} of the fast fixed-point products differs from float64 products")
    print(f"  {label}: fixed-point spikes and outputs identical with float64 products and the step-by-step neurons")


def check_kept(label: str, full: object, kept: object) -> None:
    """A call with the kept calibration must give the very bits of the call that calibrates."""
    same = (full.spike_counts == kept.spike_counts and full.agreement == kept.agreement
            and full.fixed_point.summary() == kept.fixed_point.summary()
            and all(torch.equal(full.outputs[n], kept.outputs[n]) for n in full.outputs))
    if not same:
        raise SystemExit(f"FAIL {label}: simulate with the kept calibration differs from simulate calibrating in the call")
    print(f"  {label}: simulate with the kept calibration identical with the call that calibrates (counts, outputs, agreement, formats)")


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
    kept = plan.calibration  # what a user keeps from a first fixed call (result.fixed_point.calibration)
    hybrid_alone = run_alone(g)
    print(f"\n== hybrid ANN-SNN, 200 steps, batch 1 ({load()})")
    check_exact("hybrid", g, stim, plan)
    check_kept("hybrid", cpu.simulate(g, n_steps=200, mode="fixed"), cpu.simulate(g, n_steps=200, mode="fixed", calibration=kept))
    times = interleaved({
        "simulate float": lambda: cpu.simulate(g, n_steps=200),
        "simulate fixed": lambda: cpu.simulate(g, n_steps=200, mode="fixed"),
        "simulate fixed, kept calibration": lambda: cpu.simulate(g, n_steps=200, mode="fixed", calibration=kept, compare=False),
        "simulate fixed, kept calibration, compare": lambda: cpu.simulate(g, n_steps=200, mode="fixed", calibration=kept),
        "fixed run alone (plan given)": lambda: hybrid_alone(stim, plan),
        "float run alone": lambda: hybrid_alone(stim),
    }, args.repeats)
    show(times, [("fixed simulate / float simulate", "simulate fixed", "simulate float", 1.5),
                 ("fixed simulate with a kept calibration / float simulate", "simulate fixed, kept calibration", "simulate float", 1.5),
                 ("  the same with compare=True (float reference run)", "simulate fixed, kept calibration, compare", "simulate float", None),
                 ("fixed run alone / float run alone", "fixed run alone (plan given)", "float run alone", 1.5),
                 ("fixed run alone / float simulate", "fixed run alone (plan given)", "simulate float", None)])
    print(f"  after: {load()}")

    activity("784-512-512-10 LIF MLP", mlp_graph(), args, whole_calls=True)
    activity("relay MLP (hidden layers follow the input)", relay_graph(), args, whole_calls=False)


LAYERS = ("setup", "fc1", "lif1", "fc2", "lif2", "fc3", "lif3", "rest")


def activity(title: str, g: ir.Graph, args: argparse.Namespace, whole_calls: bool) -> None:
    """How the fixed run's cost follows input activity (5% against 40%) on `g`, with its floors."""
    cpu = get_backend("cpu")
    alone = run_alone(g)
    fns: dict[str, Callable[[], object]] = {}
    rates: dict[str, dict[str, float]] = {}
    for p in (0.05, 0.40):
        inputs = RateEncoder(torch.full((args.batch, 784), p), seed=1)
        res = cpu.simulate(g, inputs=inputs, n_steps=args.steps, mode="fixed")
        stim = make_stimulus(RateEncoder(torch.full((args.batch, 784), p), seed=1), {"input": (784,)}, args.steps)
        seq = torch.stack([stim.step(t)["input"] for t in range(args.steps)])  # encode once, outside the timing
        seq_stim = make_stimulus(seq, {"input": (784,)}, None)
        check_exact(f"{title.split(' (')[0]} at {p:.0%} (agreement with float: {min(res.agreement.values()):.3f})", g, seq_stim, res.fixed_point)
        rates[f"{p:.0%}"] = res.firing_rates
        if whole_calls:
            check_kept(f"{title.split(' (')[0]} at {p:.0%}", cpu.simulate(g, inputs=seq, mode="fixed"),
                       cpu.simulate(g, inputs=seq, mode="fixed", calibration=res.fixed_point.calibration))
        if whole_calls:
            fns[f"float {p:.0%}"] = lambda seq=seq: cpu.simulate(g, inputs=seq)
            fns[f"fixed {p:.0%}"] = lambda seq=seq: cpu.simulate(g, inputs=seq, mode="fixed")
            # calibrated once (the same calibration as the call above: its result's), then evaluated
            fns[f"fixed kept {p:.0%}"] = lambda seq=seq, c=res.fixed_point.calibration: cpu.simulate(g, inputs=seq, mode="fixed", calibration=c, compare=False)
        fns[f"fixed run alone {p:.0%}"] = lambda s=seq_stim, pl=res.fixed_point: alone(s, pl)
        fns[f"float run alone {p:.0%}"] = lambda s=seq_stim: alone(s)
        fns[f"layers {p:.0%}"] = lambda s=seq_stim, pl=res.fixed_point: layer_times(lambda: alone(s, pl))
    print(f"\n== {title}, {args.steps} steps, batch {args.batch}, Bernoulli spike input ({load()})")
    for k, r in rates.items():
        print(f"  firing rates at {k} input: " + ", ".join(f"{n} {v:.1%}" for n, v in r.items()))
    layers: dict[str, list[dict[str, float]]] = {"5%": [], "40%": []}
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns if not k.startswith("layers")}
    for _ in range(args.repeats):
        for k, fn in fns.items():
            if k.startswith("layers"):
                layers[k.split()[1]].append(fn())
                continue
            t0 = CLOCK()
            fn()
            times[k].append(CLOCK() - t0)
    rows = [("fixed run alone 5% / 40%", "fixed run alone 5%", "fixed run alone 40%", 0.5),
            ("fixed run alone / float run alone, 40%", "fixed run alone 40%", "float run alone 40%", 1.5),
            ("fixed run alone / float run alone, 5%", "fixed run alone 5%", "float run alone 5%", None),
            ("float run alone 5% / 40% (dense, exact)", "float run alone 5%", "float run alone 40%", None)]
    if whole_calls:
        rows = [("fixed simulate / float simulate, 40%", "fixed 40%", "float 40%", 1.5),
                ("fixed simulate 5% / 40%", "fixed 5%", "fixed 40%", 0.5),
                ("fixed simulate with a kept calibration / float simulate, 40%", "fixed kept 40%", "float 40%", 1.5),
                ("fixed simulate with a kept calibration 5% / 40%", "fixed kept 5%", "fixed kept 40%", 0.5)] + rows
    show(times, rows)
    print(f"  per layer, {'CPU' if CLOCK is time.process_time else 'wall'} ms of the fixed run alone (medians of {args.repeats} interleaved rounds):")
    print("    " + " ".join(f"{k:>6s}" for k in (*LAYERS, "total")))
    med = {}
    for k, runs in layers.items():
        med[k] = {n: statistics.median(r.get(n, 0.0) for r in runs) for n in (*LAYERS, "total")}
        print("    " + " ".join(f"{med[k][n] * 1e3:6.1f}" for n in (*LAYERS, "total")) + f"   ({k} input)")
    products = ("fc1", "fc2", "fc3")
    floors = {
        "fc1 free": [(r5["total"] - r5["fc1"]) / r40["total"] for r5, r40 in zip(layers["5%"], layers["40%"])],
        "every product free (neurons + outside the layers)": [
            (r5["total"] - sum(r5[n] for n in products)) / r40["total"] for r5, r40 in zip(layers["5%"], layers["40%"])],
    }
    ratio = [r5["total"] / r40["total"] for r5, r40 in zip(layers["5%"], layers["40%"])]
    print(f"  5% / 40% in these runs: {statistics.median(ratio):.2f}; floors, the 5% run with:")
    for k, v in floors.items():
        print(f"    {k:50s} {statistics.median(v):.2f}")
    print(f"  after: {load()}")


if __name__ == "__main__":
    main()
