"""Network-on-chip traffic of a run on a mapped graph: packets, packet-hops, per-step link loads, congestion.

Given a MappingResult (its routing entries, core positions, hardware) and each mapped layer's activity over
a run, `noc_traffic` counts the packets every spike puts on the mesh (one per other destination core of its
routing entry, along talon.mapping.route's XY paths) and the load of every link in every step;
`noc_congestion` turns that into per-step latencies (longest active route, or the busiest link's queueing
bound) and the busiest links. The activity comes from the caller (talon.backend.cpu's profiler reads it from
a simulation); docs/energy.md derives each term. Never imports torch.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from scipy import sparse

from talon.mapping.route import LinkLoads, link_endpoints, route_links, num_links

__all__ = ["noc_traffic", "noc_congestion", "entry_routes", "step_loads", "Activity"]

#: activity(layer name, its index in mapping.layers, its neurons) -> (spikes per neuron per sample over the
#: run, (steps, batch, neurons) bool spikes or None, how the activity was obtained).
Activity = Callable[[str, int, int], tuple[np.ndarray, Any, str]]

#: Per-step link loads are computed for this many (step, sample, link) values at a time (memory bound).
_LOAD_CHUNK = 4_000_000


def entry_routes(mapping: Any) -> dict[str, Any]:
    """Per routing entry: remote destinations (other cores), their summed and maximum XY hops, and the
    packets one spike of the entry puts on each directed link.

    The paths are talon.mapping.route.route_links (the router's own XY rule). One packet per remote
    destination, each on its own path: a link shared by two destinations' paths carries two packets
    (no multicast-tree replication, as route.link_loads counts them). `floor_hops[j]` = the fewest hops
    any route crossing link links[j] makes before it, plus the fewest after it, plus the link itself.
    """
    rt, cores, hw = mapping.routing, mapping.cores, mapping.hardware
    E = int(rt["core"].shape[0])
    lengths = np.diff(rt["dest_indptr"])
    entry = np.repeat(np.arange(E), lengths)
    src, dst = rt["core"][entry], rt["dest"]
    remote = dst != src
    e_r, s_r, d_r = entry[remote], src[remote], dst[remote]
    path = route_links(hw.rows, hw.cols, cores["row"][s_r], cores["col"][s_r], cores["row"][d_r], cores["col"][d_r])
    hops = path.hops
    n_remote = np.bincount(e_r, minlength=E).astype(np.float64)
    hop_sum = np.bincount(e_r, weights=hops, minlength=E).astype(np.float64)
    hop_max = np.zeros(E, dtype=np.int64)
    np.maximum.at(hop_max, e_r, hops)
    links, col = np.unique(path.link, return_inverse=True)
    incidence = sparse.coo_matrix((np.ones(path.link.size), (e_r[path.flow], col)), shape=(E, links.size)).tocsr()  # duplicates add
    big = np.iinfo(np.int64).max
    before = np.full(links.size, big, dtype=np.int64)
    after = np.full(links.size, big, dtype=np.int64)
    np.minimum.at(before, col, path.index)
    np.minimum.at(after, col, hops[path.flow] - path.index - 1)
    return {
        "layer": rt["layer"], "start": rt["start"], "stop": rt["stop"], "n_remote": n_remote, "hop_sum": hop_sum, "hop_max": hop_max,
        "links": links, "incidence": incidence, "floor_hops": (before + after + 1).astype(np.float64),
    }  # fmt: skip


def noc_traffic(mapping: Any, activity: Activity, steps: int, batch: int) -> dict[str, Any]:
    """NoC packets, packet-hops and per-step link loads per sample over a run of `steps` steps of `batch`
    samples, from each mapped layer's activity: `activity(name, k, size)` (layer `name`, the k-th of
    mapping.layers, `size` neurons) -> (spikes per neuron per sample over the run, the (steps, batch, size)
    bool spikes or None when only the count is known, how it was obtained).

    Each spike of a source neuron (each non-zero value of a recorded Input) sends one packet to every
    other core its routing entry lists (XY routes, hops = Manhattan distance; deliveries to its own core
    are local). With recorded activity every step and sample gets its own loads: packets per directed
    link and the longest route that carried a packet. A layer known only by its count contributes an
    upper bound to every step: each entry that fired at all sends min(its neurons, the batch's whole
    count) packets per destination, over its longest route.

    Returns per source layer `packets`, `packet_hops`, `sources` (how its activity was obtained); per
    (step, sample), (T, B) arrays: `route_hops` (longest active route), `queue_s` (the queueing bound of
    step_loads, seconds), `busiest` (index into `links`) and `max_load`; per used link (`links`, numbered
    as talon.mapping.route numbers them): `link_packets` (per sample over the run) and `peak_link_load`.
    """
    T, B = int(steps), max(int(batch), 1)
    routes = entry_routes(mapping)
    inc = routes["incidence"]
    E = inc.shape[0]
    sizes = mapping.layer_sizes()
    packets: dict[str, float] = {}
    hops: dict[str, float] = {}
    sources: dict[str, str] = {}
    route_hops = np.zeros((T, B), dtype=np.int64)
    bound = 0
    entry_spikes = np.zeros(E)  # per sample over the run
    upper = np.zeros(E)  # per-step upper bound of the packets each unrecorded entry sends
    recorded: list[tuple[Any, np.ndarray]] = []  # (incidence^T of a layer's entries, (T*B, entries) spikes)
    for k, name in enumerate(mapping.layers):
        sel = np.flatnonzero(routes["layer"] == k)
        size = sizes[name]
        counts, fired, how = activity(name, k, size)
        sources[name] = how
        if sel.size == 0:
            packets[name], hops[name] = 0.0, 0.0
            continue
        start, stop = routes["start"][sel], routes["stop"][sel]
        cs = np.concatenate([[0.0], np.cumsum(counts)])
        spikes = cs[stop] - cs[start]  # spikes per sample over the run, per entry
        entry_spikes[sel] = spikes
        packets[name] = float(np.dot(spikes, routes["n_remote"][sel]))
        hops[name] = float(np.dot(spikes, routes["hop_sum"][sel]))
        hop_max = routes["hop_max"][sel]
        if fired is not None:
            if T and hop_max.any():
                fc = np.concatenate([np.zeros((T, B, 1), dtype=np.int64), np.cumsum(fired, axis=2, dtype=np.int64)], axis=2)
                per_step = fc[:, :, stop] - fc[:, :, start]  # (T, B, entries): spikes of each entry in each step
                route_hops = np.maximum(route_hops, np.where(per_step > 0, hop_max, 0).max(axis=2))
                recorded.append((inc[sel].T.tocsr(), per_step.reshape(T * B, sel.size).astype(np.float64)))
        elif spikes.sum() > 0:
            bound = max(bound, int(hop_max[spikes > 0].max(initial=0)))
            # at most one spike per neuron per step, and no more than the whole batch fired in the run
            upper[sel] = np.where(spikes > 0, np.minimum(stop - start, spikes * B), 0.0)
    route_hops = np.maximum(route_hops, bound)
    loads = step_loads(recorded, inc.T.tocsr() @ upper, routes["floor_hops"], T, B, mapping.hardware)
    return {
        "packets": packets,
        "packet_hops": hops,
        "sources": sources,
        "route_hops": route_hops,
        "links": routes["links"],
        "link_packets": inc.T.tocsr() @ entry_spikes,  # per sample over the run, per used link
        "exact": bound == 0,
        **loads,
    }


def step_loads(recorded: list, constant: np.ndarray, floor_hops: np.ndarray, T: int, B: int, hw: Any) -> dict[str, np.ndarray]:
    """Per (step, sample): packets on every used link (recorded layers' spikes through their incidence,
    plus the constant upper-bound load of unrecorded ones), the busiest link and its load, and the
    queueing bound max over links of floor_hops x latency_per_hop + (packets - 1) x packet_time (seconds).
    Worked in chunks of rows so that (rows x links) stays below _LOAD_CHUNK values."""
    n_links = int(constant.shape[0])
    rows = T * B
    busiest = np.zeros(rows, dtype=np.int64)
    load = np.zeros(rows)
    queue_s = np.zeros(rows)
    peak = np.zeros(n_links)
    t_hop, t_pkt = hw.latency_per_hop, hw.packet_time
    chunk = max(1, _LOAD_CHUNK // max(n_links, 1))
    for r0 in range(0, rows if n_links else 0, chunk):
        r1 = min(rows, r0 + chunk)
        L = np.broadcast_to(constant, (r1 - r0, n_links)).copy()
        for inc_t, S in recorded:
            L += (inc_t @ S[r0:r1].T).T
        j = L.argmax(axis=1)
        busiest[r0:r1] = j
        load[r0:r1] = L[np.arange(r1 - r0), j]
        queue_s[r0:r1] = np.where(L > 0, floor_hops * t_hop + (L - 1.0) * t_pkt, 0.0).max(axis=1)
        np.maximum(peak, L.max(axis=0), out=peak)
    return {
        "busiest": busiest.reshape(T, B),
        "max_load": load.reshape(T, B),
        "queue_s": queue_s.reshape(T, B),
        "peak_link_load": peak,
    }


def noc_congestion(traffic: dict[str, Any], hw: Any) -> tuple[dict[str, Any], np.ndarray]:
    """The congestion of a noc_traffic result (the fields of talon.backend's NocCongestion, documented
    there), and the (T, B) NoC latency of every step and sample (seconds): the larger of its longest active
    route and the busiest link's queueing bound."""
    route_s = traffic["route_hops"] * hw.latency_per_hop
    step_s = np.maximum(route_s, traffic["queue_s"])
    T, B = step_s.shape
    links = traffic["links"]

    def full(values: np.ndarray) -> Any:
        out = np.zeros(num_links(hw.rows, hw.cols))
        out[links] = values
        return LinkLoads.from_flat(hw.rows, hw.cols, out)

    def link_at(j: int) -> tuple[tuple[int, int], tuple[int, int]]:
        fr, fc, tr, tc = link_endpoints(hw.rows, hw.cols, [links[j]])
        return (int(fr[0]), int(fc[0])), (int(tr[0]), int(tc[0]))

    max_load, busiest = traffic["max_load"], traffic["busiest"]
    worst = max_load.argmax(axis=1) if B else np.zeros(T, dtype=np.int64)  # the batch's worst sample per step
    step_load = max_load[np.arange(T), worst] if T else np.zeros(0)
    step_link = tuple(link_at(int(busiest[t, worst[t]])) if step_load[t] > 0 else None for t in range(T))
    top = int(step_load.argmax()) if T and step_load.max() > 0 else None
    over = None if hw.link_bandwidth is None else int(np.sum(step_load > hw.link_bandwidth))
    latency_us, route_us = float(step_s.sum()) / B * 1e6, float(route_s.sum()) / B * 1e6
    cg = dict(
        mesh=(hw.rows, hw.cols),
        latency_per_hop_ns=hw.latency_per_hop * 1e9,
        packet_time_ns=hw.packet_time * 1e9,
        step_latency_us=tuple(float(v) for v in step_s.mean(axis=1) * 1e6),
        step_route_latency_us=tuple(float(v) for v in route_s.mean(axis=1) * 1e6),
        step_max_link_load=tuple(float(v) for v in step_load),
        step_busiest_link=step_link,
        busiest_link=None if top is None else step_link[top],
        busiest_step=top,
        max_link_load=float(step_load[top]) if top is not None else 0.0,
        latency_us=latency_us,
        route_latency_us=route_us,
        congestion_latency_us=latency_us - route_us,
        congested_steps=int(np.sum((step_s > route_s).any(axis=1))),
        over_bandwidth_steps=over,
        exact=bool(traffic["exact"]),
        link_packets=full(traffic["link_packets"]),
        peak_link_loads=full(traffic["peak_link_load"]),
    )
    return cg, step_s
