"""The Alpha neuron in fixed point: the simulator's rule (FixedAlpha around the bridge's AlphaRuntime), an
independent integer implementation of docs/neurons/alpha.md written here with numpy, and the C++ kernel
(templates/kernels/alpha.h, compiled with g++) agree word for word on every spike, trace and membrane."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
import torch

from talon.backend.fpga.emitters.alpha import AlphaRule, alpha_formats, plan_alpha
from talon.backend.cpu.fixed import ROUNDING, FixedPointConfig, Format
from talon.backend.fpga import kernels
from talon.bridge.primitives.alpha import AlphaRuntime
from talon.errors import BackendError
from talon.ir.primitives.alpha import Alpha

from fpga_helpers import needs_gxx

T, N = 80, 12
MODES = ("subtract", "zero", "none")


def _node(mode: str) -> Alpha:
    g = np.random.default_rng(1)
    alpha = (g.random(N) * 0.2 + 0.75).astype(np.float32)
    return Alpha(tau_exc=1.0 / (1.0 - alpha.astype(np.float64)), tau_inh=np.float32(2.0), v_threshold=(g.random(N) * 0.5 + 0.4).astype(np.float32),
                 reset_mode=mode)


def _inputs(fin: Format, seed: int = 0) -> np.ndarray:
    """Integer inputs (T, N) in `fin`, in about [-0.4, 1.2], so that the neurons fire and reset often."""
    g = np.random.default_rng(seed)
    return np.rint((g.random((T, N)) * 1.6 - 0.4) * 2.0 ** fin.frac).astype(np.int64)


def _plan(mode: str, fin: Format, node: Alpha | None = None):
    """Formats as a calibration with max|U| = 2 and max|E| = 4 gives them, then the plan."""
    node = _node(mode) if node is None else node
    config = FixedPointConfig()
    return plan_alpha("a", node, [fin], alpha_formats("a", node, config, u_max=2.0, e_max=4.0), 1.0, config)


def simulate(plan, on_grid: Alpha, X: np.ndarray, fin: Format) -> dict[str, np.ndarray]:
    """The rule's step around AlphaRuntime (on the on-grid node, in float64), converted back to integers."""
    rt, rule = AlphaRuntime(on_grid, 1.0).double(), AlphaRule()
    x = torch.from_numpy(np.ldexp(X.astype(np.float64), -fin.frac))
    state = rt.init_state([x[0:1]])
    out = {k: [] for k in ("spk", "e", "n", "u")}
    with torch.no_grad():
        for t in range(T):
            s, state = rule.step(rt, [x[t:t + 1]], state, plan, ROUNDING)
            for k, v, f in (("spk", s, plan.out_format.frac), ("e", state[0], plan.current.frac), ("n", state[1], plan.current.frac),
                            ("u", state[2], plan.membrane.frac)):
                w = np.ldexp(v.numpy()[0], f)
                assert np.array_equal(w, np.rint(w)), k  # on the grid
                out[k].append(w.astype(np.int64))
    return {k: np.stack(v) for k, v in out.items()}


def _rhu(x, s):
    return (x + (1 << (s - 1))) >> s


def _ceil(x, s):
    return -((-x) >> s) if s > 0 else x << -s


def _sat(x, b):
    return np.clip(x, -(1 << (b - 1)), (1 << (b - 1)) - 1)


