"""Mapping benchmark: a 1M-neuron, ~20M-synapse network on a 32x32 mesh of 1,024-neuron cores.

The network (talon.mapping.synthetic.layered_small_world): 16 sheets of 250 x 250 neurons; each neuron
makes 15 synapses onto neurons within 2 of its position in the next sheet, 6 within 2 in its own sheet,
and on average 0.25 onto uniformly random neurons anywhere (small-world shortcuts); log-normal firing
rates around 0.05 spikes/step. It is built directly as a sparse matrix (never dense).

For each algorithm, map_graph() is timed end to end (partition, place, route, allocate, metrics,
routing tables) and compared with the naive baseline: the greedy layer-order partition placed
row-major, without refinement. Targets: METIS under 60 s on 2 cores, and METIS traffic x hops
(packet-hops per step) at most 0.7 of the baseline's.

    python benchmarks/mapping.py            # the full benchmark (about a minute or two, ~1 GB)
    python benchmarks/mapping.py --small    # a 64k-neuron version on an 8x8 mesh (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import time

from talon.mapping import HardwareSpec, NeuronGraph, map_graph
from talon.mapping.synthetic import layered_small_world_csr

TARGET_SECONDS = 60.0
TARGET_RATIO = 0.7


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", action="store_true", help="4 sheets of 128x128 on an 8x8 mesh")
    ap.add_argument("--long-range", type=float, default=0.25, help="random shortcuts per neuron (default 0.25)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--algorithms", default="greedy,spectral,metis")
    ap.add_argument("--json", help="also write the numbers to this file")
    args = ap.parse_args()

    layers, side, mesh = (4, 128, 8) if args.small else (16, 250, 32)
    hw = HardwareSpec(mesh=(mesh, mesh), neurons_per_core=1024, weight_memory_bytes_per_core=64 * 1024, weight_bits=8, name=f"mesh-{mesh}x{mesh}")
    print(f"hardware: {hw.describe()}")
    print(f"threads: {os.cpu_count()} CPUs visible")

    t0 = time.perf_counter()
    adj, rates, sizes = layered_small_world_csr(layers, side, side, long_range=args.long_range, seed=args.seed)
    t1 = time.perf_counter()
    ng = NeuronGraph.from_csr(adj, rates=rates, layer_sizes=sizes, layer_names=[f"sheet{i}" for i in range(layers)], group_size=64)
    t2 = time.perf_counter()
    del adj
    print(f"network: {ng.summary()}")
    print(f"  built in {t1 - t0:.1f} s (sparse), grouped into units in {t2 - t1:.1f} s")

    rows = []
    runs = [("naive", "greedy", "row-major")] + [(a, a, "auto") for a in args.algorithms.split(",")]
    for label, algorithm, placement in runs:
        t = time.perf_counter()
        res = map_graph(ng, hw, algorithm, placement=placement, seed=args.seed)
        seconds = time.perf_counter() - t
        m = res.metrics
        rows.append({"name": label, "seconds": seconds, "placement": res.placement_method, **{k: m[k] for k in (
            "cores_used", "spike_packets_per_step", "packet_hops_per_step", "average_hops", "max_hops", "max_link_load",
            "max_neuron_utilisation", "max_memory_utilisation", "routing_entries")}, "timings": res.timings})
        print(f"  {label:8s} done in {seconds:6.1f} s  ({', '.join(f'{k} {v:.1f}' for k, v in res.timings.items())})")

    base = rows[0]["packet_hops_per_step"]
    print()
    head = f"{'mapping':9s} {'time s':>7s} {'cores':>6s} {'packets/step':>13s} {'pkt-hops/step':>14s} {'x naive':>8s} {'avg hops':>9s} {'max hops':>9s} {'max link':>9s} {'neur max':>9s} {'mem max':>8s}"
    print(head)
    print("-" * len(head))
    for r in rows:
        r["ratio"] = r["packet_hops_per_step"] / base
        print(
            f"{r['name']:9s} {r['seconds']:7.1f} {r['cores_used']:6d} {r['spike_packets_per_step']:13,.0f} "
            f"{r['packet_hops_per_step']:14,.0f} {r['ratio']:8.3f} {r['average_hops']:9.2f} {r['max_hops']:9d} "
            f"{r['max_link_load']:9,.0f} {r['max_neuron_utilisation']:9.0%} {r['max_memory_utilisation']:8.0%}"
        )
    print()
    ok = True
    metis = next((r for r in rows if r["name"] == "metis"), None)
    if metis is not None:
        t_ok = metis["seconds"] < TARGET_SECONDS
        r_ok = metis["ratio"] <= TARGET_RATIO
        ok = t_ok and r_ok
        print(f"target METIS time < {TARGET_SECONDS:.0f} s: {metis['seconds']:.1f} s  {'PASS' if t_ok else 'FAIL'}")
        print(f"target METIS traffic x hops <= {TARGET_RATIO} x naive: {metis['ratio']:.3f}  {'PASS' if r_ok else 'FAIL'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"hardware": hw.to_dict(), "network": ng.summary(), "build_seconds": t2 - t0, "rows": rows}, f, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
