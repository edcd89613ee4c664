"""Hardware numerics as users meet them (session 8 trust audit): fixed-point simulation of models written
in snnTorch, with edge numerics, checked against integer references written from docs/fixed_point.md
(the shared `backend_int_reference` for whole graphs, and a Python-int neuron below); every saturation
said (FixedPointSaturationWarning, naming the node); the fpga backend on a kept calibration; fixed-mode
energy from counts of events (docs/energy.md)."""

from __future__ import annotations

import filecmp
import os
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from talon import ir
from talon.backend import get_backend
from talon.backend.compile import build_descriptor
from talon.backend.cpu import FixedPointConfig
from talon.backend.cpu.clip_watch import FixedPointSaturationWarning
from talon.backend.saturation_report import FixedPointSaturationWarning as SharedWarning
from talon.backend.descriptor import HardwareDescriptor
from talon.errors import BackendError

import backend_int_reference as intref
from fpga_helpers import needs_gxx
from lif_mlp import mlp_graph

snn = pytest.importorskip("snntorch")
from talon.bridge import to_ir  # noqa: E402


@pytest.fixture
def cpu():
    return get_backend("cpu")


@pytest.fixture
def fpga():
    return get_backend("fpga")


def _quiet(fn, *a, **kw):
    """fn(*a, **kw) with no FixedPointSaturationWarning allowed (raised as an error)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", FixedPointSaturationWarning)
        return fn(*a, **kw)


# -- Part A: the fpga backend on a kept calibration ------------------------------------------------------


def _files(root: str) -> dict[str, str]:
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = p
    return out


def test_fpga_project_from_a_kept_calibration_is_the_calibrating_calls_project(cpu, fpga, tmp_path):
    g = mlp_graph(seed=4)
    data = torch.rand(12, 3, 8, generator=torch.Generator().manual_seed(1)) * 2 - 0.5  # analog, some negative
    cal = cpu.calibrate(g, data)
    kept = fpga.compile(g, tmp_path / "kept", calibration=cal)
    called = fpga.compile(g, tmp_path / "called", calibration_inputs=data)
    a, b = _files(kept.path), _files(called.path)
    assert set(a) == set(b) and a
    for rel in a:
        assert filecmp.cmp(a[rel], b[rel], shallow=False), rel
    # the descriptor and the estimates follow the same kept plan
    assert fpga.descriptor(g, calibration=cal) == cpu.compile(g, calibration_inputs=data)
    assert fpga.estimate(g, calibration=cal) == fpga.estimate(g, calibration_inputs=data)


def test_fpga_refuses_a_kept_calibration_that_does_not_fit(cpu, fpga, tmp_path):
    g = mlp_graph(seed=4)
    cal = cpu.calibrate(g, torch.rand(4, 1, 8))
    small = ir.Graph({"x": ir.Input(shape=(8,)), "fc": ir.Affine(weight=np.ones((2, 8), np.float32), bias=np.zeros(2, np.float32)),
                      "y": ir.Output()})  # fmt: skip
    small.chain("x", "fc", "y")
    with pytest.raises(BackendError, match="node 'x' has no calibrated output range"):
        fpga.compile(small, tmp_path / "a", calibration=cal)
    assert not (tmp_path / "a").exists()  # nothing half-written
    with pytest.raises(BackendError, match="not both"):
        fpga.compile(g, tmp_path / "b", calibration=cal, calibration_inputs=torch.rand(4, 1, 8))
    with pytest.raises(BackendError, match="n_steps"):
        fpga.compile(g, tmp_path / "c", calibration=cal, n_steps=5)
    with pytest.raises(BackendError, match="calibration must be"):
        fpga.compile(g, tmp_path / "d", calibration={"fc1": 1.0})


def test_fpga_refuses_plan_options_beside_an_already_quantised_descriptor(cpu, fpga, tmp_path):
    """Before: fixed_config/calibration_inputs/n_steps next to a HardwareDescriptor were silently ignored."""
    g = mlp_graph(seed=2)
    desc = cpu.compile(g, n_steps=4)
    assert isinstance(desc, HardwareDescriptor)
    cal = cpu.calibrate(g, torch.rand(4, 1, 8))
    for kw in ({"calibration": cal}, {"fixed_config": FixedPointConfig(weight_bits=4)}, {"calibration_inputs": torch.rand(3, 1, 8)},
               {"n_steps": 3}):  # fmt: skip
        with pytest.raises(BackendError, match="already quantised"):
            fpga.compile(desc, tmp_path / "p", **kw)
        with pytest.raises(BackendError, match="already quantised"):
            fpga.estimate(desc, **kw)
    prj = fpga.compile(desc, tmp_path / "p")  # the plain form still works
    with pytest.raises(BackendError, match="already quantised"):
        fpga.csim(prj, torch.rand(3, 1, 8), fixed_config=FixedPointConfig(weight_bits=4))


@needs_gxx
def test_fpga_csim_and_verify_on_a_kept_calibration(cpu, fpga, tmp_path):
    g = mlp_graph(seed=5)
    gen = torch.Generator().manual_seed(3)
    train = torch.rand(10, 4, 8, generator=gen)
    x = torch.rand(6, 2, 8, generator=gen) * 0.9  # inside the calibrated range: no saturation
    cal = cpu.calibrate(g, train)
    rep = _quiet(fpga.verify, g, x, calibration=cal, work_dir=tmp_path / "v", use_ap_types=False)  # plain C++: a faster build
    assert rep.ok, rep.summary()
    sim = cpu.simulate(g, x, mode="fixed", calibration=cal, record=True, compare=False)
    cs = fpga.csim(g, x, calibration=cal, work_dir=tmp_path / "v", use_ap_types=False)  # the same project: g++'s build is reused
    lif2 = sim.spikes["lif2"].numpy()
    assert np.array_equal(cs.value("spikes", "lif2"), lif2.astype(np.float64))


@needs_gxx
def test_csim_of_a_project_says_when_its_inputs_saturate(cpu, fpga, tmp_path):
    """A project calibrated on small inputs, then run in C on larger ones: the testbench quantises them by
    the Input rule (saturating); csim says so, naming the input, and the words are the cpu simulation's."""
    assert SharedWarning is FixedPointSaturationWarning
    g = mlp_graph(seed=6)
    cal = cpu.calibrate(g, 0.25 * torch.rand(6, 2, 8, generator=torch.Generator().manual_seed(0)))
    prj = fpga.compile(g, tmp_path / "p", calibration=cal)
    x = 2 * torch.rand(5, 2, 8, generator=torch.Generator().manual_seed(1)) - 1
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'inp' input reached -?0\.9"):
        cs = fpga.csim(prj, x, use_ap_types=False)
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'inp' input reached"):
        sim = cpu.simulate(g, x, mode="fixed", calibration=cal, record=True, compare=False)
    assert np.array_equal(cs.value("spikes", "lif2"), sim.spikes["lif2"].double().numpy())
    _quiet(fpga.csim, prj, 0.2 * torch.rand(5, 2, 8), use_ap_types=False)  # inside the calibrated range: silent


