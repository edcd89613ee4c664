"""route(): dimension-order (XY) routes, link loads and per-core routing tables.

A spike of neuron i is multicast: one packet per distinct destination core among the cores holding
neurons that i has synapses onto (not one per synapse); a packet to the neuron's own core stays local
(0 hops). Packets travel X first (along the row, changing column) then Y (along the column, changing
row); each step between neighbouring routers is one hop, so hops = Manhattan distance.

Routing tables: for every core, entries (layer, neuron range [start, stop), destination cores): runs of
consecutive neurons of one layer with identical destination sets share an entry. Link loads: packets
per step on each directed link, from the XY routes of all (source core, destination core) flows.

`route_links` is the one definition of the XY path (every directed link a route crosses, in order);
`xy_route` and the backend's per-step congestion model read it, and `link_loads` aggregates the same
paths with difference arrays (a test checks the two agree). Directed links are numbered in the order of
`LinkLoads.all()`: east, west, south, north, each raveled row-major (`link_endpoints` inverts it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from talon.errors import MappingError
from talon.mapping.hardware import HardwareSpec
from talon.mapping.place import Placement

PORTS = ("east", "west", "south", "north")


def xy_route(src: tuple[int, int], dst: tuple[int, int]) -> list[tuple[int, int]]:
    """Router positions a packet visits from `src` to `dst` (both included): X (columns) first, then Y."""
    (r1, c1), (r2, c2) = (int(src[0]), int(src[1])), (int(dst[0]), int(dst[1]))
    # Any mesh holding both ends numbers the links the same way along this path.
    rows, cols = max(r1, r2) + 1, max(c1, c2) + 1
    hops = route_links(rows, cols, [r1], [c1], [r2], [c2])
    _, _, rr, cc = link_endpoints(rows, cols, hops.link)
    return [(r1, c1)] + [(int(r), int(c)) for r, c in zip(rr, cc)]


def num_links(rows: int, cols: int) -> int:
    """Directed links of a rows x cols mesh (east + west + south + north)."""
    return 2 * rows * (cols - 1) + 2 * (rows - 1) * cols


@dataclass(frozen=True)
class RouteHops:
    """Every hop of a batch of routes: hop i belongs to route `flow[i]`, crosses directed link `link[i]`
    (numbered as LinkLoads.all()) and is the `index[i]`-th hop of its route (0 = leaving the source)."""

    flow: np.ndarray
    link: np.ndarray
    index: np.ndarray
    hops: np.ndarray  # (F,) hops of each route (its Manhattan distance)


def route_links(rows: int, cols: int, r1, c1, r2, c2) -> RouteHops:
    """The directed links of the XY routes (r1, c1) -> (r2, c2), hop by hop, vectorized over routes.

    X leg first, on the source row: east[r1, c] for c = c1 .. c2-1, or west[r1, c] for c = c1-1 .. c2;
    then the Y leg on the destination column: south[r, c2] for r = r1 .. r2-1, or north[r, c2] for
    r = r1-1 .. r2 (LinkLoads names the links). Work and memory are O(total hops).
    """
    r1, c1, r2, c2 = (np.asarray(a, dtype=np.int64).ravel() for a in (r1, c1, r2, c2))
    nx, ny = np.abs(c2 - c1), np.abs(r2 - r1)
    hops = nx + ny
    F = r1.shape[0]
    flow = np.repeat(np.arange(F, dtype=np.int64), hops)
    first = np.cumsum(hops) - hops
    index = np.arange(int(hops.sum()), dtype=np.int64) - np.repeat(first, hops)
    h = cols - 1  # links per row of each horizontal direction
    east0, west0, south0 = 0, rows * h, 2 * rows * h
    north0 = south0 + (rows - 1) * cols
    fr1, fc1, fr2, fc2, fnx = r1[flow], c1[flow], r2[flow], c2[flow], nx[flow]
    on_x = index < fnx
    # X leg: hop j leaves column c1 + j (east) or c1 - j (west)
    east = on_x & (fc2 > fc1)
    west = on_x & (fc2 < fc1)
    # Y leg: hop j (counted from the turn) leaves row r1 + j (south) or r1 - j (north)
    j = index - fnx
    south = ~on_x & (fr2 > fr1)
    north = ~on_x & (fr2 < fr1)
    link = np.empty_like(index)
    link[east] = east0 + fr1[east] * h + fc1[east] + index[east]
    link[west] = west0 + fr1[west] * h + fc1[west] - index[west] - 1
    link[south] = south0 + (fr1[south] + j[south]) * cols + fc2[south]
    link[north] = north0 + (fr1[north] - j[north] - 1) * cols + fc2[north]
    return RouteHops(flow=flow, link=link, index=index, hops=hops)


def link_endpoints(rows: int, cols: int, link) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(from_row, from_col, to_row, to_col) of directed links numbered as LinkLoads.all()."""
    link = np.asarray(link, dtype=np.int64)
    if link.size and (link.min() < 0 or link.max() >= num_links(rows, cols)):
        raise MappingError(f"link numbers must lie in [0, {num_links(rows, cols)}) on a {rows}x{cols} mesh")
    h = cols - 1
    west0, south0 = rows * h, 2 * rows * h
    north0 = south0 + (rows - 1) * cols
    fr, fc, tr, tc = (np.zeros_like(link) for _ in range(4))
    for lo, hi, width, dr, dc, start_at_low in (
        (0, west0, h, 0, 1, True),  # east[r, c]: (r, c) -> (r, c+1)
        (west0, south0, h, 0, 1, False),  # west[r, c]: (r, c+1) -> (r, c)
        (south0, north0, cols, 1, 0, True),  # south[r, c]: (r, c) -> (r+1, c)
        (north0, num_links(rows, cols), cols, 1, 0, False),  # north[r, c]: (r+1, c) -> (r, c)
    ):
        sel = (link >= lo) & (link < hi)
        if not sel.any():
            continue
        r, c = np.divmod(link[sel] - lo, width)
        a = (r, c) if start_at_low else (r + dr, c + dc)
        b = (r + dr, c + dc) if start_at_low else (r, c)
        fr[sel], fc[sel], tr[sel], tc[sel] = a[0], a[1], b[0], b[1]
    return fr, fc, tr, tc


