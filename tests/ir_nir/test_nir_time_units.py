"""NIR files whose time constants are in another unit than snnTorch's, written with the `nir` package the way
the other tools write them, and the dt TALON tells the user to pass.

* Norse 1.1 (norse/torch/utils/export_nir.py at v1.1.0): LIFBoxCell -> nir.LIF(tau=dt/tau_mem_inv, r=1,
  v_leak, v_threshold) with dt = 1e-3; Norse steps v += dt*tau_mem_inv*(I + v_leak - v), fires on v > v_th
  and resets to v_reset (0). Exact in TALON only with dt = 1e-6.
* sinabs (sinabs/nir.py): IAF -> nir.IF(r=1, v_threshold), LIF -> nir.LIF(tau=tau_mem in steps, r=1,
  v_leak=0). In steps: dt = 1.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

from talon.ir.nir import NIRConversionWarning, from_nir, read_nir  # noqa: E402
from talon.ir.nir_units import advise_dt  # noqa: E402

from . import _reference as ref  # noqa: E402
from .test_nir_numerics import run_talon  # noqa: E402

T, B, N_IN, N = 200, 4, 6, 8
NORSE_DT = 1e-3


def _graph(*pairs, n_in=N_IN, n_out=N):
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])})}
    nodes.update(pairs)
    nodes["output"] = nir.Output(output_type={"output": np.array([n_out])})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])))


def _norse_11_file(path, g):
    """Linear -> LIFBoxCell, exported as Norse 1.1 does (numpy instead of its torch tensors)."""
    w = g.uniform(-0.2, 1.0, (N, N_IN)).astype(np.float32)
    b = np.zeros(N, np.float32)
    tau_mem_inv = g.uniform(50.0, 200.0, N).astype(np.float32)  # Norse's default is 100 (tau_mem 10 ms)
    v_th = np.ones(N, np.float32)
    lif = nir.LIF(tau=(NORSE_DT / tau_mem_inv).astype(np.float32), r=np.ones(N, np.float32), v_leak=np.zeros(N, np.float32),
                  v_threshold=v_th)
    nir.write(str(path), _graph(("0", nir.Affine(weight=w, bias=b)), ("1", lif)))
    return w, b, tau_mem_inv, v_th


def _norse_lif_box(w, b, tau_mem_inv, v_th, xs):
    """Norse 1.1's lif_box_feed_forward_step (dt = 1e-3, v_leak = v_reset = 0), float64, after its Linear."""
    v = np.zeros((xs.shape[1], N))
    out = []
    for x in xs.astype(np.float64):
        i = x @ w.T.astype(np.float64) + b
        v = v + NORSE_DT * tau_mem_inv.astype(np.float64) * (i - v)
        z = (v - v_th > 0).astype(np.float64)
        v = (1 - z) * v
        out.append(z)
    return np.stack(out)


def test_norse_11_file_names_dt_1e6_and_is_exact_with_it(tmp_path):
    g = np.random.default_rng(0)
    w, b, tau_mem_inv, v_th = _norse_11_file(tmp_path / "norse.nir", g)
    xs = g.uniform(0.0, 1.5, (T, B, N_IN)).astype(np.float32)
    want = _norse_lif_box(w, b, tau_mem_inv, v_th, xs)
    assert 0.05 < want.mean() < 0.95

    with pytest.warns(NIRConversionWarning, match=r"Norse 1\.1.*pass dt=1e-06") as rec:
        read_nir(tmp_path / "norse.nir")
    assert not any("e.g. dt=1e-3" in str(r.message) for r in rec)  # the old advice is gone

    exact = read_nir(tmp_path / "norse.nir", dt=1e-6)
    np.testing.assert_array_equal(run_talon(exact, xs), want)

    # the advice docs and the CLI used to give (1e-3): wrong spikes, and the warning says which dt is right
    with pytest.warns(NIRConversionWarning, match=r"oscillates; its time constants .* pass dt=1e-06"):
        old = read_nir(tmp_path / "norse.nir", dt=1e-3)
    assert (run_talon(old, xs) != want).mean() > 0.1


def _sinabs_file(path, g):
    """Linear -> IAF -> Linear -> LIF(tau_mem=20 steps), exported as sinabs does (IF without v_reset: nir's 0)."""
    w1 = g.uniform(0.0, 0.6, (N, N_IN)).astype(np.float32)
    w2 = g.uniform(0.0, 0.6, (3, N)).astype(np.float32)
    thr = np.ones(N, np.float32)
    tau = np.full(3, 20.0, np.float32)
    nodes = (("0", nir.Affine(weight=w1, bias=np.zeros(N, np.float32))), ("1", nir.IF(r=np.ones(N, np.float32), v_threshold=thr)),
             ("2", nir.Affine(weight=w2, bias=np.zeros(3, np.float32))),
             ("3", nir.LIF(tau=tau, v_threshold=np.full(3, 0.5, np.float32), v_leak=np.zeros(3, np.float32), r=np.ones(3, np.float32))))
    nir.write(str(path), _graph(*nodes, n_out=3))
    return w1, w2, thr, tau


