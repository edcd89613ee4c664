"""The ALIF neuron (Lava-DL's adaptive-threshold LIF) end to end: IR, runtime, export, fixed point, C++ kernel.

References are written from Lava-DL's equations in alif_reference.py (not from TALON's code)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from talon import ir
from talon.backend.fpga.emitters.neurons import fixed_step, plan_alif, state_format
from talon.backend.cpu.fixed import FixedPointConfig, Format, round_half_up
from talon.bridge.modules import ALIF, ALIFRuntime
from talon.errors import BackendError, PrimitiveError, TalonUsageError
from talon.ir.primitives.neurons import ALIF as ALIFNode

from alif_reference import alif_float32, alif_lava_int

PARAMS = dict(threshold=1.0, threshold_step=0.5, current_decay=0.25, voltage_decay=0.1, threshold_decay=0.05, refractory_decay=0.2)


def _params(n: int, seed: int = 0) -> dict:
    """Per-neuron parameters, some on Lava-DL's grids (1/64, 1/4096), some not."""
    g = np.random.default_rng(seed)
    return dict(
        threshold=g.uniform(0.5, 2.0, n).astype(np.float32),
        threshold_step=g.uniform(0.0, 1.0, n).astype(np.float32),
        current_decay=g.uniform(0.0, 1.0, n).astype(np.float32),
        voltage_decay=g.uniform(0.0, 0.5, n).astype(np.float32),
        threshold_decay=g.uniform(0.0, 0.3, n).astype(np.float32),
        refractory_decay=g.uniform(0.05, 1.0, n).astype(np.float32),
    )