@dataclass
class LinkLoads:
    """Packets per step on each directed link. east[r, c]: (r, c) -> (r, c+1); west[r, c]: (r, c+1) -> (r, c);
    south[r, c]: (r, c) -> (r+1, c); north[r, c]: (r+1, c) -> (r, c)."""

    east: np.ndarray  # (rows, cols - 1)
    west: np.ndarray
    south: np.ndarray  # (rows - 1, cols)
    north: np.ndarray

    def all(self) -> np.ndarray:
        """Every link's load, numbered as route_links numbers the links: east, west, south, north."""
        return np.concatenate([a.ravel() for a in (self.east, self.west, self.south, self.north)])

    @classmethod
    def from_flat(cls, rows: int, cols: int, values) -> "LinkLoads":
        """The inverse of all(): per-link values numbered as route_links numbers the links."""
        v = np.asarray(values, dtype=np.float64)
        if v.shape != (num_links(rows, cols),):
            raise MappingError(f"a {rows}x{cols} mesh has {num_links(rows, cols)} directed links, got {v.shape} values")
        h, k = rows * (cols - 1), (rows - 1) * cols
        return cls(
            v[:h].reshape(rows, cols - 1), v[h : 2 * h].reshape(rows, cols - 1),
            v[2 * h : 2 * h + k].reshape(rows - 1, cols), v[2 * h + k :].reshape(rows - 1, cols),
        )  # fmt: skip

    @property
    def max(self) -> float:
        a = self.all()
        return float(a.max()) if a.size else 0.0

    def link(self, a: tuple[int, int], b: tuple[int, int]) -> float:
        """Load of the directed link between neighbouring routers a -> b."""
        (r1, c1), (r2, c2) = a, b
        if r1 == r2 and c2 == c1 + 1:
            return float(self.east[r1, c1])
        if r1 == r2 and c2 == c1 - 1:
            return float(self.west[r1, c2])
        if c1 == c2 and r2 == r1 + 1:
            return float(self.south[r1, c1])
        if c1 == c2 and r2 == r1 - 1:
            return float(self.north[r2, c1])
        raise MappingError(f"{a} and {b} are not neighbouring routers")


