"""snnTorch's Alpha neuron: the runtime and the export reproduce snnTorch 1.0.0 bit for bit (spikes and the
three states E, N, U) in every reset mechanism, for scalar and per-neuron alpha/beta/threshold, learnable
beta and threshold, both calling conventions (init_hidden=True, and states passed in a time loop)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

snn = pytest.importorskip("snntorch")

from talon import ir  # noqa: E402
from talon.bridge.primitives.alpha import AlphaRuntime  # noqa: E402
from talon.bridge.executor import ir_to_torch  # noqa: E402
from talon.bridge.export import export_to_ir, to_ir  # noqa: E402
from talon.errors import PrimitiveError, UnsupportedModuleError  # noqa: E402
from talon.ir.primitives.alpha import Alpha  # noqa: E402

MODES = ("subtract", "zero", "none")
N = 24


def _params(kind: str):
    g = torch.Generator().manual_seed(5)
    if kind == "scalar":
        return dict(alpha=0.9, beta=0.8, threshold=1.0)
    if kind == "per-neuron":
        return dict(alpha=torch.rand(N, generator=g) * 0.25 + 0.7, beta=torch.rand(N, generator=g) * 0.6,
                    threshold=torch.rand(N, generator=g) + 0.5)
    return dict(alpha=0.95, beta=0.3, threshold=0.7, learn_beta=True, learn_threshold=True)


def _node_of(m: nn.Module) -> Alpha:
    graph = to_ir(nn.Sequential(m), torch.zeros(1, N))
    return next(node for node in graph.nodes.values() if isinstance(node, Alpha))


@pytest.mark.parametrize("kind", ["scalar", "per-neuron", "learnable"])
@pytest.mark.parametrize("mode", MODES)
def test_runtime_steps_equal_snntorch_alpha_bit_for_bit(mode, kind):
    """60 steps of random currents, states passed explicitly: spikes, E, N and U identical every step."""
    ref = snn.Alpha(**_params(kind), reset_mechanism=mode)
    rt = AlphaRuntime(_node_of(snn.Alpha(**_params(kind), reset_mechanism=mode)), 1.0)
    xs = torch.randn(60, 3, N, generator=torch.Generator().manual_seed(2)) * 1.5 + 0.4
    se, si, mem = (torch.zeros(3, N) for _ in range(3))
    state, spikes = rt.init_state([xs[0]]), 0.0
    with torch.no_grad():
        for t in range(60):
            spk, se, si, mem = ref(xs[t], se, si, mem)
            out, state = rt.step([xs[t]], state)
            for want, got, what in ((spk, out, "spk"), (se, state[0], "syn_exc"), (si, state[1], "syn_inh"), (mem, state[2], "mem")):
                assert torch.equal(want, got), (mode, kind, t, what)
            spikes += float(spk.sum())
    assert spikes > 20  # the resets really ran


class LoopAlpha(nn.Module):
    """The tutorial style: states created in forward and passed back every step of a time loop."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(8, N)
        self.a1 = snn.Alpha(alpha=0.9, beta=0.7, threshold=0.6, reset_mechanism=mode)
        self.fc2 = nn.Linear(N, 5)
        self.a2 = snn.Alpha(alpha=torch.linspace(0.8, 0.95, 5), beta=0.5, threshold=torch.linspace(0.3, 0.8, 5), reset_mechanism=mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        se1, si1, m1 = self.a1.init_alpha()
        se2, si2, m2 = self.a2.init_alpha()
        out = []
        for step in range(x.shape[0]):
            spk1, se1, si1, m1 = self.a1(self.fc1(x[step]), se1, si1, m1)
            spk2, se2, si2, m2 = self.a2(self.fc2(spk1), se2, si2, m2)
            out.append(spk2)
        return torch.stack(out)


@pytest.mark.parametrize("mode", MODES)
def test_exported_time_loop_model_is_spike_exact_through_a_t1c_file(mode, tmp_path):
    torch.manual_seed(3)
    model = LoopAlpha(mode)
    with torch.no_grad():
        model.fc1.weight.mul_(3.0)
        model.fc2.weight.mul_(3.0)
    x = torch.rand(50, 4, 8) * 1.5
    graph = export_to_ir(model, x[:2])
    assert [n.reset_mode for n in graph.nodes.values() if isinstance(n, Alpha)] == [mode, mode]
    ir.write(tmp_path / "alpha.t1c", graph)
    loaded = ir.read(tmp_path / "alpha.t1c")
    assert loaded == graph
    with torch.no_grad():
        want = model(x)
        got = ir_to_torch(loaded).run(x)
    assert torch.equal(want, got)
    assert 0 < float(want.mean()) < 1


@pytest.mark.parametrize("mode", MODES)
def test_init_hidden_sequential_is_spike_and_state_exact(mode):
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(6, N), snn.Alpha(alpha=0.85, beta=0.6, threshold=0.5, init_hidden=True, reset_mechanism=mode),
                          nn.Linear(N, 4), snn.Alpha(alpha=0.9, beta=0.2, init_hidden=True, output=True, reset_mechanism=mode))
    with torch.no_grad():
        model[0].weight.mul_(2.0)
        model[2].weight.mul_(4.0)
    graph = to_ir(model, torch.zeros(1, 6))
    ex = ir_to_torch(graph, return_state=True)
    names = [n for n, node in graph.nodes.items() if isinstance(node, Alpha)]
    xs = torch.rand(60, 3, 6) * 2.0
    state, fired = None, 0.0
    with torch.no_grad():
        for t in range(60):
            spk, se, si, mem = model(xs[t])
            out, state = ex(xs[t], state=state)
            assert torch.equal(spk, out), t
            assert all(torch.equal(a, b) for a, b in zip((se, si, mem), state[names[1]])), t
            h = model[1]
            assert all(torch.equal(a, b) for a, b in zip((h.syn_exc, h.syn_inh, h.mem), state[names[0]])), t
            fired += float(spk.sum())
    assert fired > 0


