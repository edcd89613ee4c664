"""Pairwise-swap refinement of a placement with sparse traffic: no dense (cores x cores) matrix anywhere.

Items are the cores and the empty mesh slots (an item with no traffic), so a swap can also move a core
into a free slot. Each round evaluates the exact cost change of a set of candidate swaps per core (every
item when the mesh is small; otherwise the items within 2 hops and those around the core's ideal position,
the traffic-weighted median of its partners' positions), takes every core's best swap, best first with
each item in at most one swap, applies the batch and checks the exact cost (halving the batch until it
improves). Candidate gains are computed in blocks, and the clock is read between blocks and every few
hundred swaps picked, so a deadline holds within a round, not only between rounds.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import scipy.sparse as sp

#: All (core, item) pairs are candidates while there are at most this many of them.
ALL_PAIRS = 1 << 16
#: Candidate pairs evaluated per block (bounds memory: a block expands to pairs x mean traffic degree).
BLOCK = 1 << 14
#: Swaps picked between two readings of the clock.
PICK_CHECK = 256
LOCAL_RADIUS = 2
#: _weighted_median and CostTable sum weights into dense (items x coordinates) tables up to this many cells.
HISTOGRAM_CELLS = 1 << 22  # 4M cells: about 100 MB of temporaries at most


def pair_gains(s: sp.csr_matrix, item_slot: np.ndarray, cols: int, p: np.ndarray, q: np.ndarray,
               table: "CostTable | None" = None) -> np.ndarray:
    """Exact cost change (traffic x hops) of swapping the slots of items p[e] and q[e], for each e.

    s: symmetric traffic between items (zero diagonal). Negative: the swap helps. With f_p(j) the cost
    of item p on slot j (others held), gain = f_p(slot q) - f_p(slot p) + f_q(slot p) - f_q(slot q)
    + 2 S[p, q] hops(p, q): the traffic between p and q keeps its distance."""
    table = table or CostTable(s, item_slot, cols)
    sp_, sq_ = item_slot[p], item_slot[q]
    d_pq = np.abs(sp_ // cols - sq_ // cols) + np.abs(sp_ % cols - sq_ % cols)
    return (table.cost(p, sq_) - table.cost(p, sp_) + table.cost(q, sp_) - table.cost(q, sq_)
            + 2 * table.traffic(p, q) * d_pq)


class CostTable:
    """f_p(j) = sum_r S[p, r] hops(j, slot r) for any item p and slot j: hops are |row| + |col|
    distances, so each axis is a weighted sum of |x - x_r| over p's partners, read from prefix sums of
    their weights and weighted coordinates in coordinate order. Per axis these are a dense (items x
    coordinates) table when it has no more cells than the traffic has entries, and at most
    HISTOGRAM_CELLS (one bincount of the entries and a cumulative sum along each row; a lookup is two
    reads), otherwise the entries sorted by (item, coordinate) with global prefix sums (one sort per
    round; a lookup is a binary search). Both give the same sums up to rounding."""

    def __init__(self, s: sp.csr_matrix, item_slot: np.ndarray, cols: int) -> None:
        self.s, self.cols = s, cols
        n = s.shape[0]
        owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(s.indptr))
        partner = item_slot[s.indices]
        self.n = n
        self._tkey: np.ndarray | None = None
        self._tval: np.ndarray | None = None
        rows = int(item_slot.max()) // cols + 1 if item_slot.size else 1
        self.axes = [self._axis(owner, partner // cols, s.data, rows), self._axis(owner, partner % cols, s.data, cols)]

    def _axis(self, owner: np.ndarray, x: np.ndarray, w: np.ndarray, span: int):
        if self.n * span <= min(HISTOGRAM_CELLS, x.size):
            table = np.bincount(owner * span + x, weights=w, minlength=self.n * span).reshape(self.n, span)
            cxw = np.cumsum(table * np.arange(span), axis=1)  # a cell's entries all have coordinate x
            return span, None, np.cumsum(table, axis=1), cxw
        span = int(x.max()) + 2 if x.size else 2
        key = owner * span + x
        order = np.argsort(key, kind="stable")
        key, xs, ws = key[order], x[order], w[order]
        cw = np.concatenate([[0.0], np.cumsum(ws)])
        cxw = np.concatenate([[0.0], np.cumsum(ws * xs)])
        return span, key, cw, cxw

    def medians(self, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Per item < k, the weighted medians of its partners' rows and columns (-1 without partners),
        read from the dense tables (None when they are not dense): the first coordinate at which the
        cumulative weight reaches half the total, as _weighted_median gives for positive weights."""
        if any(key is not None for _, key, _, _ in self.axes):
            return None
        out = []
        for _, _, cw, _ in self.axes:
            cum = cw[:k]
            tot = cum[:, -1]
            m = np.argmax(cum >= (tot / 2 - 1e-12 * tot)[:, None], axis=1)
            out.append(np.where(tot > 0, m, -1))
        return out[0], out[1]

    def cost(self, item: np.ndarray, slot: np.ndarray) -> np.ndarray:
        out = np.zeros(len(item))
        for (span, key, cw, cxw), x in zip(self.axes, (slot // self.cols, slot % self.cols)):
            if key is None:  # dense: row `item` of the table, coordinates <= x
                w_le, xw_le = cw[item, x], cxw[item, x]
                w_gt, xw_gt = cw[item, -1] - w_le, cxw[item, -1] - xw_le
            else:  # entries of `item` with coordinate <= x are [lo, mid)
                lo, hi = self.s.indptr[item], self.s.indptr[item + 1]
                mid = np.searchsorted(key, item * span + np.minimum(x, span - 1), side="right")
                w_le, xw_le = cw[mid] - cw[lo], cxw[mid] - cxw[lo]
                w_gt, xw_gt = cw[hi] - cw[mid], cxw[hi] - cxw[mid]
            out += x * w_le - xw_le + xw_gt - x * w_gt
        return out

    def traffic(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """S[a, b] per pair."""
        if self._tkey is None:
            key = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(self.s.indptr)) * self.n + self.s.indices
            order = np.argsort(key, kind="stable")
            self._tkey, self._tval = key[order], self.s.data[order]
        if self._tkey.size == 0:
            return np.zeros(len(a))
        want = a * self.n + b
        at = np.minimum(np.searchsorted(self._tkey, want), self._tkey.size - 1)
        return np.where(self._tkey[at] == want, self._tval[at], 0.0)


def items_cost(coo: sp.coo_matrix, item_slot: np.ndarray, cols: int) -> float:
    """Traffic x hops of `coo` (one triangle of the symmetric traffic: the cost is twice its sum)."""
    sr, sc = item_slot[coo.row], item_slot[coo.col]
    return 2.0 * float(np.dot(coo.data, np.abs(sr // cols - sc // cols) + np.abs(sr % cols - sc % cols)))


def _weighted_median(group: np.ndarray, value: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Per group, the weighted median of its values (-1 for groups without entries): the smallest value
    at which the group's cumulative weight (values in increasing order) reaches half its total.

    Values are small non-negative integers (mesh coordinates): the weights are summed per (group, value)
    into an (n x span) table when it is small enough (one pass, no sort), else sorted by (group, value)."""
    out = np.full(n, -1, dtype=np.int64)
    if group.size == 0:
        return out
    span = int(value.max()) + 1
    if n * span <= HISTOGRAM_CELLS:
        key = group * span + value
        present = np.bincount(key, minlength=n * span).reshape(n, span) > 0  # values the group holds
        cum = np.cumsum(np.bincount(key, weights=weight, minlength=n * span).reshape(n, span), axis=1)
        tot = cum[:, -1]
        reached = (cum >= (tot / 2 - 1e-12 * tot)[:, None]) & present
        has = present.any(axis=1)
        out[has] = np.argmax(reached[has], axis=1)
        return out
    order = np.lexsort((value, group))
    g, v, w = group[order], value[order], weight[order]
    tot = np.bincount(g, weights=w, minlength=n)
    before = np.concatenate([[0.0], np.cumsum(tot)[:-1]])
    reached = np.flatnonzero(np.cumsum(w) - before[g] >= tot[g] / 2 - 1e-12 * tot[g])
    ug, first = np.unique(g[reached], return_index=True)
    out[ug] = v[reached[first]]
    return out


def _candidates(s: sp.csr_matrix, item_slot: np.ndarray, k: int, rows: int, cols: int,
                table: CostTable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(p, q) candidate swaps: p a core, q another item (see the module docstring). `table`, the
    round's cost table, gives the ideal positions when its tables are dense."""
    m = len(item_slot)
    if k * m <= ALL_PAIRS:
        p = np.repeat(np.arange(k, dtype=np.int64), m)
        q = np.tile(np.arange(m, dtype=np.int64), k)
        keep = p != q
        return p[keep], q[keep]
    slot_item = np.full(rows * cols, -1, dtype=np.int64)
    slot_item[item_slot] = np.arange(m)
    r0, c0 = item_slot[:k] // cols, item_slot[:k] % cols
    offsets = [(dr, dc) for dr in range(-LOCAL_RADIUS, LOCAL_RADIUS + 1) for dc in range(-LOCAL_RADIUS, LOCAL_RADIUS + 1)
               if 0 < abs(dr) + abs(dc) <= LOCAL_RADIUS]
    # the ideal position of each core: the weighted median of its partners' rows and columns
    medians = table.medians(k) if table is not None else None
    if medians is None:
        end = s.indptr[k]  # the entries of the first k rows, without copying them out
        e = np.repeat(np.arange(k, dtype=np.int64), np.diff(s.indptr[: k + 1]))
        partner = item_slot[s.indices[:end]]
        medians = _weighted_median(e, partner // cols, s.data[:end], k), _weighted_median(e, partner % cols, s.data[:end], k)
    mr, mc = medians
    centres = [(r0, c0, offsets)]
    has = mr >= 0
    centres.append((np.where(has, mr, r0), np.where(has, mc, c0), [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]))
    ps, qs = [], []
    for br, bc, offs in centres:
        for dr, dc in offs:
            r, c = br + dr, bc + dc
            ok = (r >= 0) & (r < rows) & (c >= 0) & (c < cols)
            q = np.where(ok, slot_item[np.clip(r, 0, rows - 1) * cols + np.clip(c, 0, cols - 1)], -1)
            sel = np.flatnonzero((q >= 0) & (q != np.arange(k)))
            ps.append(sel)
            qs.append(q[sel])
    p, q = np.concatenate(ps), np.concatenate(qs)
    # each unordered pair once, in a fixed order
    key = np.unique(np.minimum(p, q) * m + np.maximum(p, q))
    a, b = key // m, key % m
    # the core of the pair first (a < b, and b may be an empty slot or another core)
    return a, b


def refine_swaps(s: sp.csr_matrix, slots: np.ndarray, rows: int, cols: int, *, max_rounds: int, deadline: float,
                 min_gain: float = 0.0, window: int = 1, now: Callable[[], float] = time.perf_counter) -> tuple[np.ndarray, int]:
    """Swap refinement of `slots` (the mesh slot of each of the k cores; s: k x k symmetric traffic).
    Returns (slots, swaps applied). Stops when no candidate swap gains, when the last `window` rounds
    together lowered the cost by less than window x `min_gain` of it (converged; judged from the
    window-th round on: single rounds gain unevenly, a small gain is often followed by larger ones),
    after max_rounds, or at the deadline (read from `now` within rounds)."""
    k, m = s.shape[0], rows * cols
    free = np.setdiff1d(np.arange(m), slots)
    item_slot = np.concatenate([slots, free]).astype(np.int64)
    s_ext = sp.csr_matrix((s.data, s.indices, np.concatenate([s.indptr, np.full(m - k, s.indptr[-1])])), shape=(m, m))
    coo = sp.triu(s_ext, k=1, format="coo")  # the cost reads each symmetric pair once
    current = items_cost(coo, item_slot, cols)
    history = [current]  # the cost after each round
    total = 0
    expired = False
    for _ in range(max_rounds):
        if expired or now() > deadline:
            break
        table = CostTable(s_ext, item_slot, cols)
        p, q = _candidates(s_ext, item_slot, k, rows, cols, table)
        gain = np.empty(len(p))
        done = 0
        for lo in range(0, len(p), BLOCK):
            gain[lo : lo + BLOCK] = pair_gains(s_ext, item_slot, cols, p[lo : lo + BLOCK], q[lo : lo + BLOCK], table)
            done = min(len(p), lo + BLOCK)
            if done < len(p) and now() > deadline:
                expired = True  # use the gains computed so far, then stop
                break
        p, q, gain = p[:done], q[:done], gain[:done]
        pairs = _pick(p, q, gain, k, m, threshold=-1e-9 * max(1.0, current), deadline=None if expired else deadline, now=now)
        applied = 0
        # at most log2(batch) exact costs, each one pass over the traffic: not worth a clock reading
        while len(pairs):
            trial = item_slot.copy()
            trial[pairs[:, 0]], trial[pairs[:, 1]] = item_slot[pairs[:, 1]], item_slot[pairs[:, 0]]
            cost = items_cost(coo, trial, cols)
            if cost < current - 1e-9 or len(pairs) == 1:
                item_slot, current = trial, cost
                applied = len(pairs)
                break
            pairs = pairs[: len(pairs) // 2]
        total += applied
        history.append(current)
        if applied == 0 or (len(history) > window and history[-1 - window] - current < window * min_gain * history[-1 - window]):
            break
    return item_slot[:k].copy(), total


def _pick(p, q, gain, k, m, *, threshold, deadline, now) -> np.ndarray:
    """Each core's best swap, best first, every item in at most one swap (stops at the deadline)."""
    good = gain < threshold
    p, q, gain = p[good], q[good], gain[good]
    if p.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    # best partner per core: sort by (core, gain) and keep each core's first
    order = np.lexsort((q, gain, p))
    first = np.concatenate([[True], p[order][1:] != p[order][:-1]])
    best = order[first]
    best = best[np.lexsort((p[best], gain[best]))]
    used = np.zeros(m, dtype=bool)
    chosen = []
    for i, e in enumerate(best):
        if deadline is not None and i % PICK_CHECK == 0 and i and now() > deadline:
            break
        a, b = int(p[e]), int(q[e])
        if not (used[a] or used[b]):
            used[a] = used[b] = True
            chosen.append((a, b))
    return np.asarray(chosen, dtype=np.int64).reshape(-1, 2)