@dataclass
class RoutingTables:
    """Entries e = 0..E-1: core[e] emits spikes of neurons [start[e], stop[e]) of layer[e] (offsets within
    the layer) to cores dest[dest_indptr[e]:dest_indptr[e+1]] (core numbers; positions via the placement)."""

    core: np.ndarray
    layer: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    dest_indptr: np.ndarray
    dest: np.ndarray

    @property
    def num_entries(self) -> int:
        return int(self.core.shape[0])

    def for_core(self, core: int) -> list[tuple[int, int, int, list[int]]]:
        """[(layer, start, stop, [destination cores])] for one core."""
        sel = np.flatnonzero(self.core == core)
        return [
            (int(self.layer[e]), int(self.start[e]), int(self.stop[e]), self.dest[self.dest_indptr[e] : self.dest_indptr[e + 1]].tolist())
            for e in sel
        ]

    def entries_per_core(self, num_cores: int) -> np.ndarray:
        return np.bincount(self.core, minlength=num_cores)


@dataclass
class Routing:
    placement: Placement
    src: np.ndarray  # (F,) source core of each flow (p != q, packets > 0)
    dst: np.ndarray
    packets: np.ndarray  # packets per step of each flow
    hops: np.ndarray
    links: LinkLoads
    tables: RoutingTables
    local_spikes: float  # spikes per step delivered to the source's own core
    seconds: float = 0.0

    @property
    def hardware(self) -> HardwareSpec:
        return self.placement.hardware

    @property
    def packets_per_step(self) -> float:
        return float(self.packets.sum())

    @property
    def packet_hops(self) -> float:
        return float(np.dot(self.packets, self.hops))

    def path(self, src_core: int, dst_core: int) -> list[tuple[int, int]]:
        pos = self.placement.positions
        return xy_route(tuple(pos[src_core]), tuple(pos[dst_core]))


def route(placement: Placement, hw: HardwareSpec | None = None) -> Routing:
    """XY routes, link loads and routing tables for a placed partition."""
    t0 = time.perf_counter()
    hw = hw or placement.hardware
    part = placement.partition
    t = sp.coo_matrix(part.core_traffic())
    local = float(t.data[t.row == t.col].sum())
    off = (t.row != t.col) & (t.data > 0)
    src, dst, packets = t.row[off].astype(np.int64), t.col[off].astype(np.int64), t.data[off].astype(np.float64)
    pos = placement.positions
    r1, c1 = pos[src, 0], pos[src, 1]
    r2, c2 = pos[dst, 0], pos[dst, 1]
    hops = np.abs(r1 - r2) + np.abs(c1 - c2)
    links = link_loads(hw.rows, hw.cols, r1, c1, r2, c2, packets)
    tables = routing_tables(part)
    return Routing(placement, src, dst, packets, hops.astype(np.int64), links, tables, local, time.perf_counter() - t0)


