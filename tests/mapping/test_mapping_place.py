"""place(): valid permutations, never worse than row-major, the swap-gain formula, refinement."""

import importlib

import numpy as np
import pytest
import scipy.sparse as sp

from talon.errors import MappingError
from talon.mapping import NeuronGraph, Partition, partition, place
from talon.mapping.synthetic import layered_small_world

from mapping_helpers import hw_small

place_mod = importlib.import_module("talon.mapping.place")
swaps_mod = importlib.import_module("talon.mapping._swaps")


def chain_partition(k: int, hw) -> Partition:
    """k cores in a chain: core i sends to core i+1 (one neuron per core)."""
    adj = sp.csr_matrix((np.ones(k - 1), (np.arange(k - 1), np.arange(1, k))), shape=(k, k))
    ng = NeuronGraph.from_csr(adj, layer_sizes=[1] * k, group_size=1)
    return Partition(ng, np.arange(k), k, hw, "manual")


def test_chain_is_laid_out_without_long_jumps():
    hw = hw_small(mesh=(2, 4), neurons_per_core=1)
    part = chain_partition(8, hw)
    naive = place(part, hw, method="row-major")
    assert naive.cost() == 6 * 1 + 4  # core 3 (0, 3) -> core 4 (1, 0) is 4 hops
    best = place(part, hw)
    assert best.cost() == 7  # a snake: every link one hop
    assert sorted(best.slots.tolist()) == list(range(8))


@pytest.mark.parametrize("algorithm", ["greedy", "metis", "spectral"])
def test_placement_is_a_valid_injection_and_beats_row_major(algorithm):
    ng = layered_small_world(4, 32, 32, group_size=16, seed=3, long_range=0.1)
    hw = hw_small(mesh=(5, 5), neurons_per_core=256, weight_memory_bytes_per_core=1 << 16)
    part = partition(ng, hw, algorithm)
    pl = place(part, hw)
    assert len(np.unique(pl.slots)) == part.num_cores
    assert pl.slots.min() >= 0 and pl.slots.max() < hw.num_cores
    assert pl.positions.shape == (part.num_cores, 2)
    naive = place(part, hw, method="row-major")
    assert pl.cost() <= naive.cost()
    assert pl.cost() <= pl.initial_cost + 1e-9


def test_heuristic_beats_naive_baseline_by_a_margin():
    # 6 sheets of 576 neurons on 256-neuron cores: row-major order puts consecutive sheets far apart
    ng = layered_small_world(6, 24, 24, group_size=16, seed=1, long_range=0.05)
    hw = hw_small(mesh=(4, 4), neurons_per_core=256, weight_memory_bytes_per_core=1 << 16)
    greedy = partition(ng, hw, "greedy")
    naive = place(greedy, hw, method="row-major").cost()
    assert place(greedy, hw).cost() < 0.8 * naive  # same partition, better placement
    assert place(partition(ng, hw, "metis"), hw).cost() < 0.7 * naive


def test_swap_gains_match_brute_force():
    rng = np.random.default_rng(0)
    n, rows, cols = 9, 3, 4  # 9 items on 12 slots
    dense = np.triu(rng.random((n, n)) * (rng.random((n, n)) < 0.5), 1)
    s = sp.csr_matrix(dense + dense.T)
    slots = rng.permutation(rows * cols)[:n]
    cost = lambda sl: place_mod.traffic_hops(s, sl, cols) / 2  # noqa: E731
    base = cost(slots)
    p, q = np.divmod(np.arange(n * n), n)
    gain = swaps_mod.pair_gains(s, slots, cols, p, q)
    for e in range(n * n):
        swapped = slots.copy()
        swapped[p[e]], swapped[q[e]] = slots[q[e]], slots[p[e]]
        assert np.isclose(gain[e], cost(swapped) - base), (p[e], q[e])


class CountingClock:
    """A deterministic clock: every reading advances it by one second."""

    def __init__(self) -> None:
        self.t = 0.0
        self.readings: list[float] = []

    def __call__(self) -> float:
        self.t += 1.0
        self.readings.append(self.t)
        return self.t


