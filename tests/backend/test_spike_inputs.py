"""Spike inputs (issue 15): an Input that carries spikes (`Input.spikes`, or fed a binary stimulus) makes the
layers it feeds event-driven for every consumer: the cost table and profile, the simulator's event counts,
the energy profile, the NoC model and the FPGA estimate. The flag round-trips through .t1c and NIR and
leaves the existing SDK's files and layout alone."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from talon import ir
from talon.backend.cpu.profiler import _layer_activity
from talon.backend.stimulus import RateEncoder
from talon.errors import BackendError, TalonUsageError
from talon.mapping import HardwareSpec, map_graph
from talon.sdk import analyze_graph, graph_costs, profile_graph
from fpga_helpers import needs_gxx
from tutorial_graphs import affine, lif

COMPAT = Path(__file__).resolve().parents[2].parent / "shared" / "compat"
SAMPLES = sorted(p.stem for p in COMPAT.glob("*.t1c")) if COMPAT.is_dir() else []

IN, HID, OUT, T, B = 784, 100, 10, 8, 2


def demo_mlp(spikes: bool = False) -> ir.Graph:
    """The demo's shape of model: 784 -> 100 LIF -> 10 LIF, fed rate-coded pixels."""
    rng = np.random.default_rng(0)
    g = ir.Graph()
    g.add_node("input", ir.Input(shape=(IN,), spikes=spikes))
    g.add_node("fc1", affine(HID, IN, rng, scale=0.05))
    g.add_node("lif1", lif(HID))
    g.add_node("fc2", affine(OUT, HID, rng, scale=0.3))
    g.add_node("lif2", lif(OUT))
    g.add_node("output", ir.Output())
    g.chain("input", "fc1", "lif1", "fc2", "lif2", "output")
    return g