def _run(rt, x: torch.Tensor, fmt: Format | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Spikes and voltages of runtime `rt` over x (T, B, ...): float mode, or fixed point at state format `fmt`."""
    state = rt.init_state([x[0]])
    spikes, volts = [], []
    for xt in x:
        s, state = rt.step([xt], state) if fmt is None else fixed_step(rt, [xt], state, fmt, round_half_up)
        spikes.append(s)
        volts.append(state[-1])
    return torch.stack(spikes).numpy(), torch.stack(volts).numpy()


# -- IR ---------------------------------------------------------------------------------------------


def test_the_node_validates_its_decays_and_shapes():
    with pytest.raises(PrimitiveError, match="ALIF.voltage_decay must lie in"):
        ALIFNode(**{**PARAMS, "voltage_decay": 1.5})
    with pytest.raises(PrimitiveError, match="current_decay"):
        ALIFNode(**{**PARAMS, "current_decay": float("nan")})
    node = ALIFNode(**{**PARAMS, "threshold": np.ones(3)})
    assert node.infer_output_shapes([(3,), (3,)]) == [(3,)]
    with pytest.raises(PrimitiveError, match="threshold"):
        node.infer_output_shapes([(4,)])
    assert node.stateful and node.spiking and node.in_time_unit(10.0) is node


def test_a_graph_with_an_alif_round_trips_through_t1c(tmp_path):
    p = _params(5)
    g = ir.Graph({"inp": ir.Input(shape=(5,)), "alif": ALIFNode(**p), "out": ir.Output()}, [("inp", "alif"), ("alif", "out")])
    path = tmp_path / "alif.t1c"
    ir.write(path, g)
    back = ir.read(path)
    assert back.nodes["alif"] == g.nodes["alif"] and list(back.nodes) == list(g.nodes)


# -- float runtime against the equations --------------------------------------------------------------


def test_the_runtime_is_the_equations_spike_for_spike():
    p = _params(32, seed=1)
    x = torch.rand((300, 4, 32), generator=torch.Generator().manual_seed(2)) * 0.6
    want_s, want_v = alif_float32(x.numpy(), **p)
    got_s, got_v = _run(ALIFRuntime(ALIFNode(**p)), x)
    assert np.array_equal(got_s, want_s) and np.array_equal(got_v, want_v)
    assert 0 < want_s.mean() < 0.5


def test_the_threshold_adapts():
    """Under a constant drive the threshold climbs with each spike, so spikes come further apart."""
    x = torch.full((300, 1, 1), 0.05)
    s, _ = _run(ALIFRuntime(ALIFNode(**{**PARAMS, "refractory_decay": 0.5})), x)
    gaps = np.diff(np.flatnonzero(s[:, 0, 0]))
    assert len(gaps) > 10 and gaps[-1] > gaps[0]
    flat, _ = _run(ALIFRuntime(ALIFNode(**{**PARAMS, "refractory_decay": 0.5, "threshold_step": 0.0})), x)
    assert flat.sum() > 2 * s.sum()


# -- the torch module and its export -------------------------------------------------------------------


class Net(nn.Module):
    """A user's model: Linear -> ALIF -> Linear -> ALIF, one step per call."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1 = nn.Linear(6, 16)
        self.alif1 = ALIF(**{**PARAMS, "threshold": torch.linspace(0.5, 1.5, 16)})
        self.fc2 = nn.Linear(16, 4)
        self.alif2 = ALIF(threshold=0.4, threshold_step=0.3, current_decay=0.5, voltage_decay=0.2, threshold_decay=0.1, refractory_decay=0.3)

    def forward(self, x):
        return self.alif2(self.fc2(self.alif1(self.fc1(x))))


def test_the_module_is_the_runtime():
    p = _params(8, seed=3)
    m = ALIF(**p)
    x = torch.rand((50, 2, 8), generator=torch.Generator().manual_seed(4))
    got = torch.stack([m(xt) for xt in x]).numpy()
    want, _ = alif_float32(x.numpy(), **p)
    assert np.array_equal(got, want)
    m.reset_state()
    assert np.array_equal(torch.stack([m(xt) for xt in x]).numpy(), want)


def test_from_lava_dl_device_params_and_arguments():
    dev = {"vThMant": 80, "vThStep": 40, "iDecay": 1024, "vDecay": 410, "thDecay": 205, "refDecay": 819}
    node = ALIF.from_lava_dl(dev).to_node()
    assert float(node.threshold) == 80 / 64 and float(node.threshold_step) == 40 / 64
    assert float(node.current_decay) == np.float32(1024 / 4096) and float(node.refractory_decay) == np.float32(819 / 4096)
    assert ALIF.from_lava_dl(PARAMS).to_node() == ALIF(**PARAMS).to_node()
    with pytest.raises(TalonUsageError, match="graded spikes"):
        ALIF.from_lava_dl({**dev, "gradedSpike": True})


# -- fixed point: Lava-DL's integer model ------------------------------------------------------------------


@pytest.mark.parametrize("frac", [12, 9])
def test_fixed_point_is_lava_dls_integer_model(frac):
    """On the state grid 2^-frac, TALON's fixed-point ALIF is Lava-DL's integer ALIF with s_scale = 2^frac
    (Lava-DL's default scale 64 is frac 12), input on the grid."""
    n = 24
    g = np.random.default_rng(5)
    dev = dict(du=g.integers(0, 4097, n), dv=g.integers(0, 2048, n), dth=g.integers(0, 1024, n), dr=g.integers(100, 4097, n))
    th0 = g.integers(32, 128, n) / 64.0
    step = g.integers(0, 64, n) / 64.0
    node = ALIFNode(threshold=th0, threshold_step=step, current_decay=dev["du"] / 4096, voltage_decay=dev["dv"] / 4096,
                    threshold_decay=dev["dth"] / 4096, refractory_decay=dev["dr"] / 4096)
    sfmt = Format(24, frac)
    plan, grid = plan_alif("a", node, [Format(8, 6)], sfmt, FixedPointConfig())
    assert all(np.array_equal(plan.ints[k], dev[d]) for k, d in zip(("current_decay", "voltage_decay", "threshold_decay", "refractory_decay"), dev))
    # inputs: weights on 1/64 times spikes, summed: on the grid of every frac >= 6
    x = (g.integers(-40, 90, (200, 3, n)) / 64.0)
    want_s, want_v = alif_lava_int(x, 1 << frac, np.rint(th0 * (1 << frac)).astype(np.int64), np.rint(step * (1 << frac)).astype(np.int64),
                                   dev["du"], dev["dv"], dev["dth"], dev["dr"])
    got_s, got_v = _run(ALIFRuntime(grid).double(), torch.tensor(x, dtype=torch.float64), sfmt)
    assert np.array_equal(got_s, want_s)
    assert np.array_equal(np.ldexp(got_v, frac).astype(np.int64), want_v)
    assert 0 < want_s.mean() < 0.6


def test_state_format_bounds_the_threshold_and_refractory_state():
    node = ALIFNode(**PARAMS)  # threshold 1, step 0.5
    cfg = FixedPointConfig()
    f = state_format("a", node, 3.0, 1.0, cfg)  # th <= 3.5, r <= 6.5
    assert f.bits == 24 and f.frac == 23 - 3 - 1  # 6.5 < 2^3, one bit of headroom
    assert state_format("a", node, 0.0, 9.0, cfg).frac == 23 - 4 - 1
    with pytest.raises(BackendError, match="negative threshold"):
        state_format("a", ALIFNode(**{**PARAMS, "threshold_step": -0.1}), 1.0, 1.0, cfg)


# -- the C++ kernel against the fixed-point runtime ---------------------------------------------------------

KERNEL_TB = r"""
#include <stdio.h>
#include <stdint.h>
#include "talon_fixed.h"
#include "alif.h"
#define N %(N)d
int main() {
    static int64_t ku[N], kv[N], kth[N], kr[N], th0[N], stp[N], u[N], th[N], rf[N], v[N], x[N], out[N], mem[N];
    int T;
    for (int n = 0; n < N; ++n) if (scanf("%%ld %%ld %%ld %%ld %%ld %%ld", &ku[n], &kv[n], &kth[n], &kr[n], &th0[n], &stp[n]) != 6) return 2;
    for (int n = 0; n < N; ++n) { u[n] = 0; v[n] = 0; rf[n] = 0; th[n] = th0[n]; }
    if (scanf("%%d", &T) != 1) return 2;
    for (int t = 0; t < T; ++t) {
        for (int n = 0; n < N; ++n) if (scanf("%%ld", &x[n]) != 1) return 2;
        k_alif<N, %(MB)d, %(SH)d>(x, u, th, rf, v, ku, kv, kth, kr, th0, stp, out, mem);
        for (int n = 0; n < N; ++n) printf("%%ld %%ld\n", out[n], mem[n]);
    }
    return 0;
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not found")
def test_the_kernel_template_is_the_fixed_point_runtime_bit_for_bit(tmp_path):
    from talon.backend.fpga.kernels import builtin_kernel, fixed_header

    n, T, frac, fin = 16, 150, 10, 12  # inputs finer than the state: the kernel rounds them half up
    p = _params(n, seed=7)
    sfmt = Format(16, frac)  # narrow states: saturation happens and must agree too
    plan, grid = plan_alif("a", ALIFNode(**p), [Format(16, fin)], sfmt, FixedPointConfig())
    g = np.random.default_rng(8)
    xi = g.integers(-3000, 9000, (T, 1, n))
    want_s, want_v = _run(ALIFRuntime(grid).double(), torch.tensor(np.ldexp(xi.astype(np.float64), -fin)), sfmt)
    (tmp_path / "talon_fixed.h").write_text(fixed_header(3))
    (tmp_path / "alif.h").write_text(builtin_kernel("alif"))
    (tmp_path / "tb.cpp").write_text(KERNEL_TB % {"N": n, "MB": sfmt.bits, "SH": fin - frac})
    exe = tmp_path / "tb"
    subprocess.run(["g++", "-std=c++14", "-O1", "-I", str(tmp_path), str(tmp_path / "tb.cpp"), "-o", str(exe)], check=True)
    k = [4096 - plan.ints[d] for d in ("current_decay", "voltage_decay", "threshold_decay", "refractory_decay")]
    th0 = np.broadcast_to(plan.ints["threshold"], (n,))
    stp = np.broadcast_to(plan.ints["threshold_step"], (n,))
    lines = [" ".join(str(int(a[j])) for a in (*k, th0, stp)) for j in range(n)] + [str(T)]
    lines += [" ".join(str(int(v)) for v in xi[t, 0]) for t in range(T)]
    res = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    got = np.array([[int(w) for w in ln.split()] for ln in res.stdout.split("\n") if ln]).reshape(T, n, 2)
    assert np.array_equal(got[..., 0], want_s[:, 0].astype(np.int64))
    assert np.array_equal(got[..., 1], np.ldexp(want_v[:, 0], frac).astype(np.int64))
    assert 0 < want_s.mean() < 0.9
    assert np.abs(got[..., 1]).max() == (1 << 15) - 1 or np.abs(got[..., 1]).max() == 1 << 15  # saturated at least once


def _net_and_graph() -> tuple[Net, ir.Graph]:
    from talon.bridge import to_ir

    net = Net()
    return net, to_ir(net, torch.zeros(1, 6))  # ALIF's converter is registered: no custom_map


def _executor_run(g: ir.Graph, x: torch.Tensor) -> torch.Tensor:
    from talon.bridge import ir_to_torch

    ex = ir_to_torch(g, return_state=True)
    got, state = [], None
    with torch.no_grad():
        for xt in x:
            y, state = ex(xt, state=state)
            got.append(y)
    return torch.stack(got)


def test_a_model_with_alif_modules_exports_exactly():
    net, g = _net_and_graph()
    assert [n.type_name for n in g.nodes.values()] == ["Input", "Affine", "ALIF", "Affine", "ALIF", "Output"]
    x = torch.rand((120, 3, 6), generator=torch.Generator().manual_seed(9)) * 2.0
    want = torch.stack([net(xt) for xt in x])
    assert want.sum() > 0
    assert torch.equal(_executor_run(g, x), want)


def test_to_nir_refuses_alif_by_name_with_the_reason():
    pytest.importorskip("nir")
    from talon.ir.nir import NIRConversionError, to_nir

    _, g = _net_and_graph()
    with pytest.raises(NIRConversionError, match=r"node 'alif1' \(ALIF\) cannot be exported to NIR: NIR has no adaptive-threshold neuron"):
        to_nir(g)


def test_lint_knows_when_an_alif_can_never_fire():
    from talon.sdk import lint_graph

    quiet = ALIFNode(**{**PARAMS, "threshold": np.array([1.0, 100.0])})  # |x| <= 1: u <= 4, v <= 40
    g = ir.Graph({"inp": ir.Input(shape=(2,)), "a": quiet, "out": ir.Output()}, [("inp", "a"), ("a", "out")])
    res = lint_graph(g, input_range=(-1.0, 1.0))
    never = [i for i in res.issues if i.code == "NEURON_NEVER_FIRES"]
    assert len(never) == 1 and "a" in never[0].message and "1 of 2" in never[0].message


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not found")
def test_alif_end_to_end(tmp_path):
    """torch model with ALIF modules -> export -> executor exact -> .t1c -> analyze/profile -> fixed-point
    simulation -> FPGA C simulation bit-exact with it -> map_graph places every ALIF neuron."""
    from talon.backend import get_backend
    from talon.mapping import HardwareSpec, map_graph
    from talon.sdk import analyze_graph, profile_graph
    from talon.sdk.cost import node_cost

    net, g = _net_and_graph()
    x = torch.rand((80, 2, 6), generator=torch.Generator().manual_seed(11)) * 2.0
    want = torch.stack([net(xt) for xt in x])
    assert torch.equal(_executor_run(g, x), want)

    path = tmp_path / "alif.t1c"
    ir.write(path, g)
    g2 = ir.read(path)
    assert list(g2.nodes) == list(g.nodes) and all(g2.nodes[n] == g.nodes[n] for n in g.nodes)
    assert torch.equal(_executor_run(g2, x), want)

    cost = node_cost(g2.nodes["alif1"], [(16,)])
    assert (cost.neurons, cost.state_elements, cost.flops) == (16, 4 * 16, 13 * 16)
    stats = analyze_graph(g2)
    assert stats.num_neurons == 20 and stats.num_spiking_layers == 2 and stats.layers["alif1"].flops == 13 * 16
    prof = profile_graph(g2)
    assert prof.state_memory == 4 * 20 * prof.state_bytes  # four state words per ALIF neuron

    cpu, fpga = get_backend("cpu"), get_backend("fpga")
    fl = cpu.simulate(g2, x, mode="float", record=True)
    assert torch.equal(fl.spikes["alif2"], want) and fl.membranes["alif1"].shape == (80, 2, 16)
    fx = cpu.simulate(g2, x, mode="fixed", record=True)
    p = fx.fixed_point.nodes["alif1"]
    assert p.type_name == "ALIF" and p.membrane.bits == 24 and set(p.ints) >= {"current_decay", "threshold"}
    assert fx.spike_counts["alif1"] > 0 and fx.spike_counts["alif2"] > 0

    rep = fpga.verify(g2, x, work_dir=tmp_path / "prj")
    assert rep.ok, rep.summary()
    assert {"spikes/alif1", "spikes/alif2", "membranes/alif1", "membranes/alif2"} <= set(rep.compared)
    assert np.array_equal(rep.csim.value("spikes", "alif2"), fx.spikes["alif2"].numpy())

    hw = HardwareSpec(mesh=(2, 2), neurons_per_core=8, weight_memory_bytes_per_core=1 << 16, weight_bits=8)
    res = map_graph(g2, hw, "greedy")
    for layer, n in (("alif1", 16), ("alif2", 4)):
        a = res.assignments[layer]
        assert int(np.sum(a["stop"] - a["start"])) == n


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not found")
def test_the_docs_page_runs():
    from doc_blocks import run_blocks

    n, ns = run_blocks("neurons/alif.md")
    assert n == 4 and ns["report"].ok and ns["spikes"].sum() > 0



@settings(max_examples=25, deadline=None)
@given(frac=st.integers(6, 10), seed=st.integers(0, 2**31 - 1))
def test_fixed_point_is_lava_dls_integer_model_for_any_grid(frac, seed):
    """Property: for any state grid 2^-frac and 12-bit decays, the fixed-point step is Lava-DL's integer step.
    (40 steps of |x| <= 2 keep every state below 2^13, inside Q24.10: no saturation, which Lava-DL lacks.)"""
    n, g = 6, np.random.default_rng(seed)
    d = [g.integers(0, 4097, n) for _ in range(4)]
    th0, step = g.integers(0, 200, n) / 64.0, g.integers(0, 100, n) / 64.0
    node = ALIFNode(threshold=th0, threshold_step=step, current_decay=d[0] / 4096, voltage_decay=d[1] / 4096,
                    threshold_decay=d[2] / 4096, refractory_decay=d[3] / 4096)
    sfmt = Format(24, frac)
    _, grid = plan_alif("a", node, [Format(8, 6)], sfmt, FixedPointConfig())
    x = g.integers(-64, 128, (40, 2, n)) / 64.0
    want_s, want_v = alif_lava_int(x, 1 << frac, np.rint(th0 * (1 << frac)).astype(np.int64), np.rint(step * (1 << frac)).astype(np.int64), *d)
    got_s, got_v = _run(ALIFRuntime(grid).double(), torch.tensor(x), sfmt)
    assert np.array_equal(got_s, want_s) and np.array_equal(np.ldexp(got_v, frac).astype(np.int64), want_v)