def _big_partition():
    # 64 cores on a 40x40 mesh: past ALL_PAIRS, so candidates are local and the round is cut in blocks
    ng = layered_small_world(4, 16, 16, group_size=16, seed=2, long_range=0.5)
    hw = hw_small(mesh=(40, 40), neurons_per_core=16, weight_memory_bytes_per_core=1 << 16)
    return partition(ng, hw, "greedy"), hw


def test_the_deadline_holds_within_a_round(monkeypatch):
    part, hw = _big_partition()
    s = place_mod.symmetric_traffic(part.core_traffic())
    start = np.random.default_rng(0).permutation(hw.num_cores)[: part.num_cores]  # a poor start: much to gain
    monkeypatch.setattr(swaps_mod, "BLOCK", 16)  # many blocks per round
    for limit in (1.5, 2.5, 4.5):
        clock = CountingClock()
        monkeypatch.setattr(place_mod, "_now", clock)
        slots, _ = place_mod._refine(s, start.copy(), hw, max_rounds=1000, deadline=limit)
        # the refinement reads the clock at least once per block and stops at the first reading past the deadline
        assert clock.readings[-1] == np.floor(limit) + 1, (limit, clock.readings)
        assert len(np.unique(slots)) == part.num_cores
        assert place_mod.traffic_hops(s, slots, hw.cols) <= place_mod.traffic_hops(s, start, hw.cols)
    # with time to spare, the same refinement goes much further (rounds of many blocks)
    clock = CountingClock()
    monkeypatch.setattr(place_mod, "_now", clock)
    far, swaps = place_mod._refine(s, start.copy(), hw, max_rounds=1000, deadline=1e9)
    assert swaps > 0 and len(clock.readings) > 10
    assert place_mod.traffic_hops(s, far, hw.cols) < place_mod.traffic_hops(s, start, hw.cols)


def test_place_time_limit_is_read_from_the_clock(monkeypatch):
    part, hw = _big_partition()
    clock = CountingClock()
    monkeypatch.setattr(place_mod, "_now", clock)
    pl = place(part, hw, time_limit=3.0)
    # one reading at the start, at most one past the deadline, one for the elapsed time
    past = [t for t in clock.readings if t > 1.0 + 3.0]
    assert len(past) <= 2 and pl.seconds <= 3.0 + 2.0
    assert len(np.unique(pl.slots)) == part.num_cores


def test_refinement_moves_cores_into_empty_slots():
    hw = hw_small(mesh=(3, 3), neurons_per_core=1)
    part = chain_partition(2, hw)
    slots, _ = place_mod._refine(place_mod.symmetric_traffic(part.core_traffic()), np.array([0, 8]), hw, max_rounds=10, deadline=1e18)
    r, c = np.divmod(slots, 3)
    assert abs(r[0] - r[1]) + abs(c[0] - c[1]) == 1


def test_bad_method_and_too_many_cores():
    hw = hw_small(mesh=(2, 2), neurons_per_core=1)
    part = chain_partition(3, hw)
    with pytest.raises(MappingError, match="placement method"):
        place(part, hw, method="random")
    with pytest.raises(MappingError, match="does not fit"):
        place(chain_partition(5, hw_small(mesh=(3, 3), neurons_per_core=1)), hw)


@pytest.mark.parametrize("beside_hint", [0, 1 << 20])
def test_large_partitions_with_slots_skip_the_spectral_candidate(beside_hint, monkeypatch):
    """Beside the partitioner's slots the spectral bisection is tried only up to SPECTRAL_BESIDE_HINT
    cores; without slots (greedy) it is always tried; either way the start is never worse than row-major."""
    ng = layered_small_world(4, 32, 32, group_size=16, seed=3, long_range=0.1)
    hw = hw_small(mesh=(5, 5), neurons_per_core=256, weight_memory_bytes_per_core=1 << 16)
    monkeypatch.setattr(place_mod, "SPECTRAL_BESIDE_HINT", beside_hint)
    calls = []
    real = place_mod._bisection
    monkeypatch.setattr(place_mod, "_bisection", lambda *a: calls.append(1) or real(*a))
    hinted = partition(ng, hw, "metis")
    calls.clear()
    hinted._cache.clear()
    slots, best, cost = place_mod.initial_placement(hinted, hw)
    assert hinted.slots is not None and len(calls) == (1 if beside_hint else 0)
    assert best in ("bisection", "row-major", "snake", "spectral") and cost <= place(hinted, hw, method="row-major").initial_cost
    greedy = partition(ng, hw, "greedy")
    calls.clear()
    place_mod.initial_placement(greedy, hw)
    assert len(calls) == 1