# -- Part B: snnTorch models with edge numerics against the integer reference ------------------------------


def _check_against_reference(cpu, g: ir.Graph, x: torch.Tensor, cfg: FixedPointConfig | None = None, cal_x: torch.Tensor | None = None):
    """Fixed simulate (record=True) of `g` on `x` equals the integer reference (docs/fixed_point.md) on the
    descriptor of the same plan: every output, spike and membrane word. Returns the simulation."""
    kw = {} if cal_x is None else {"calibration_inputs": cal_x}
    sim = cpu.simulate(g, x, mode="fixed", record=True, fixed_config=cfg, compare=False, **kw)
    desc = build_descriptor(g, sim.fixed_point)
    (inp,) = g.input_names
    mem: dict = {}
    ref = intref.run(desc, {inp: x.double().numpy()}, membranes=mem)
    for name, got in sim.spikes.items():
        if name in g.input_names:
            continue
        fmt = desc.nodes[name]["out_format"]
        want = np.stack(ref[name]).astype(np.float64) * 2.0 ** -fmt[1]
        assert np.array_equal(got.double().numpy().reshape(want.shape), want), f"spikes of {name}"
    for name, got in sim.membranes.items():
        fv = desc.nodes[name]["membrane"][1]
        want = np.stack(mem[name]).astype(np.float64) * 2.0 ** -fv
        assert np.array_equal(got.double().numpy().reshape(want.shape), want), f"membrane of {name}"
    (out,) = g.output_names
    fmt = desc.nodes[out]["out_format"]
    want = np.stack(ref[out]).astype(np.float64) * 2.0 ** -fmt[1]
    assert np.array_equal(sim.output.double().numpy().reshape(want.shape), want)
    return sim