def reference(plan, X: np.ndarray, fin: Format, c: int) -> dict[str, np.ndarray]:
    """The integer specification, from the plan's integers only."""
    ints, mode = plan.ints, plan.attrs["reset_mode"]
    ib, fi = plan.current.bits, plan.current.frac
    mb, fv = plan.membrane.bits, plan.membrane.frac
    A, B, Tq = (np.broadcast_to(ints[k], (N,)).astype(np.int64) for k in ("alpha", "beta", "tau_alpha"))
    th, the = (np.broadcast_to(ints[k], (N,)).astype(np.int64) for k in ("v_threshold", "v_threshold_trace"))
    gs = int(ints["graded_spikes_factor"][0])
    Fm = max(fi, fin.frac)
    Fw = max(c + fi, fv)
    E, Nn, U = (np.zeros(N, np.int64) for _ in range(3))
    out = {k: [] for k in ("spk", "e", "n", "u")}
    for t in range(T):
        X_c = X[t] << (Fm - fin.frac + c)
        R = (U > th).astype(np.int64) if mode != "none" else np.zeros(N, np.int64)
        Eb = _sat(_rhu((A * E << (Fm - fi)) + X_c, c + Fm - fi), ib)
        Nb = _sat(_rhu((B * Nn << (Fm - fi)) - X_c, c + Fm - fi), ib)
        W = Tq * (Eb + Nb) << (Fw - c - fi)
        En, Nx = Eb.copy(), Nb.copy()
        if mode == "subtract":
            W = W + R * (Nn << (Fw - fi))
            En = np.where(R == 1, _sat(Eb - the, ib), Eb)
            Nx = np.where(R == 1, 0, Nb)
        elif mode == "zero":
            W, En, Nx = np.where(R == 1, 0, W), np.where(R == 1, 0, Eb), np.where(R == 1, 0, Nb)
        S = (W > (th << (Fw - fv))).astype(np.int64)
        U = _sat(_ceil(W, Fw - fv), mb)
        E, Nn = En, Nx
        for k, v in (("spk", S * gs), ("e", E), ("n", Nn), ("u", U)):
            out[k].append(v.copy())
    return {k: np.stack(v) for k, v in out.items()}


HARNESS = r"""
#include <stdio.h>
#include <stdint.h>
#include "talon_fixed.h"
#include "alpha.h"
static const int64_t alpha_[%(N)d] = {%(A)s};
static const int64_t beta_[%(N)d] = {%(B)s};
static const int64_t talpha_[%(N)d] = {%(TA)s};
static const int64_t thr_[%(N)d] = {%(TH)s};
static const int64_t thre_[%(N)d] = {%(THE)s};
int main() {
    static int64_t e[%(N)d], nn[%(N)d], u[%(N)d], isum[%(N)d], out[%(N)d], mem[%(N)d];
    for (int t = 0; t < %(T)d; ++t) {
        for (int k = 0; k < %(N)d; ++k) { long long v; if (scanf("%%lld", &v) != 1) return 2; isum[k] = talon::up(v, %(SHIN)d); }
        k_alpha<%(N)d, %(MODE)d, %(IB)d, %(MB)d, %(SHA)d, %(C)d, %(SHR)d, %(SHW)d, %(SHN)d, %(SHT)d, 1>(
            isum, e, nn, u, alpha_, beta_, talpha_, thr_, thre_, (int64_t)%(GS)d, out, mem);
        for (int k = 0; k < %(N)d; ++k) printf("%%lld %%lld %%lld %%lld\n", (long long)out[k], (long long)e[k], (long long)nn[k], (long long)mem[k]);
    }
    return 0;
}
"""