def _rounds(monkeypatch) -> list[int]:
    """Counts the swap rounds (one candidate list per round)."""
    calls: list[int] = []
    real = swaps_mod._candidates
    monkeypatch.setattr(swaps_mod, "_candidates", lambda *a: calls.append(1) or real(*a))
    return calls


def test_refinement_stops_when_its_rounds_stop_gaining(monkeypatch):
    part, hw = _big_partition()
    s = place_mod.symmetric_traffic(part.core_traffic())
    start = np.random.default_rng(0).permutation(hw.num_cores)[: part.num_cores]
    calls = _rounds(monkeypatch)
    full, _ = swaps_mod.refine_swaps(s, start.copy(), hw.rows, hw.cols, max_rounds=1000, deadline=1e18, min_gain=0.0)
    to_the_end = len(calls)
    assert to_the_end > 6
    # no window of 3 rounds gains 100 %: it stops after exactly 3 rounds, having applied them
    calls.clear()
    three, _ = swaps_mod.refine_swaps(s, start.copy(), hw.rows, hw.cols, max_rounds=1000, deadline=1e18, min_gain=1.0, window=3)
    assert len(calls) == 3
    cost = lambda sl: place_mod.traffic_hops(s, sl, hw.cols)  # noqa: E731
    assert cost(full) <= cost(three) < cost(start)
    # a threshold that the last rounds miss: it stops before the end
    calls.clear()
    swaps_mod.refine_swaps(s, start.copy(), hw.rows, hw.cols, max_rounds=1000, deadline=1e18, min_gain=0.01, window=2)
    assert 2 <= len(calls) < to_the_end


def test_converged_refinement_does_not_depend_on_the_clock(monkeypatch):
    """Converging before the time limit, a placement is the same whatever the clock reads."""
    part, hw = _big_partition()
    got = []
    for clock in (CountingClock(), place_mod._now):
        monkeypatch.setattr(place_mod, "_now", clock)
        got.append(place(part, hw, time_limit=1e6).slots)
    assert np.array_equal(got[0], got[1])


@pytest.mark.parametrize("cells", [0, 1 << 22])
def test_swap_gains_from_dense_and_sorted_cost_tables_match_brute_force(cells, monkeypatch):
    """The per-item cost table is a dense (items x coordinates) table when it is no larger than the
    traffic, else sorted entries (HISTOGRAM_CELLS=0 forces the sort): both give the exact gains."""
    monkeypatch.setattr(swaps_mod, "HISTOGRAM_CELLS", cells)
    rng = np.random.default_rng(1)
    n, rows, cols = 12, 4, 4
    dense = np.triu(rng.random((n, n)) * (rng.random((n, n)) < 0.9), 1)  # many entries: the table is dense
    s = sp.csr_matrix(dense + dense.T)
    slots = rng.permutation(rows * cols)[:n]
    assert (n * rows <= s.nnz) and (swaps_mod.CostTable(s, slots, cols).axes[0][1] is None) == (cells > 0)
    base = place_mod.traffic_hops(s, slots, cols) / 2
    p, q = np.divmod(np.arange(n * n), n)
    gain = swaps_mod.pair_gains(s, slots, cols, p, q)
    for e in range(n * n):
        swapped = slots.copy()
        swapped[p[e]], swapped[q[e]] = slots[q[e]], slots[p[e]]
        assert np.isclose(gain[e], place_mod.traffic_hops(s, swapped, cols) / 2 - base), (p[e], q[e])
    # a dense table also gives the weighted medians of the partners' rows and columns (swap candidates)
    medians = swaps_mod.CostTable(s, slots, cols).medians(n - 2)
    if cells:
        owner = np.repeat(np.arange(n), np.diff(s.indptr))
        partner = slots[s.indices]
        for got, coordinate in zip(medians, (partner // cols, partner % cols)):
            want = swaps_mod._weighted_median(owner, coordinate, s.data, n)[: n - 2]
            assert np.array_equal(got, want)
    else:
        assert medians is None
