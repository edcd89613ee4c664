"""Benchmark: the graph passes on a long chain and a deep nesting stay linear.

Run:  PYTHONPATH=src python benchmarks/graph_scale.py [--nodes 100000] [--depth 40] [--cli]

Builds Input -> NODES ReLUs -> Output and a graph nested DEPTH levels deep, then times Graph.validate,
talon.sdk.analyze_graph and talon.sdk.lint_graph on each (wall and CPU seconds; the target is under 5 s
each for 100,000 nodes). With --cli it also writes the chain to a .t1c file and times `talon validate`,
`inspect`, `analyze`, `lint` and `export-html` on it in a subprocess. Prints the time per node so that
runs of different sizes can be compared: linear code keeps it flat.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import talon.ir as ir
from talon.ir import Graph
from talon.sdk import analyze_graph
from talon.sdk.lint import lint_graph


def chain(n: int) -> Graph:
    names = ["in", *(f"r{i}" for i in range(n)), "out"]
    nodes = {"in": ir.Input(shape=(4,)), **{nm: ir.ReLU() for nm in names[1:-1]}, "out": ir.Output()}
    return Graph(nodes, list(zip(names, names[1:])))


def nested(depth: int) -> Graph:
    g = Graph({"in": ir.Input(shape=(4,)), "r": ir.ReLU(), "out": ir.Output()}, [("in", "r"), ("r", "out")])
    for _ in range(depth):
        g = Graph({"in": ir.Input(shape=(4,)), "sub": g, "out": ir.Output()}, [("in", "sub"), ("sub", "out")])
    return g


def timed(label: str, fn, per: int) -> None:
    w, c = time.perf_counter(), time.process_time()
    fn()
    w, c = time.perf_counter() - w, time.process_time() - c
    print(f"  {label:<22} {w:8.2f} s wall {c:8.2f} s cpu   {1e6 * w / max(per, 1):8.1f} us/node")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=100_000)
    ap.add_argument("--depth", type=int, default=40)
    ap.add_argument("--cli", action="store_true", help="also time the talon commands on the chain")
    args = ap.parse_args()
    g = chain(args.nodes)
    print(f"chain of {args.nodes:,} nodes")
    for label, fn in (("validate", g.validate), ("analyze_graph", lambda: analyze_graph(g)), ("lint_graph", lambda: lint_graph(g))):
        timed(label, fn, args.nodes)
    n = nested(args.depth)
    print(f"nested {args.depth} levels deep")
    for label, fn in (("validate", n.validate), ("analyze_graph", lambda: analyze_graph(n)), ("lint_graph", lambda: lint_graph(n))):
        timed(label, fn, args.depth)
    if args.cli:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "chain.t1c")
            ir.write(path, g)
            print(f"talon commands on {path}")
            for cmd in (["validate"], ["inspect"], ["analyze"], ["lint"], ["export-html", "-o", os.path.join(tmp, "c.html")]):
                run = [sys.executable, "-c", "import sys; from talon.cli import main; sys.exit(main())", cmd[0], path, *cmd[1:]]
                timed(" ".join(cmd[:1]), lambda: subprocess.run(run, capture_output=True, check=False), args.nodes)


if __name__ == "__main__":
    main()