def test_exported_fields_are_snntorchs_values():
    m = snn.Alpha(alpha=0.9, beta=0.8, threshold=1.25, reset_mechanism="subtract")
    node = _node_of(m)
    assert node.reset_mode == "subtract" and node.graded_spikes_factor == 1.0
    rt = AlphaRuntime(node, 1.0)
    assert torch.equal(rt.alpha, m.alpha.clamp(0, 1)) and torch.equal(rt.beta, m.beta.clamp(0, 1))
    ln_a, ln_b = torch.log(m.alpha), torch.log(m.beta)
    assert torch.equal(rt.tau_alpha, ln_a / (ln_b - ln_a) + 1)
    assert np.ndim(node.tau_exc) == 0 and np.ndim(node.v_threshold) == 0  # stored at the shape they vary over


def test_graded_spikes_factor_set_after_construction_is_exported():
    """Alpha takes no graded_spikes_factor argument, but has the buffer: a value set later scales its spikes."""
    ref = snn.Alpha(alpha=0.9, beta=0.6, threshold=0.3, reset_mechanism="subtract")
    ref.graded_spikes_factor = torch.tensor(0.75)
    node = _node_of(ref)
    assert node.graded_spikes_factor == 0.75
    rt = AlphaRuntime(node, 1.0)
    xs = torch.rand(30, 2, N, generator=torch.Generator().manual_seed(8))
    se, si, mem = (torch.zeros(2, N) for _ in range(3))
    state = rt.init_state([xs[0]])
    with torch.no_grad():
        for t in range(30):
            spk, se, si, mem = ref(xs[t], se, si, mem)
            out, state = rt.step([xs[t]], state)
            assert torch.equal(spk, out) and torch.equal(mem, state[2])
    assert float(spk.max()) == 0.75


def test_time_unit_change_keeps_the_coefficients_and_nir_refuses_by_name():
    from talon.ir.nir import NIRConversionError
    from talon.ir.primitives import in_time_unit
    from talon.ir.primitives.alpha import alpha_coefficients

    node = Alpha(tau_exc=np.float32(10.0), tau_inh=np.float32(4.0), v_threshold=np.float32(1.0))
    moved = in_time_unit(node, 1e-3)
    for a, b in zip(alpha_coefficients(node, 1.0), alpha_coefficients(moved, 1e-3)):
        assert np.allclose(a, b, rtol=1e-12, atol=0)
    g = ir.Graph({"x": ir.Input(shape=(3,)), "a": node, "y": ir.Output()}, [("x", "a"), ("a", "y")])
    for dt in (None, 1e-4):
        with pytest.raises(NIRConversionError, match=r"'a' \(Alpha\).*NIR has no Alpha neuron"):
            ir.to_nir(g) if dt is None else ir.to_nir(g, dt=dt)


def test_learn_alpha_is_refused_by_snntorch_itself():
    """snnTorch 1.0.0 cannot build Alpha(learn_alpha=True) (it assigns a plain tensor to the parameter)."""
    before = len(snn.SpikingNeuron.instances)
    with pytest.raises(TypeError):
        snn.Alpha(alpha=0.9, beta=0.8, learn_alpha=True)
    # the half-built neuron stays in snnTorch's global instance list, where it would break every later
    # snntorch.utils.reset (reset_hidden reads its missing state): take it out again
    del snn.SpikingNeuron.instances[before:]


def test_refusals_name_the_module():
    with pytest.raises(UnsupportedModuleError, match="inhibition"):
        to_ir(nn.Sequential(nn.Linear(3, 4), snn.Alpha(alpha=0.9, beta=0.8, inhibition=True, init_hidden=True)), torch.zeros(1, 3))
    with pytest.raises(UnsupportedModuleError, match="alpha <= beta"):
        to_ir(nn.Sequential(nn.Linear(3, 4), snn.Alpha(alpha=0.0, beta=-0.5, init_hidden=True)), torch.zeros(1, 3))


def test_node_validation():
    with pytest.raises(PrimitiveError, match="tau_exc > tau_inh"):
        Alpha(tau_exc=np.float32(2.0), tau_inh=np.float32(5.0), v_threshold=np.float32(1.0))
    with pytest.raises(PrimitiveError, match="finite"):
        Alpha(tau_exc=np.float32(np.inf), tau_inh=np.float32(np.inf), v_threshold=np.float32(1.0))
    with pytest.raises(PrimitiveError):
        Alpha(tau_exc=np.float32(5.0), tau_inh=np.float32(2.0), v_threshold=np.float32(1.0), reset_mode="zero_post")
    node = Alpha(tau_exc=np.float32(10.0), tau_inh=np.float32(5.0), v_threshold=np.float32(1.0))
    # tau_alpha derived when not stored: ln(0.9) / (ln(0.8) - ln(0.9)) + 1
    from talon.ir.primitives.alpha import alpha_coefficients
    assert alpha_coefficients(node, 1.0)[2] == pytest.approx(np.log(0.9) / (np.log(0.8) - np.log(0.9)) + 1)


def test_alpha_doc_code_blocks_run(tmp_path, monkeypatch):
    """docs/neurons/alpha.md's example runs as a reader pastes it (and asserts spike-for-spike agreement)."""
    from doc_blocks import run_blocks

    monkeypatch.chdir(tmp_path)
    count, _ = run_blocks("neurons/alpha.md")
    assert count >= 1