def spikes_with(count: int, seed: int = 0) -> torch.Tensor:
    """(T, B, IN) spikes with exactly `count` ones per step and sample, at random positions."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.rand((T, B, IN), generator=gen).argsort(dim=-1)
    x = torch.zeros(T, B, IN)
    x.scatter_(-1, order[..., :count], 1.0)
    return x


# -- the IR and its files ------------------------------------------------------------------------------


def test_input_spikes_defaults_to_false_and_is_checked():
    assert ir.Input(shape=(3,)).spikes is False
    assert ir.Input(shape=(3,), spikes=True).spikes is True
    with pytest.raises(ir.PrimitiveError, match="Input.spikes"):
        ir.Input(shape=(3,), spikes=1)


def test_spike_flag_round_trips_through_t1c_and_is_stored_only_when_set(tmp_path):
    for flag in (False, True):
        path = tmp_path / f"m{flag}.t1c"
        ir.write(path, demo_mlp(flag))
        back = ir.read(path)
        assert back.nodes["input"].spikes is flag and back == demo_mlp(flag)
        with h5py.File(path, "r") as f:
            group = f["graph/nodes/input"]
            # unset: the existing SDK's layout exactly; set: one extra bool dataset, which that SDK ignores
            assert set(group) == ({"type", "shape", "spikes"} if flag else {"type", "shape"})
            if flag:
                assert group["spikes"].dtype == np.dtype(bool) and group["spikes"][()] == True  # noqa: E712


@pytest.mark.skipif(not SAMPLES, reason=f"existing-SDK sample files not found at {COMPAT}")
@pytest.mark.parametrize("name", SAMPLES)
def test_existing_sdk_files_read_with_inputs_not_spiking(name, tmp_path):
    g = ir.read(COMPAT / f"{name}.t1c")
    inputs = [n for n, node in g.nodes.items() if node.type_name == "Input"]
    assert inputs and ir.spike_inputs(g) == []
    # marked and written back: only the Input groups gain the `spikes` dataset, nothing else moves
    ir.write(tmp_path / "plain.t1c", g)
    ir.write(tmp_path / "marked.t1c", ir.with_spike_inputs(g))

    def layout(path):
        out = set()
        with h5py.File(path, "r") as f:
            f["graph"].visititems(lambda k, obj: out.add(k))
        return out

    extra = layout(tmp_path / "marked.t1c") - layout(tmp_path / "plain.t1c")
    assert extra == {f"nodes/{n}/spikes" for n in inputs}
    assert ir.spike_inputs(ir.read(tmp_path / "marked.t1c")) == inputs


def test_with_spike_inputs_marks_a_copy_and_refuses_other_nodes():
    g = demo_mlp()
    marked = ir.with_spike_inputs(g)
    assert ir.spike_inputs(marked) == ["input"] and ir.spike_inputs(g) == []
    assert marked.nodes["fc1"] is g.nodes["fc1"] and ir.with_spike_inputs(marked) is marked
    with pytest.raises(TalonUsageError, match="'fc1'"):
        ir.with_spike_inputs(g, ["fc1"])


def test_spike_flag_round_trips_through_nir_in_talon_metadata():
    pytest.importorskip("nir")
    g = demo_mlp(True)
    for node in ("lif1", "lif2"):  # NIR neurons reset to v_reset: snnTorch's 'zero' reset
        g.nodes[node] = g.nodes[node].replace(reset_mode="zero")
    n = ir.to_nir(g)
    assert ir.from_nir(n).nodes["input"].spikes is True
    # NIR's Input has no such flag: without TALON's metadata the input reads back as real-valued
    n.nodes["input"].metadata = {}
    assert ir.from_nir(n).nodes["input"].spikes is False


def test_exporter_declares_spikes_when_told():
    snn = pytest.importorskip("snntorch")
    from talon.bridge import to_ir

    class Net(torch.nn.Module):  # the tutorial's style: neurons hold their state with init_hidden
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(IN, HID)
            self.lif1 = snn.Leaky(beta=0.9, init_hidden=True)
            self.fc2 = torch.nn.Linear(HID, OUT)
            self.lif2 = snn.Leaky(beta=0.9, init_hidden=True, output=True)

        def forward(self, x):
            return self.lif2(self.fc2(self.lif1(self.fc1(x))))[0]

    net = Net()
    assert ir.spike_inputs(to_ir(net, torch.zeros(1, IN))) == []
    g = to_ir(net, torch.zeros(1, IN), spiking_input=True)
    assert ir.spike_inputs(g) == ["input"]
    assert profile_graph(g).spike_driven_layers == ["fc1", "fc2"]
    from snntorch.export_talonir import export_to_ir  # snnTorch's name takes the same keyword

    assert export_to_ir(net, torch.zeros(1, IN), spiking_input=True) == g


# -- the cost table and its consumers ------------------------------------------------------------------


def test_cost_table_prices_the_first_layer_as_event_driven_only_when_the_input_carries_spikes():
    dense, spiking = profile_graph(demo_mlp()), profile_graph(demo_mlp(True))
    assert dense.spike_driven_layers == ["fc2"] and spiking.spike_driven_layers == ["fc1", "fc2"]
    costs = graph_costs(demo_mlp(True))
    assert costs["input"].spike_source and not graph_costs(demo_mlp())["input"].spike_source
    assert spiking.spike_ops == costs["fc1"].event_macs + costs["fc2"].event_macs == IN * HID + HID * OUT
    assert spiking.spike_events == IN + HID + OUT and spiking.spike_inputs == ["input"]
    assert spiking.mac_ops == dense.mac_ops  # the dense count is unchanged: what spikes save is priced per spike
    assert "input 'input' carries spikes" in spiking.summary()
    assert analyze_graph(demo_mlp(True)).spike_inputs == ("input",) and "carries spikes" in analyze_graph(demo_mlp(True)).summary()


@pytest.mark.parametrize("declared", [True, False])
def test_first_layer_ops_and_energy_follow_the_input_rate(cpu, declared):
    """Halve the input spikes, and the first layer's synaptic ops and spike energy halve, exactly."""
    g = demo_mlp(declared)
    full, half = cpu.profile(g, spikes_with(200), T), cpu.profile(g, spikes_with(100), T)
    for p, count in ((full, 200), (half, 100)):
        fc1 = p.layers["fc1"]
        assert fc1.event_driven and fc1.macs == 0
        assert fc1.input_events == count * T and fc1.accumulates == count * T * HID
        assert p.simulation.spike_inputs == {"input": "declared (Input.spikes)" if declared else "binary stimulus (every value 0 or 1)"}
    assert full.layers["fc1"].accumulates == 2 * half.layers["fc1"].accumulates
    assert full.layers["fc1"].spike_energy_uj == 2 * half.layers["fc1"].spike_energy_uj


def test_real_valued_input_keeps_the_first_layer_dense(cpu):
    x = torch.rand(T, B, IN) * 0.5 + 0.25
    p = cpu.profile(demo_mlp(), x, T)
    assert p.simulation.spike_inputs == {} and not p.layers["fc1"].event_driven
    assert p.layers["fc1"].macs == IN * HID * T and p.layers["fc1"].accumulates == 0


def test_consumers_agree_on_the_input_spikes(cpu):
    """cost table ops == the energy profile's accumulates == the NoC model's input packets' spikes."""
    g = demo_mlp(True)
    x = spikes_with(150, seed=3)
    n_spikes = int(x.count_nonzero())
    hw = HardwareSpec(mesh=(4, 4), neurons_per_core=256)
    mapping = map_graph(g, hw, "greedy")
    sim = cpu.simulate(g, x, T, record=["input"])
    prof = cpu.profile(g, simulation=sim, mapping=mapping)
    fc1_cost = graph_costs(g)["fc1"]
    assert sim.input_events["fc1"] == n_spikes  # over the batch; the profile is per sample
    assert prof.layers["fc1"].input_events * B == n_spikes
    assert prof.layers["fc1"].accumulates * B == n_spikes * fc1_cost.fan_out == n_spikes / IN * fc1_cost.event_macs
    k = list(mapping.layers).index("input")
    counts, fired, how = _layer_activity(g, sim, mapping, "input", k, IN)
    assert how == "recorded non-zero input values" and counts.sum() * B == n_spikes
    # without a recording the NoC model takes the count the energy model used, at fc1
    plain = cpu.simulate(g, x, T)
    counts, _, how = _layer_activity(g, plain, mapping, "input", k, IN)
    assert how == "non-zero inputs counted at 'fc1', spread evenly" and counts.sum() * B == pytest.approx(n_spikes)