def test_sinabs_file_names_dt_1_and_spikes_in_steps(tmp_path):
    g = np.random.default_rng(1)
    w1, w2, thr, tau = _sinabs_file(tmp_path / "sinabs.nir", g)
    xs = (g.random((60, B, N_IN)) < 0.5).astype(np.float32)  # spike trains, sinabs' usual input

    with pytest.warns(NIRConversionWarning, match=r"in steps, as sinabs writes them.*pass dt=1\b"):
        default = read_nir(tmp_path / "sinabs.nir")
    assert default.dt == 1e-4 and not run_talon(default, xs).any()  # what users met: no spike at all

    graph = read_nir(tmp_path / "sinabs.nir", dt=1.0)
    # NIR's equations in step units (IF: v += r*I; LIF: forward Euler with dt = 1)
    iaf = ref.IF(r=np.ones(N), v_threshold=thr, v_reset=np.zeros(N), dt=1.0)
    lif = ref.LIF(tau=tau, r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.full(3, 0.5), v_reset=np.zeros(3), dt=1.0)
    want = np.stack([lif(iaf(x.astype(np.float64) @ w1.T) @ w2.T) for x in xs])
    assert want.sum() > 0
    np.testing.assert_array_equal(run_talon(graph, xs), want)


def test_advice_reads_what_the_file_says():
    lif = lambda tau, r: nir.LIF(tau=np.asarray(tau, np.float32), r=np.asarray(r, np.float32), v_leak=np.zeros(2, np.float32),  # noqa: E731
                                 v_threshold=np.ones(2, np.float32))
    one = lambda node, **md: nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2])}), "n": node,  # noqa: E731
                                                 "output": nir.Output(output_type={"output": np.array([2])})},
                                          edges=[("input", "n"), ("n", "output")], metadata=md)
    snntorch_tau = np.array([1e-3, 1e-2])
    assert advise_dt(one(lif(snntorch_tau, snntorch_tau / 1e-4))) is None  # snnTorch: the default 1e-4 is right
    assert advise_dt(one(lif([1e-5, 2e-5], [1, 1]))).dt == 1e-6  # Norse 1.1's range
    assert advise_dt(one(lif([10, 20], [1, 1]))).dt == 1.0  # steps
    assert advise_dt(one(nir.IF(r=np.ones(2), v_threshold=np.ones(2)))).dt == 1.0  # unit gain per step
    assert advise_dt(one(lif([1e-2, 2e-2], [1, 1]))) is None  # seconds: which step? the file does not say
    assert advise_dt(one(lif([1e-2, 2e-2], [1, 1]), source="norse 1.2.0")).dt == 1e-3  # ... unless it names Norse
    assert advise_dt(one(lif([1e-3, 2e-3], [1, 1]), producer="Norse v1.1.0")).dt == 1e-6
    assert advise_dt(one(lif([0.5, 2.0], [3, 1]))) is None  # mixed gains: nothing to say
    # a file TALON wrote records its dt: no guessing
    from talon.ir import Graph, to_nir
    import talon.ir as ir

    g = Graph({"input": ir.Input(shape=(2,)), "lif": ir.LIF(tau=np.full(2, 20.0), r=np.ones(2), v_leak=np.zeros(2),
                                                            v_threshold=np.ones(2)), "output": ir.Output()},
              [("input", "lif"), ("lif", "output")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert from_nir(to_nir(g)) == g


def test_talon_convert_says_which_dt_to_give(tmp_path):
    from click.testing import CliRunner

    from talon.cli import cli

    _norse_11_file(tmp_path / "norse.nir", np.random.default_rng(0))
    res = CliRunner().invoke(cli, ["convert", str(tmp_path / "norse.nir"), "-o", str(tmp_path / "n.t1c")], catch_exceptions=False)
    assert res.exit_code == 0 and "give --dt 1e-06" in res.stderr and "pass dt=" not in res.stderr
    res = CliRunner().invoke(cli, ["analyze", str(tmp_path / "norse.nir")], catch_exceptions=False)
    assert res.exit_code == 0 and "talon convert MODEL.nir -o MODEL.t1c --dt 1e-06" in res.stderr
    res = CliRunner().invoke(cli, ["convert", str(tmp_path / "norse.nir"), "-o", str(tmp_path / "n.t1c"), "--dt", "1e-6"],
                             catch_exceptions=False)
    assert res.exit_code == 0 and "warning" not in res.stderr
