"""A batch size change in the middle of a sequence, without reset(): TALON does what snnTorch does.

snnTorch 1.0 replaces every neuron state whose shape differs from the input's by zeros (Leaky, Synaptic,
RLeaky, ... `if not self.mem.shape == input_.shape: self.mem = torch.zeros_like(input_)`), whether the
state is a hidden one (init_hidden=True) or one the user passes back in. The same user code runs through
snnTorch and through the exported model stepped by TALON (kept state, a passed state, and run()), with
the batch size going 4 -> 2 -> 4 -> 4, and every spike and membrane must be equal (torch.equal).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

snn = pytest.importorskip("snntorch")

from talon.bridge import to_ir  # noqa: E402
from talon.bridge.executor import ir_to_torch  # noqa: E402

from firing import boost  # noqa: E402
from tutorial_models import SimpleSNN  # noqa: E402

T = 6
BATCHES = (4, 2, 4, 4)  # a smaller batch, back to the first size, then the same size again (state carried)


def _inputs(n_in: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.rand(T, b, n_in, generator=g) for b in BATCHES]


class HiddenNet(nn.Module):
    """The snnTorch tutorials' init_hidden style: the neurons keep their own state between calls."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 16)
        self.lif1 = snn.Leaky(beta=0.9, init_hidden=True)
        self.fc2 = nn.Linear(16, 16)
        self.syn = snn.Synaptic(alpha=0.8, beta=0.7, init_hidden=True)
        self.rlif = snn.RLeaky(beta=0.85, linear_features=16, init_hidden=True)
        self.fc3 = nn.Linear(16, 5)
        self.lif2 = snn.Leaky(beta=0.8, init_hidden=True, output=True)

    def forward(self, x):
        s = self.lif1(self.fc1(x))
        s = self.syn(self.fc2(s))
        s = self.rlif(s)
        return self.lif2(self.fc3(s))


def test_hidden_state_models_are_re_zeroed_on_a_new_batch_size_as_in_snntorch():
    net = boost(HiddenNet(), 4.0).eval()
    graph = to_ir(net, torch.zeros(1, 10))
    keeper = ir_to_torch(graph)
    spikes = 0.0
    with torch.no_grad():
        for xs in _inputs(10):
            for x in xs:
                spk, mem = net(x)  # snnTorch, no reset between the sequences
                got = keeper(x)
                assert torch.equal(got, spk)
                assert torch.equal(keeper.state["lif2"][0], mem)
                spikes += float(spk.sum())
    assert spikes > 0


def test_run_continues_and_re_zeroes_like_per_step_calls():
    net = boost(HiddenNet(), 4.0).eval()
    graph = to_ir(net, torch.zeros(1, 10))
    runner = ir_to_torch(graph)
    with torch.no_grad():
        for xs in _inputs(10):
            want = torch.stack([net(x)[0] for x in xs])
            assert torch.equal(runner.run(xs), want)


def test_passed_states_of_another_batch_size_start_from_zeros_as_in_snntorch():
    """The tutorial's SimpleSNN with its states passed back in by the user's loop, across batch sizes."""
    net = boost(SimpleSNN(), 4.0).eval()
    graph = to_ir(net, torch.zeros(1, 784))
    ex = ir_to_torch(graph, return_state=True)
    mem1 = mem2 = None
    state = None
    spikes = 0.0
    with torch.no_grad():
        for xs in _inputs(784):
            for x in xs:
                spk2, mem1, mem2 = net(x, mem1, mem2)  # snnTorch: the states of the old batch are replaced by zeros
                out, state = ex(x, state)
                assert torch.equal(out, spk2)
                lif1, lif2 = (k for k, node in graph.nodes.items() if node.stateful)
                assert torch.equal(state[lif1][0], mem1) and torch.equal(state[lif2][0], mem2)
                spikes += float(spk2.sum())
    assert spikes > 0


def test_the_runtime_docs_example_runs():
    from doc_blocks import python_blocks

    (block,) = [b for b in python_blocks("runtime.md") if "init_hidden=True" in b]
    exec(compile(block, "docs/runtime.md", "exec"), {})


class PassedNet(nn.Module):
    """Synaptic and RLeaky with their states passed in and returned by forward (init_hidden=False)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 12)
        self.syn = snn.Synaptic(alpha=0.8, beta=0.7)
        self.rlif = snn.RLeaky(beta=0.85, linear_features=12)

    def forward(self, x, syn=None, mem1=None, spk2=None, mem2=None):
        if syn is None:
            syn, mem1 = self.syn.init_synaptic()
            spk2, mem2 = self.rlif.init_rleaky()
        spk1, syn, mem1 = self.syn(self.fc(x), syn, mem1)
        spk2, mem2 = self.rlif(spk1, spk2, mem2)
        return spk2, syn, mem1, spk2, mem2


def test_passed_recurrent_and_synaptic_states_of_another_batch_size_start_from_zeros():
    net = boost(PassedNet(), 4.0).eval()
    graph = to_ir(net, torch.zeros(1, 10))
    ex = ir_to_torch(graph, return_state=True)
    states: tuple = ()
    state = None
    spikes = 0.0
    with torch.no_grad():
        for xs in _inputs(10):
            for x in xs:
                spk, *states = net(x, *states)
                out, state = ex(x, state)
                assert torch.equal(out, spk)
                spikes += float(spk.sum())
    assert spikes > 0