# -- stimuli --------------------------------------------------------------------------------------------


def test_non_binary_stimulus_on_a_spiking_input_is_refused(cpu):
    x = spikes_with(10)
    x[2, 1, 5] = 0.5
    with pytest.raises(BackendError, match=r"Input 'input' declares spikes.*0\.5 at index \(2, 1, 5\)"):
        cpu.simulate(demo_mlp(True), x, T)
    with pytest.raises(BackendError, match="declares spikes"):
        cpu.profile(demo_mlp(True), torch.rand(B, IN), T)
    # a user's encoder is checked as it runs
    with pytest.raises(BackendError, match=r"from its encoder, steps"):
        cpu.simulate(demo_mlp(True), lambda t: torch.full((B, IN), 0.25), T)
    cpu.simulate(demo_mlp(True), lambda t: (torch.arange(IN) % 3 == t % 3).float().expand(B, IN), T)


def test_spiking_input_defaults_to_rate_coded_stimulus_and_rate_encoder_counts_as_spikes(cpu):
    sim = cpu.simulate(demo_mlp(True), n_steps=T)
    assert "rate-coded" in sim.stimulus and 0 < sim.input_events["fc1"] < IN * T
    sim = cpu.simulate(demo_mlp(), RateEncoder(torch.full((B, IN), 0.2)), T)
    assert sim.spike_inputs == {"input": "binary stimulus (every value 0 or 1)"} and "priced as spikes" in sim.summary()
    assert cpu.simulate(demo_mlp(), n_steps=T).spike_inputs == {}  # the default stimulus is real-valued


def test_fpga_estimate_gives_a_spike_fed_first_layer_no_multipliers(fpga):
    dense = {x.name: x for x in fpga.estimate(demo_mlp(), "zynq7020", reuse_factor=64).layers}
    spiking = {x.name: x for x in fpga.estimate(demo_mlp(True), "zynq7020", reuse_factor=64).layers}
    assert dense["fc1"].dsp > 0 and spiking["fc1"].dsp == 0
    assert dense["fc2"].dsp == spiking["fc2"].dsp == 0 and spiking["lif1"].dsp == dense["lif1"].dsp


def test_an_all_zero_stimulus_is_no_evidence_of_spikes(cpu):
    p = cpu.profile(demo_mlp(), torch.zeros(T, B, IN), T)
    assert p.simulation.spike_inputs == {} and p.layers["fc1"].macs == IN * HID * T
    # declared, all zeros is spikes (none of them): the first layer does nothing
    p = cpu.profile(demo_mlp(True), torch.zeros(T, B, IN), T)
    assert p.layers["fc1"].event_driven and p.layers["fc1"].accumulates == 0


@needs_gxx
def test_spiking_input_verifies_bit_exact_on_the_default_stimulus(fpga, tmp_path):
    """The C simulation gets the same rate-coded default stimulus as the CPU simulation."""
    rng = np.random.default_rng(1)
    g = ir.Graph()
    g.add_node("input", ir.Input(shape=(12,), spikes=True))
    g.add_node("fc1", affine(6, 12, rng, scale=0.8))
    g.add_node("lif1", lif(6))
    g.add_node("output", ir.Output())
    g.chain("input", "fc1", "lif1", "output")
    rep = fpga.verify(g, n_steps=12, work_dir=tmp_path / "prj")
    assert rep.ok, rep.summary()
    assert rep.simulation.spike_inputs == {"input": "declared (Input.spikes)"}


def test_snntorch_user_flow_with_spikegen_rate(cpu):
    """A user's flow: an snnTorch MLP exported as it is, fed snntorch.spikegen.rate spike trains."""
    snn = pytest.importorskip("snntorch")
    from snntorch import spikegen

    from talon.bridge import to_ir

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(IN, HID), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.Linear(HID, OUT), snn.Leaky(beta=0.9, init_hidden=True, output=True))
    g = to_ir(net, torch.zeros(1, IN))
    images = torch.rand(B, IN, generator=torch.Generator().manual_seed(1))
    spk_in = spikegen.rate(images, num_steps=T)  # (T, B, 784) of 0/1
    half = spikegen.rate(images * 0.5, num_steps=T)
    p, q = cpu.profile(g, spk_in), cpu.profile(g, half)
    first = next(iter(g.successors("input")))
    assert p.simulation.spike_inputs == {"input": "binary stimulus (every value 0 or 1)"}
    for prof, x in ((p, spk_in), (q, half)):
        assert prof.layers[first].event_driven and prof.layers[first].accumulates * B == int(x.sum()) * HID
    # half the rate, about half the first layer's synaptic ops (Bernoulli draws: within 10 %)
    assert q.layers[first].accumulates / p.layers[first].accumulates == pytest.approx(0.5, rel=0.1)