def csim(plan, X: np.ndarray, fin: Format, c: int, tmp_path) -> dict[str, np.ndarray]:
    """The kernel itself, compiled with g++ and driven by the same integer inputs."""
    ints, fi, fv = plan.ints, plan.current.frac, plan.membrane.frac
    Fm, Fw = max(fi, fin.frac), max(c + fi, plan.membrane.frac)
    arr = lambda k: ", ".join(str(int(v)) for v in np.broadcast_to(ints[k], (N,)))  # noqa: E731
    src = HARNESS % dict(N=N, T=T, A=arr("alpha"), B=arr("beta"), TA=arr("tau_alpha"), TH=arr("v_threshold"), THE=arr("v_threshold_trace"),
                         SHIN=Fm - fin.frac, MODE={"none": 0, "subtract": 1, "zero": 2}[plan.attrs["reset_mode"]], IB=plan.current.bits,
                         MB=plan.membrane.bits, SHA=Fm - fi, C=c, SHR=c + Fm - fi, SHW=Fw - c - fi, SHN=Fw - fi, SHT=Fw - fv,
                         GS=int(ints["graded_spikes_factor"][0]))
    (tmp_path / "talon_fixed.h").write_text(kernels.fixed_header(0))
    (tmp_path / "alpha.h").write_text(kernels.kernel_header("alpha", kernels.builtin_kernel("alpha")).replace('"../talon_fixed.h"', '"talon_fixed.h"'))
    (tmp_path / "main.cpp").write_text(src)
    exe = tmp_path / "alpha_tb"
    subprocess.run(["g++", "-std=c++14", "-O1", "-w", f"-I{tmp_path}", str(tmp_path / "main.cpp"), "-o", str(exe)], check=True)
    stdin = "\n".join(" ".join(str(int(v)) for v in row) for row in X)
    res = subprocess.run([str(exe)], input=stdin, capture_output=True, text=True, check=True)
    words = np.array(res.stdout.split(), dtype=np.int64).reshape(T, N, 4)
    return {k: words[:, :, j] for j, k in enumerate(("spk", "e", "n", "u"))}


@pytest.mark.parametrize("fin", [Format(24, 18), Format(24, 22), Format(8, 5)], ids=["input-at-trace-grid", "finer-input", "coarse-input"])
@pytest.mark.parametrize("mode", MODES)
def test_simulator_rule_equals_the_integer_specification(mode, fin):
    plan, on_grid = _plan(mode, fin)
    X = _inputs(fin)
    sim, ref = simulate(plan, on_grid, X, fin), reference(plan, X, fin, FixedPointConfig().coefficient_frac_bits)
    for k in ("spk", "e", "n", "u"):
        assert np.array_equal(sim[k], ref[k]), (mode, k, np.argwhere(sim[k] != ref[k])[:3])
    assert 0 < sim["spk"].sum() < T * N


@needs_gxx
@pytest.mark.parametrize("mode", MODES)
def test_kernel_is_bit_exact_with_the_rule_by_c_simulation(mode, tmp_path):
    fin = Format(24, 22)
    plan, on_grid = _plan(mode, fin)
    X = _inputs(fin, seed=4)
    words, sim = csim(plan, X, fin, FixedPointConfig().coefficient_frac_bits, tmp_path), simulate(plan, on_grid, X, fin)
    for k in ("spk", "e", "n", "u"):
        assert np.array_equal(words[k], sim[k]), (mode, k)
    assert sim["spk"].sum() > 0


def test_fixed_point_spikes_follow_the_float_neuron():
    """Quantisation changes the neuron little: at 24-bit states nearly every spike of the float run remains."""
    fin = Format(24, 20)
    node = _node("subtract")
    plan, on_grid = _plan("subtract", fin, node)
    X = _inputs(fin, seed=9)
    fixed = simulate(plan, on_grid, X, fin)["spk"]
    rt, x = AlphaRuntime(node, 1.0).double(), torch.from_numpy(np.ldexp(X.astype(np.float64), -fin.frac))
    state, spikes = rt.init_state([x[0:1]]), []
    with torch.no_grad():
        for t in range(T):
            s, state = rt.step([x[t:t + 1]], state)
            spikes.append(s.numpy()[0])
    assert np.mean(np.stack(spikes) == fixed) > 0.97


def test_plan_refuses_what_it_cannot_hold_exactly():
    fin = Format(24, 20)
    close = Alpha(tau_exc=np.float64(1 / (1 - 0.90001)), tau_inh=np.float64(1 / (1 - 0.9)), v_threshold=np.float32(1.0))
    with pytest.raises(BackendError, match="'a' \\(Alpha\\).*(tau_alpha reaches|not 1 >= alpha > beta)"):
        _plan("zero", fin, close)
    graded = Alpha(tau_exc=np.float32(10.0), tau_inh=np.float32(2.0), v_threshold=np.float32(1.0), graded_spikes_factor=0.1)
    with pytest.raises(BackendError, match="graded_spikes_factor"):
        _plan("zero", fin, graded)
