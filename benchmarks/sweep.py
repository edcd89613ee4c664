"""A 24-point talon.sweep of the end-to-end demo's digits model, in-process against Ray with 2 workers.

Run:  PYTHONPATH=src python benchmarks/sweep.py [--epochs 3] [--workers 2] [--model mlp|conv] [--samples N]

The model is trained here with snnTorch on scikit-learn's digits (examples/end_to_end.py's network,
64-128-10 snn.Leaky; or --model conv, benchmarks/fixed_point_sweep.py's conv SNN), exported with
talon.bridge.to_ir, and swept over weight_bits 4,6,8 x accumulator_bits 16,24 x neurons_per_core 64,128 x
algorithm greedy,metis (24 points) on the rate-coded test split (450 images, 20 steps). It runs the sweep
in this process, then on a local Ray cluster of --workers CPUs, checks that the two results.json files
hold the same points, and prints the wall times, the speed-up and the cost per point (docs/scaling.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "examples"))
sys.path.insert(0, here)
import end_to_end as demo  # noqa: E402  (the demo's data, model and training)

GRID = {"weight_bits": [4, 6, 8], "accumulator_bits": [16, 24], "neurons_per_core": [64, 128], "algorithm": ["greedy", "metis"]}


def trained_graph(kind: str, epochs: int, steps: int, seed: int):
    from talon.bridge import to_ir

    x_train, x_test, y_train, y_test = demo.load_digits_split(seed)
    quiet = lambda msg: None  # noqa: E731
    torch.manual_seed(seed)
    if kind == "mlp":
        model = demo.build_model(128, 0.9)
        demo.train(model, x_train, y_train, epochs=epochs, steps=steps, seed=seed, log=quiet)
        model.eval()
        return to_ir(model, torch.zeros(1, 64), spiking_input=True), x_test, y_test
    from fixed_point_sweep import _Flat2Img, build_conv

    model = build_conv(0.9)
    demo.train(_Flat2Img(model), x_train, y_train, epochs=epochs, steps=steps, seed=seed, log=quiet)
    model.eval()
    return to_ir(model, torch.zeros(1, 1, 8, 8), spiking_input=True), x_test.reshape(-1, 1, 8, 8), y_test


def points_of(out: str) -> list[dict]:
    with open(os.path.join(out, "results.json"), encoding="utf-8") as f:
        return [{k: v for k, v in p.items() if k not in ("seconds", "seconds_prepare")} for p in json.load(f)["points"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--model", choices=["mlp", "conv"], default="mlp")
    p.add_argument("--samples", type=int, default=None, help="test images (default: the whole split, 450)")
    p.add_argument("--shard-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cost", type=int, default=None, metavar="N",
                   help="instead: the cost per point of N samples (the test images repeated, each rate-coded anew), in-process, on the first --cost-points points")
    p.add_argument("--cost-points", type=int, default=2)
    args = p.parse_args(argv)
    import ray

    from talon.sweep import sweep

    t0 = time.perf_counter()
    graph, x, y = trained_graph(args.model, args.epochs, args.steps, args.seed)
    if args.samples:
        x, y = x[: args.samples], y[: args.samples]
    data = {"x": x.astype(np.float32), "y": np.asarray(y)}
    print(f"digits {args.model}: trained {args.epochs} epoch(s) in {time.perf_counter() - t0:.1f} s; {len(y)} test images x {args.steps} steps; "
          f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")  # fmt: skip
    if args.cost:
        return cost(graph, data, args)
    kw = dict(steps=args.steps, encode="rate", batch_size=64, shard_size=args.shard_size, plots=False, progress=False, seed=args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        local = sweep(graph, data, GRID, os.path.join(tmp, "local"), **kw)
        t_local = time.perf_counter() - t
        t = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        t_start = time.perf_counter() - t
        try:
            t = time.perf_counter()
            on_ray = sweep(graph, data, GRID, os.path.join(tmp, "ray"), ray=True, **kw)
            t_ray = time.perf_counter() - t
        finally:
            ray.shutdown()
        same = points_of(os.path.join(tmp, "local")) == points_of(os.path.join(tmp, "ray"))
    n = len(local.points)
    per_point = [q["seconds"] for q in local.points]
    best = local.best()
    print(f"{n} points, {sum(q['status'] == 'ok' for q in local.points)} measured; float accuracy {local.reference['accuracy']:.2%}, "
          f"best fixed point {best['metrics']['accuracy']:.2%} at {best['metrics']['energy_uj']:.4g} uJ ({best['id']})")  # fmt: skip
    print(f"float reference run: {local.reference['seconds']:.2f} s; per point (convert + map + fixed-point simulation + profile): "
          f"mean {np.mean(per_point):.2f} s, min {min(per_point):.2f} s, max {max(per_point):.2f} s")  # fmt: skip
    print(f"in-process:            {t_local:7.1f} s")
    print(f"Ray, {args.workers} workers:        {t_ray:7.1f} s  (+ {t_start:.1f} s to start the local cluster)")
    print(f"speed-up: {t_local / t_ray:.2f}x without the cluster start, {t_local / (t_ray + t_start):.2f}x with it; "
          f"results identical point for point: {same}; Ray task time {sum(q['seconds'] for q in on_ray.points):.1f} s")  # fmt: skip
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0 if same else 1


def cost(graph, data: dict, args: argparse.Namespace) -> int:
    """Seconds per point on `args.cost` samples: the float reference once, then each point's convert and map
    (independent of the data) and its fixed-point simulation and profile (linear in the samples)."""
    from talon.sweep import sweep

    reps = -(-args.cost // len(data["y"]))
    big = {"x": np.concatenate([data["x"]] * reps)[: args.cost], "y": np.concatenate([data["y"]] * reps)[: args.cost]}
    grid = {"weight_bits": [4, 8][: args.cost_points], "algorithm": ["metis"]}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        res = sweep(graph, big, grid, tmp, steps=args.steps, encode="rate", batch_size=64, shard_size=args.shard_size, plots=False, progress=False, seed=args.seed)
        wall = time.perf_counter() - t
    print(f"{args.cost} samples x {args.steps} steps, {len(res.points)} points in {wall:.1f} s (encoding the data included); "
          f"float reference {res.reference['seconds']:.1f} s")  # fmt: skip
    for q in res.points:
        print(f"  {q['id']}: {q['seconds']:.1f} s = convert + map {q['seconds_prepare']:.2f} s + simulate and profile {q['seconds'] - q['seconds_prepare']:.1f} s "
              f"({(q['seconds'] - q['seconds_prepare']) / args.cost * 1e3:.2f} ms per sample); accuracy {q['metrics']['accuracy']:.2%}")  # fmt: skip
    print(f"load after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
