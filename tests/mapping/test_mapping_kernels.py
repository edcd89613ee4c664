"""The vectorised kernels under large-graph mapping give exactly what the plain formulation gives:
a region's rows and pull (recursive bisection), weighted medians (swap candidates), core traffic."""

from contextlib import contextmanager

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from talon.mapping import _swaps, assignment
from talon.mapping._spectral import symmetric_traffic
from talon.mapping.assignment import core_reach, core_traffic, region_pull


@contextmanager
def _setting(module, name, value):
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def _symmetric(n: int, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    e = 4 * n
    rows, cols = rng.integers(0, n, e), rng.integers(0, n, e)
    return symmetric_traffic(sp.csr_matrix((rng.random(e), (rows, cols)), shape=(n, n)))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 120), seed=st.integers(0, 1000), frac=st.floats(0.01, 1.0), sort=st.booleans(), small=st.sampled_from([0, 256]))
def test_region_pull_is_scipys_indexing_entry_for_entry(n, seed, frac, sort, small):
    s = _symmetric(n, seed)
    rng = np.random.default_rng(seed + 1)
    units = rng.choice(n, max(1, int(frac * n)), replace=False)
    if sort:
        units = np.sort(units)
    position, split = rng.random(n) * 8, 3.5
    inside = np.zeros(n, dtype=bool)
    inside[units] = True
    rows = s[units]
    want_pull, want_sub = rows @ np.where(inside, 0.0, position - split), rows[:, units]
    local = np.full(n, -1, dtype=np.int64)
    with _setting(assignment, "SMALL_REGION", small):  # 0: every region takes scipy's path
        pull, sub = region_pull(s, units, position, split, local)
    assert np.all(local == -1)  # the scratch comes back as it went in
    assert pull.dtype == want_pull.dtype and np.array_equal(pull, want_pull)  # bit for bit: the same sums
    assert np.array_equal(sub.indptr, want_sub.indptr) and np.array_equal(sub.indices, want_sub.indices)
    assert np.array_equal(sub.data, want_sub.data) and sub.shape == want_sub.shape


def _median_by_sorting(group, value, weight, n):
    out = np.full(n, -1, dtype=np.int64)
    for g in range(n):
        sel = group == g
        if not sel.any():
            continue
        order = np.argsort(value[sel], kind="stable")
        v, w = value[sel][order], weight[sel][order]
        reached = np.flatnonzero(np.cumsum(w) >= w.sum() / 2 - 1e-12 * w.sum())
        out[g] = v[reached[0]]
    return out


@settings(max_examples=80, deadline=None)
@given(n=st.integers(1, 30), span=st.integers(1, 20), e=st.integers(0, 200), seed=st.integers(0, 1000), cells=st.sampled_from([0, 1 << 24]))
def test_weighted_median_by_table_and_by_sorting_agree(n, span, e, seed, cells):
    rng = np.random.default_rng(seed)
    group, value = rng.integers(0, n, e), rng.integers(0, span, e)
    weight = rng.choice([0.0, 0.5, 1.0, 2.0, 3.0], e)  # ties, and zero weights (a group may weigh nothing)
    with _setting(_swaps, "HISTOGRAM_CELLS", cells):  # 0: always by sorting
        got = _swaps._weighted_median(group, value, weight, n)
    assert np.array_equal(got, _median_by_sorting(group, value, weight, n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_core_traffic_is_the_sum_of_rates_per_core_pair(seed):
    rng = np.random.default_rng(seed)
    n, units, cores = 300, 40, 7
    reach = sp.csr_matrix((np.ones(1500, dtype=bool), (rng.integers(0, n, 1500), rng.integers(0, units, 1500))), shape=(n, units))
    unit_core = rng.integers(0, cores, units)
    neuron_core = rng.integers(0, cores, n)
    rates = rng.random(n)
    rc = core_reach(reach, unit_core, cores)
    want = np.zeros((cores, cores))
    dense = rc.toarray()
    for i in range(n):
        want[neuron_core[i]] += rates[i] * dense[i]
    t = core_traffic(rc, neuron_core, rates, cores)
    assert t.has_canonical_format and t.dtype == np.float64 and t.shape == (cores, cores)
    assert np.allclose(t.toarray(), want, rtol=1e-14, atol=0)
    assert np.array_equal(t.toarray() != 0, want != 0)  # the same pairs: no entry dropped or added
