"""Time to MappingError for a graph that cannot fit: a spiking VGG-11 (CIFAR-sized, 3x32x32 input) on
the loihi-like preset (128 cores). Built by hand as a TALON IR graph (no torch): Conv2d -> LIF blocks
with MaxPool2d, then Flatten -> Affine -> LIF classifier layers, as snnTorch's VGG examples export.

The issue's target: the MappingError (which resource, by how much) in under 5 s, before partitioning.

    python benchmarks/mapping_nofit.py                 # loihi-like, every algorithm
    python benchmarks/mapping_nofit.py --repeat 3      # medians and minimums of 3 runs
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from talon import ir
from talon.errors import MappingError
from talon.mapping import map_graph, preset

TARGET_SECONDS = 5.0
VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


def spiking_vgg(cfg=VGG11, *, in_shape=(3, 32, 32), hidden=(4096, 4096), classes: int = 10) -> ir.Graph:
    """Input -> [Conv2d(3x3, pad 1) -> LIF | MaxPool2d(2)]* -> Flatten -> [Affine -> LIF]* -> Output."""
    nodes: dict = {"input": ir.Input(shape=in_shape)}
    c, h, w = in_shape
    i = 0

    def lif(shape):
        tau = np.full(shape, 2.0, np.float32)
        return ir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(shape, np.float32), v_threshold=np.ones(shape, np.float32))

    for v in cfg:
        i += 1
        if v == "M":
            nodes[f"pool{i}"] = ir.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))
            h, w = h // 2, w // 2
            continue
        nodes[f"conv{i}"] = ir.Conv2d(weight=np.zeros((v, c, 3, 3), np.float32), bias=np.zeros(v, np.float32), padding=(1, 1))
        nodes[f"lif{i}"] = lif((v, h, w))
        c = v
    nodes["flatten"] = ir.Flatten(start_dim=0)
    prev = c * h * w
    for j, n in enumerate((*hidden, classes)):
        nodes[f"fc{j}"] = ir.Affine(weight=np.zeros((n, prev), np.float32), bias=np.zeros(n, np.float32))
        nodes[f"fclif{j}"] = lif((n,))
        prev = n
    nodes["output"] = ir.Output()
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="loihi-like")
    ap.add_argument("--algorithms", default="auto,metis,greedy")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    hw = preset(args.preset)
    g = spiking_vgg()
    print(f"hardware: {hw.describe()}")
    ok = True
    for algorithm in args.algorithms.split(","):
        times, message = [], ""
        for _ in range(args.repeat):
            t = time.perf_counter()
            try:
                map_graph(g, hw, algorithm)
                message = "it fits (unexpected)"
            except MappingError as exc:
                message = str(exc)
            times.append(time.perf_counter() - t)
        med, low = statistics.median(times), min(times)
        ok = ok and med < TARGET_SECONDS
        print(f"{algorithm:8s} median {med:6.2f} s  min {low:6.2f} s  (target < {TARGET_SECONDS:.0f} s: {'PASS' if med < TARGET_SECONDS else 'FAIL'})")
        print(f"  {message[:600]}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