class _MLP(nn.Module):
    """The snnTorch tutorial's MLP, as users write it, with the neuron's knobs exposed."""

    def __init__(self, beta: float, threshold: float, reset: str, n_in: int = 6, graded: bool = False) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_in, 10)
        self.lif1 = snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset, graded_spikes_factor=0.5 if graded else 1.0)
        self.fc2 = nn.Linear(10, 3)
        self.lif2 = snn.Leaky(beta=beta, threshold=threshold, reset_mechanism=reset)

    def forward(self, x):  # x: (T, B, n_in), the tutorial's time loop
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        rec = []
        for step in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            rec.append(spk2)
        return torch.stack(rec, dim=0)


@pytest.mark.parametrize(
    "beta, threshold, reset, scale, negative_weights, graded",
    [
        (0.999, 1.0, "subtract", 1.0, False, False),   # beta very close to 1
        (0.001, 1.0, "zero", 1.0, False, False),        # beta very close to 0
        (0.9, 1e-3, "subtract", 1.0, False, False),     # tiny threshold
        (0.9, 1e3, "zero", 2000.0, False, False),       # huge threshold, huge analog currents
        (0.8, 0.5, "subtract", 1.0, True, True),        # large negative weights, graded spikes
        (0.95, 1.0, "none", 1.0, False, False),         # no reset: membranes drift
    ],
)  # fmt: skip
def test_snntorch_mlp_edge_numerics_match_the_integer_reference(cpu, beta, threshold, reset, scale, negative_weights, graded):
    torch.manual_seed(0)
    net = _MLP(beta, threshold, reset, graded=graded)
    if negative_weights:
        with torch.no_grad():
            net.fc1.weight.sub_(6.0)  # large negative weights: negative membranes and accumulators
            net.fc1.weight[:, 0] = 9.0
    g = to_ir(net, torch.zeros(2, 1, 6))
    x = scale * (2 * torch.rand(40, 3, 6, generator=torch.Generator().manual_seed(1)) - 0.7)  # analog, negative too, batch 3
    _check_against_reference(cpu, g, x)


def test_snntorch_conv_with_padding_stride_and_pools_matches_the_integer_reference(cpu):
    class Conv(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 4, 3, stride=2, padding=1)
            self.l1 = snn.Leaky(beta=0.9)
            self.pool = nn.AvgPool2d(2)
            self.c2 = nn.Conv2d(4, 4, 3, padding=1)
            self.l2 = snn.Leaky(beta=0.7, reset_mechanism="zero")
            self.mp = nn.MaxPool2d(2)
            self.fc = nn.Linear(4, 2)
            self.l3 = snn.Leaky(beta=0.5)

        def forward(self, x):
            m1, m2, m3 = self.l1.init_leaky(), self.l2.init_leaky(), self.l3.init_leaky()
            rec = []
            for step in range(x.shape[0]):
                s1, m1 = self.l1(self.c1(x[step]), m1)
                s2, m2 = self.l2(self.c2(self.pool(s1)), m2)
                s3, m3 = self.l3(self.fc(self.mp(s2).flatten(1)), m3)
                rec.append(s3)
            return torch.stack(rec)

    torch.manual_seed(2)
    net = Conv()
    with torch.no_grad():
        net.c1.weight.mul_(4)
        net.c2.weight.mul_(4)
    g = to_ir(net, torch.zeros(2, 1, 1, 8, 8))
    x = 3 * torch.rand(15, 2, 1, 8, 8, generator=torch.Generator().manual_seed(4)) - 1.0
    sim = _check_against_reference(cpu, g, x)
    assert sum(sim.spike_counts.values()) > 0