def link_loads(rows: int, cols: int, r1, c1, r2, c2, w) -> LinkLoads:
    """Accumulate XY flows onto directed links with difference arrays (vectorized over flows).

    The same paths as route_links (X leg on the source row, Y leg on the destination column), summed in
    O(flows + links) instead of O(total hops), so million-neuron mappings stay fast; a test checks it
    against route_links hop by hop."""
    r1, c1, r2, c2 = (np.asarray(a, dtype=np.int64) for a in (r1, c1, r2, c2))
    w = np.asarray(w, dtype=np.float64)

    def horizontal(lo: np.ndarray, hi: np.ndarray, row: np.ndarray, ww: np.ndarray) -> np.ndarray:
        diff = np.zeros((rows, cols + 1))
        np.add.at(diff, (row, lo), ww)
        np.add.at(diff, (row, hi), -ww)
        return np.cumsum(diff, axis=1)[:, : cols - 1]

    def vertical(lo: np.ndarray, hi: np.ndarray, col: np.ndarray, ww: np.ndarray) -> np.ndarray:
        diff = np.zeros((rows + 1, cols))
        np.add.at(diff, (lo, col), ww)
        np.add.at(diff, (hi, col), -ww)
        return np.cumsum(diff, axis=0)[: rows - 1, :]

    e = c2 > c1
    wst = c2 < c1
    s = r2 > r1
    n = r2 < r1
    # X leg on the source row; link index c joins columns c and c+1
    east = horizontal(c1[e], c2[e], r1[e], w[e])
    west = horizontal(c2[wst], c1[wst], r1[wst], w[wst])
    # Y leg on the destination column
    south = vertical(r1[s], r2[s], c2[s], w[s])
    north = vertical(r2[n], r1[n], c2[n], w[n])
    return LinkLoads(east, west, south, north)


def routing_tables(part) -> RoutingTables:
    """Per-core routing entries: runs of neurons (same core, same layer, same destination cores)."""
    ng = part.neurons
    rc = part.core_reach()
    rc.sort_indices()
    n = ng.num_neurons
    lengths = np.diff(rc.indptr)
    core = part.neuron_core
    layer = np.repeat(np.arange(ng.num_layers), np.diff(ng.layer_start))
    has = lengths > 0
    # neuron i continues the run of neuron i-1 when core, layer and destination list all agree
    same = np.zeros(n, dtype=bool)
    if n > 1:
        same[1:] = (core[1:] == core[:-1]) & (layer[1:] == layer[:-1]) & (lengths[1:] == lengths[:-1]) & has[1:] & has[:-1]
        cand = np.flatnonzero(same)
        if cand.size:
            # compare destination lists entry by entry for the candidate rows
            ln = lengths[cand]
            starts = rc.indptr[cand]
            offs = np.arange(ln.sum()) - np.repeat(np.cumsum(ln) - ln, ln)
            pos_i = np.repeat(starts, ln) + offs
            eq = rc.indices[pos_i] == rc.indices[pos_i - np.repeat(ln, ln)]
            row_eq = np.ones(cand.size, dtype=bool)
            bad = np.repeat(np.arange(cand.size), ln)[~eq]
            row_eq[bad] = False
            same[cand] = row_eq
    keep = has & ~same
    first = np.flatnonzero(keep)
    # a run of kept neuron `first[j]` extends over following `same` neurons
    run_id = np.cumsum(keep) - 1
    valid = has
    stop_global = np.zeros(first.size, dtype=np.int64)
    if first.size:
        last_of_run = np.zeros(first.size, dtype=np.int64)
        idx = np.flatnonzero(valid)
        np.maximum.at(last_of_run, run_id[idx], idx)
        stop_global = last_of_run + 1
    lay = layer[first]
    base = ng.layer_start[lay]
    d_len = lengths[first]
    dest_indptr = np.concatenate([[0], np.cumsum(d_len)]).astype(np.int64)
    sel = np.repeat(rc.indptr[first], d_len) + (np.arange(d_len.sum()) - np.repeat(dest_indptr[:-1], d_len))
    return RoutingTables(
        core=core[first].astype(np.int64),
        layer=lay.astype(np.int64),
        start=(first - base).astype(np.int64),
        stop=(stop_global - base).astype(np.int64),
        dest_indptr=dest_indptr,
        dest=rc.indices[sel].astype(np.int64),
    )