def test_snntorch_rleaky_and_synaptic_match_the_integer_reference(cpu):
    class Rec(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(5, 8)
            self.rlif = snn.RLeaky(beta=0.9, linear_features=8)
            self.fc2 = nn.Linear(8, 3)
            self.syn = snn.Synaptic(alpha=0.8, beta=0.7, reset_mechanism="zero")

        def forward(self, x):
            spk, mem = self.rlif.init_rleaky()
            syn, mem2 = self.syn.init_synaptic()
            rec = []
            for step in range(x.shape[0]):
                spk, mem = self.rlif(self.fc1(x[step]), spk, mem)
                s2, syn, mem2 = self.syn(self.fc2(spk), syn, mem2)
                rec.append(s2)
            return torch.stack(rec)

    torch.manual_seed(3)
    net = Rec()
    with torch.no_grad():
        net.fc1.weight.mul_(3)
        net.fc2.weight.mul_(3)
    g = to_ir(net, torch.zeros(2, 1, 5))
    x = 2 * torch.rand(30, 3, 5, generator=torch.Generator().manual_seed(5)) - 0.5
    sim = _check_against_reference(cpu, g, x)
    assert sum(sim.spike_counts.values()) > 0


# -- a Python-int neuron, long runs ---------------------------------------------------------------------


def _lif_int(B: int, G: int, thr: int, inputs: list[int], fv: int, fin: int, c: int, m_bits: int) -> list[int]:
    """One LIF neuron (subtract reset, reset_delay=True: snnTorch's default) by the rule of docs section 3
    in Python ints (no overflow possible): the stored membrane of every step."""
    F = c + max(fv, fin)
    lo, hi = -(1 << (m_bits - 1)), (1 << (m_bits - 1)) - 1
    V, out = 0, []
    for X in inputs:
        R = 1 if V > thr else 0
        W = ((B * V) << (F - fv - c)) + ((G * X) << (F - fin - c)) - ((R * thr) << (F - fv))
        Vn = -((-W) >> (F - fv))  # ceil
        V = min(max(Vn, lo), hi)
        out.append(V)
    return out


def test_a_long_run_of_one_neuron_matches_python_ints_and_stops_decaying_as_documented(cpu):
    """1500 steps of a beta=0.99 neuron driven by a small analog current and then left alone: the stored
    membrane is the rule's, and (docs section 4) a positive membrane with no input settles above 0."""
    g = ir.Graph({"x": ir.Input(shape=(1,)), "lif": ir.LIF(tau=[100.0], r=[100.0], v_leak=[0.0], v_threshold=[1.0],
                                                          reset_mode="subtract"), "y": ir.Output()})  # fmt: skip
    g.chain("x", "lif", "y")
    T = 1500
    x = torch.zeros(T, 1, 1, dtype=torch.float64)
    x[:200] = 0.0123
    sim = _quiet(cpu.simulate, g, x, mode="fixed", record=True, compare=False)
    desc = build_descriptor(g, sim.fixed_point)
    nd = desc.nodes["lif"]
    (mb, fv), (_, fin) = nd["membrane"], desc.nodes["x"]["out_format"]
    c = desc.meta["fixed_point"]["coefficient_frac_bits"]
    X = [int(np.floor(v * 2.0**fin + 0.5)) for v in x[:, 0, 0].tolist()]
    want = _lif_int(int(desc.array("lif", "beta")[0]), int(desc.array("lif", "gain")[0]), int(desc.array("lif", "v_threshold")[0]),
                    X, fv, fin, c, mb)  # fmt: skip
    got = (sim.membranes["lif"].double().reshape(-1) * 2.0**fv).tolist()
    assert got == want
    beta = int(desc.array("lif", "beta")[0]) / 2.0**c
    assert want[-1] == want[-2] and 0 < want[-1] < 1 / (1 - beta)  # settled above 0, in LSB, as section 4 says


# -- saturation is said, naming the node -------------------------------------------------------------------


def test_inputs_beyond_a_kept_calibration_warn_naming_the_input(cpu):
    torch.manual_seed(0)
    g = to_ir(_MLP(0.9, 1.0, "subtract"), torch.zeros(2, 1, 6))
    cal = cpu.calibrate(g, 0.2 * torch.rand(10, 2, 6))
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'input' input reached 3") as rec:
        cpu.simulate(g, torch.full((5, 1, 6), 3.0), mode="fixed", calibration=cal, compare=False)
    assert rec[0].filename == __file__  # attributed to the user's call, not to talon's internals
    # within range: silent, and the rule's one-LSB top rounding is not reported
    _quiet(cpu.simulate, g, 0.2 * torch.rand(10, 2, 6), mode="fixed", calibration_inputs=0.2 * torch.ones(1, 1, 6), compare=False)


def test_a_narrow_accumulator_saturates_as_the_reference_and_says_so(cpu):
    """Large negative weights and accumulator_bits=10: the sums saturate. The values are the rule's (the
    reference saturates too), and the warning names the layer's accumulator."""
    g = ir.Graph({"x": ir.Input(shape=(16,)),
                  "fc": ir.Affine(weight=np.full((3, 16), -7.5, np.float32), bias=np.array([0.0, 1.0, -2.0], np.float32)),
                  "lif": ir.LIF(tau=[4.0] * 3, r=[4.0] * 3, v_leak=[0.0] * 3, v_threshold=[1.0] * 3, reset_mode="zero"),
                  "y": ir.Output()})  # fmt: skip
    g.chain("x", "fc", "lif", "y")
    x = torch.rand(8, 2, 16, generator=torch.Generator().manual_seed(0))
    cfg = FixedPointConfig(accumulator_bits=10)
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'fc' accumulator reached"):
        _check_against_reference(cpu, g, x, cfg)


def test_membranes_drifting_past_a_short_calibration_warn_in_both_neuron_paths(cpu):
    """An IF neuron integrating a constant negative current for longer than it was calibrated: its membrane
    leaves the format and saturates, in the fused loop (LIF/IF) and in the step loop (a recorded membrane,
    a CubaLIF)."""
    g = ir.Graph({"x": ir.Input(shape=(2,)), "n": ir.IF(r=[1.0, 1.0], v_threshold=[20.0, 20.0]), "y": ir.Output()})
    g.chain("x", "n", "y")
    cal = cpu.calibrate(g, -torch.ones(10, 1, 2))
    long = -torch.ones(700, 1, 2)  # more steps than the watch keeps per value before folding them
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'n' membrane reached -6"):
        cpu.simulate(g, long, mode="fixed", calibration=cal, compare=False)  # fused loop
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'n' membrane reached -6"):
        sim = cpu.simulate(g, long, mode="fixed", calibration=cal, compare=False, record=True)  # step loop
    fv = sim.fixed_point.nodes["n"].membrane
    assert float(sim.membranes["n"].min()) == fv.lo * 2.0**-fv.frac  # saturated at the rail, as the rule says

    c = ir.Graph({"x": ir.Input(shape=(2,)),
                  "n": ir.CubaLIF(tau_syn=[5.0] * 2, tau_mem=[10.0] * 2, r=[10.0] * 2, v_leak=[0.0] * 2, v_threshold=[50.0] * 2,
                                  reset_mode="none"),
                  "y": ir.Output()})  # fmt: skip
    c.chain("x", "n", "y")
    cal = cpu.calibrate(c, torch.full((2, 1, 2), 4.0))  # two steps: the current and membrane have not grown yet
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'n' synaptic current reached .*node 'n' membrane reached"):
        cpu.simulate(c, torch.full((100, 1, 2), 4.0), mode="fixed", calibration=cal, compare=False)


def test_a_requantising_pool_beyond_its_calibration_warns(cpu):
    g = ir.Graph({"x": ir.Input(shape=(1, 4, 4)), "p": ir.SumPool2d(kernel_size=(2, 2), stride=(2, 2)), "y": ir.Output()})
    g.chain("x", "p", "y")
    one_pixel = torch.zeros(2, 1, 1, 4, 4)
    one_pixel[..., 0, 0] = 0.25
    cal = cpu.calibrate(g, one_pixel)  # input and window sums up to 0.25: both Q8.8
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'p' output reached 1.59375, outside its format Q8.8") as rec:
        cpu.simulate(g, torch.full((2, 1, 1, 4, 4), 0.4), mode="fixed", calibration=cal, compare=False)
    assert "node 'x'" not in str(rec[0].message)  # 0.4 fits the input's Q8.8


# -- fixed-mode energy from counts of events (docs/energy.md) ---------------------------------------------


def test_fixed_mode_spike_energy_is_events_times_fan_out_and_falls_with_activity(cpu):
    g = ir.Graph({"x": ir.Input(shape=(6,), spikes=True),
                  "fc": ir.Affine(weight=np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6), bias=np.zeros(4, np.float32)),
                  "lif": ir.LIF(tau=[5.0] * 4, r=[5.0] * 4, v_leak=[0.0] * 4, v_threshold=[0.3] * 4), "y": ir.Output()})  # fmt: skip
    g.chain("x", "fc", "lif", "y")
    T, B = 10, 2
    dense = (torch.rand(T, B, 6, generator=torch.Generator().manual_seed(0)) < 0.8).float()
    sparse = dense.clone()
    sparse[:, :, 3:] = 0
    res = {}
    for name, x in (("dense", dense), ("sparse", sparse), ("none", torch.zeros(T, B, 6))):
        p = cpu.profile(g, x, mode="fixed", calibration_inputs=dense)
        res[name] = (p, int(x.count_nonzero()))
    for name, (p, events) in res.items():
        layer = p.layers["fc"]
        assert layer.event_driven and layer.macs == 0, name  # a spike-fed layer: no dense MACs
        # docs/energy.md: input_events * fan_out accumulates at E_AC (fixed mode: int32_add, 0.1 pJ), per sample
        assert layer.accumulates * B == events * 4, name
        assert layer.spike_energy_uj == pytest.approx(events / B * 4 * 0.1e-6, rel=1e-9), name
    assert res["none"][0].layers["fc"].spike_energy_uj == 0
    assert res["sparse"][0].energy_estimate_uj < res["dense"][0].energy_estimate_uj
    # latency: the ACs' share falls with activity too (ceil(ACs per step / 64 units) cycles)
    assert res["none"][0].layers["fc"].cycles <= res["sparse"][0].layers["fc"].cycles <= res["dense"][0].layers["fc"].cycles


def test_alpha_traces_and_alif_states_past_a_short_calibration_warn(cpu):
    """snnTorch Alpha (its traces round half up, and clamp after the reset) and ALIF (Lava-DL style states,
    saturated to the state format) driven harder and longer than calibrated: named in the warning."""

    class A(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.a = snn.Alpha(alpha=0.9, beta=0.8, threshold=0.5)

        def forward(self, x):
            se, si, m = self.a.init_alpha()
            out = []
            for step in range(x.shape[0]):
                spk, se, si, m = self.a(self.fc(x[step]), se, si, m)
                out.append(spk)
            return torch.stack(out)

    torch.manual_seed(0)
    g = to_ir(A(), torch.zeros(2, 1, 3))
    cal = cpu.calibrate(g, 0.05 * torch.ones(3, 1, 3))
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'a' (trace|membrane) reached"):
        cpu.simulate(g, 0.05 * torch.ones(60, 1, 3), mode="fixed", calibration=cal, compare=False)

    from talon.bridge.modules import ALIF

    class L(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 4)
            self.alif = ALIF(threshold=50.0, threshold_step=0.3, current_decay=0.1, voltage_decay=0.05, threshold_decay=0.1,
                             refractory_decay=0.3)  # fmt: skip

        def forward(self, x):
            return self.alif(self.fc(x))

    torch.manual_seed(1)
    net = L()
    with torch.no_grad():
        net.fc.weight.fill_(1.0)
    g = to_ir(net, torch.zeros(1, 3))
    cal = cpu.calibrate(g, 0.1 * torch.ones(2, 1, 3))
    with pytest.warns(FixedPointSaturationWarning, match=r"node 'alif' (state|input sum) reached"):
        cpu.simulate(g, 5 * torch.ones(40, 1, 3), mode="fixed", calibration=cal, compare=False)
