"""snnTorch models written the way snnTorch's tutorials write them, exported and run against snnTorch itself.

Each model is a `class Net(nn.Module)` as in tutorials 5-7 and the regression tutorials: neurons built in
`__init__`, states initialised in `forward` (`mem1 = self.lif1.init_leaky()`), a `for step in range(num_steps)`
loop whose outputs are appended to a list and returned as `torch.stack(spk2_rec, dim=0)`. The exported
graph is one step; stepping the executor T times must reproduce the stacked record spike for spike (and
bit for bit). Forms the IR cannot hold are refused with UnsupportedModuleError naming the module.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

snn = pytest.importorskip("snntorch")
from snntorch import utils  # noqa: E402

from talon import ir  # noqa: E402
from talon.bridge.executor import ir_to_torch  # noqa: E402
from talon.bridge.export import ExportWarning, export_to_ir, to_ir  # noqa: E402
from talon.errors import UnsupportedModuleError  # noqa: E402

from firing import boost as _boost  # noqa: E402

num_steps = 25
batch_size = 4
beta = 0.9


def boost(model: nn.Module, gain: float = 3.0) -> nn.Module:
    return _boost(model, gain, fan_in="channels")


def run_steps(graph: ir.Graph, steps: list[torch.Tensor], tmp_path=None) -> torch.Tensor:
    """The executor of `graph` (through a .t1c file when tmp_path is given) stepped once per input."""
    if tmp_path is not None:
        ir.write(tmp_path / "model.t1c", graph)
        loaded = ir.read(tmp_path / "model.t1c")
        assert loaded == graph and loaded.metadata.get("num_steps") == graph.metadata.get("num_steps")
        graph = loaded
    ex = ir_to_torch(graph)
    with torch.no_grad():
        return torch.stack([ex(x) for x in steps])


def assert_spike_exact(got: torch.Tensor, want: torch.Tensor, min_rate: float = 0.02) -> None:
    assert got.shape == want.shape
    mismatches = int((got != want).sum())
    assert mismatches == 0, f"{mismatches} mismatches of {want.numel()}"
    rate = float((want != 0).float().mean())
    assert min_rate <= rate <= 0.98, f"activity {rate:.3f}: the comparison would prove little"


def export_error(model: nn.Module, sample: torch.Tensor, *fragments: str) -> str:
    with pytest.raises(UnsupportedModuleError) as info:
        to_ir(model, sample)
    msg = str(info.value)
    for f in fragments:
        assert f in msg, msg
    return msg


# -- tutorial 5: a loop over time inside forward, static input --------------------------------------

class Net(nn.Module):
    """Tutorial 5's network, verbatim apart from the sizes."""

    def __init__(self, num_inputs=20, num_hidden=30, num_outputs=10):
        super().__init__()
        self.fc1 = nn.Linear(num_inputs, num_hidden)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc2 = nn.Linear(num_hidden, num_outputs)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        mem2_rec = []
        for step in range(num_steps):
            cur1 = self.fc1(x)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


def test_tutorial5_loop_exports_one_step_and_reproduces_the_record(tmp_path):
    net = boost(Net())
    x = torch.rand(batch_size, 20) * 2
    graph = to_ir(net, x)
    assert list(graph.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "output"]
    assert graph.metadata["num_steps"] == num_steps
    assert graph.metadata["time_loop"] == {"input": "static", "output": "stacked"}
    with torch.no_grad():
        spk2_rec, _ = net(x)
    assert_spike_exact(run_steps(graph, [x] * num_steps, tmp_path), spk2_rec)
    # The executor's multi-step run gives the same record from the repeated static input.
    with torch.no_grad():
        assert torch.equal(ir_to_torch(graph).run(x.expand(num_steps, *x.shape), batch_time=False), spk2_rec)


def test_export_to_ir_and_a_second_export_give_the_same_graph():
    net = boost(Net())
    x = torch.rand(batch_size, 20) * 2
    assert export_to_ir(net, x) == to_ir(net, x)


class IndexedNet(nn.Module):
    """The loop over a (T, B, ...) input, `x[step]` (tutorial 7's data layout)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.lif1 = snn.Leaky(beta=0.8, reset_mechanism="zero")
        self.fc2 = nn.Linear(16, 6)
        self.lif2 = snn.Leaky(beta=0.7, threshold=0.5)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        for step in range(num_steps):
            cur1 = self.fc1(x[step])
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
        return torch.stack(spk2_rec)


class SlicedNet(IndexedNet):
    """The same loop reading `x[step, :, :]` (the regression tutorials' spelling)."""

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x[step, :, :]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
        return torch.stack(spk2_rec, dim=0)


@pytest.mark.parametrize("cls", [IndexedNet, SlicedNet])
def test_loop_over_a_time_major_input(cls, tmp_path):
    net = boost(cls())
    x = torch.rand(num_steps, batch_size, 12) * 2
    graph = to_ir(net, x)
    assert list(graph.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "output"]
    assert graph.nodes["input"].shape == (12,)
    assert graph.metadata["num_steps"] == num_steps and graph.metadata["time_loop"]["input"] == "indexed"
    with torch.no_grad():
        want = net(x)
    assert_spike_exact(run_steps(graph, list(x), tmp_path), want)
    with torch.no_grad():
        assert torch.equal(ir_to_torch(graph).run(x, batch_time=False), want)


class LastStepNet(Net):
    """A loop that returns only the last step's spikes and membrane."""

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
        return spk2, mem2


def test_loop_returning_the_last_step_keeps_names_and_records_the_length():
    net = boost(LastStepNet())
    x = torch.rand(batch_size, 20) * 2
    graph = to_ir(net, x)
    assert list(graph.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "output"]
    assert graph.metadata["num_steps"] == num_steps
    assert graph.metadata["time_loop"] == {"input": "static", "output": "last"}
    full_net = Net()
    full_net.load_state_dict(net.state_dict())
    with torch.no_grad():
        spk2, _ = net(x)
        full = full_net(x)[0]
    got = run_steps(graph, [x] * num_steps)
    assert torch.equal(got[-1], spk2)
    assert_spike_exact(got, full)


class SynapticRecurrentNet(nn.Module):
    """Synaptic and RLeaky in a loop, every state passed explicitly (spk, syn, mem)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 16)
        self.syn1 = snn.Synaptic(alpha=0.6, beta=0.8)
        self.fc2 = nn.Linear(16, 8)
        self.rlif2 = snn.RLeaky(beta=0.85, linear_features=8, reset_mechanism="zero")

    def forward(self, x):
        syn1, mem1 = self.syn1.init_synaptic()
        spk2, mem2 = self.rlif2.init_rleaky()
        spk2_rec = []
        for step in range(num_steps):
            spk1, syn1, mem1 = self.syn1(self.fc1(x[step]), syn1, mem1)
            spk2, mem2 = self.rlif2(self.fc2(spk1), spk2, mem2)
            spk2_rec.append(spk2)
        return torch.stack(spk2_rec, dim=0)


def test_synaptic_and_rleaky_states_carried_through_the_loop():
    net = boost(SynapticRecurrentNet())
    x = torch.rand(num_steps, batch_size, 10) * 2
    graph = to_ir(net, x)
    assert list(graph.nodes) == ["input", "fc1", "syn1", "fc2", "rlif2", "rlif2.recurrent", "output"]
    with torch.no_grad():
        want = net(x)
    assert_spike_exact(run_steps(graph, list(x)), want)


class HiddenStateNet(nn.Module):
    """init_hidden neurons in a loop, the network reset at the start of forward."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 16)
        self.lif1 = snn.Leaky(beta=0.9, init_hidden=True)
        self.fc2 = nn.Linear(16, 4)
        self.lif2 = snn.Leaky(beta=0.9, init_hidden=True, output=True)

    def forward(self, x):
        utils.reset(self)
        spk_rec = []
        for step in range(num_steps):
            spk, mem = self.lif2(self.fc2(self.lif1(self.fc1(x[step]))))
            spk_rec.append(spk)
        return torch.stack(spk_rec)


def test_init_hidden_neurons_in_a_loop():
    net = boost(HiddenStateNet())
    x = torch.rand(num_steps, batch_size, 10) * 2
    graph = to_ir(net, x)
    assert list(graph.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "output"]
    with torch.no_grad():
        want = net(x)
    assert_spike_exact(run_steps(graph, list(x)), want)


def test_a_stateless_loop_is_one_step_too():
    class Readout(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 3)

        def forward(self, x):
            out = []
            for step in range(5):
                out.append(torch.relu(self.fc(x[step])))
            return torch.stack(out)

    net = Readout()
    x = torch.randn(5, batch_size, 6)
    graph = to_ir(net, x)
    assert list(graph.nodes) == ["input", "fc", "relu", "output"] and graph.metadata["num_steps"] == 5
    with torch.no_grad():
        assert torch.equal(run_steps(graph, list(x)), net(x))


# -- what a loop must not do ------------------------------------------------------------------------

class TwiceHidden(nn.Module):
    """One init_hidden neuron module called twice per step: snnTorch shares its one membrane."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(10, 10)
        self.lif = snn.Leaky(beta=0.9, init_hidden=True)
        self.fc2 = nn.Linear(10, 10)

    def forward(self, x):
        utils.reset(self)
        rec = []
        for step in range(num_steps):
            rec.append(self.lif(self.fc2(self.lif(self.fc1(x)))))
        return torch.stack(rec)


class TwiceExplicit(nn.Module):
    """The same neuron called twice in one step, its membrane passed from one call to the next."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(10, 10)
        self.lif = snn.Leaky(beta=0.9)

    def forward(self, x, mem=None):
        mem = self.lif.init_leaky() if mem is None else mem
        spk, mem = self.lif(self.fc(x), mem)
        spk, mem = self.lif(self.fc(spk), mem)
        return spk, mem


@pytest.mark.parametrize("model", [TwiceHidden(), TwiceExplicit()], ids=["init_hidden-loop", "explicit-one-step"])
def test_one_neuron_called_twice_per_step_is_refused(model):
    export_error(model, torch.randn(batch_size, 10), "'lif'", "called 2 times", "its own neuron module")


class FeedbackNet(nn.Module):
    """A loop feeding last step's output spikes back into a layer: data crossing steps, not a neuron state."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 8)
        self.lif1 = snn.Leaky(beta=0.9)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk1 = torch.zeros_like(x)
        rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x + spk1), mem1)
            rec.append(spk1)
        return torch.stack(rec)


def test_data_fed_back_across_steps_is_refused():
    msg = export_error(FeedbackNet(), torch.randn(batch_size, 8), "'lif1'", "called 25 times")
    assert "computed in an earlier step of the loop" in msg and "test_tutorial_forms.py" in msg


class CrossedStates(nn.Module):
    """lif2 started from lif1's membrane (the state argument would be ignored)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 6)
        self.lif1 = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(6, 6)
        self.lif2 = snn.Leaky(beta=0.9)

    def forward(self, x, mem1=None):
        mem1 = self.lif1.init_leaky() if mem1 is None else mem1
        spk1, mem1 = self.lif1(self.fc1(x), mem1)
        spk2, mem2 = self.lif2(self.fc2(spk1), mem1)
        return spk2, mem2


class NonZeroStart(nn.Module):
    """A non-zero initial membrane built in forward."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.lif = snn.Leaky(beta=0.9)

    def forward(self, x, mem=None):
        cur = self.fc(x)
        if mem is None:
            mem = torch.full_like(cur, 0.5)
        return self.lif(cur, mem)


class LoopFromInput(nn.Module):
    """A loop whose membrane starts from the input."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.lif = snn.Leaky(beta=0.9)

    def forward(self, x):
        mem = self.fc(x)
        rec = []
        for step in range(4):
            spk, mem = self.lif(self.fc(x), mem)
            rec.append(spk)
        return torch.stack(rec)


@pytest.mark.parametrize("model,fragment", [
    (CrossedStates(), "starts from the state (output 1) of neuron 'lif1'"),
    (NonZeroStart(), "non-zero initial mem"),
    (LoopFromInput(), "computed from the input"),
], ids=["other-neuron", "non-zero", "from-input"])
def test_initial_states_the_ir_cannot_carry_are_refused(model, fragment):
    msg = export_error(model, torch.randn(batch_size, 6), fragment)
    assert "an IR neuron starts from zero" in msg and "return_state=True" in msg


# -- a one-step forward that resets its neurons on every call ------------------------------------

class ConvNet(nn.Module):
    """Tutorial 6's class-based network, verbatim: one step, states initialised in forward."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 12, 5)
        self.lif1 = snn.Leaky(beta=beta)
        self.conv2 = nn.Conv2d(12, 64, 5)
        self.lif2 = snn.Leaky(beta=beta)
        self.fc1 = nn.Linear(64 * 4 * 4, 10)
        self.lif3 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        mem3 = self.lif3.init_leaky()
        cur1 = F.max_pool2d(self.conv1(x), 2)
        spk1, mem1 = self.lif1(cur1, mem1)
        cur2 = F.max_pool2d(self.conv2(spk1), 2)
        spk2, mem2 = self.lif2(cur2, mem2)
        cur3 = self.fc1(spk2.view(batch_size, -1))
        spk3, mem3 = self.lif3(cur3, mem3)
        return spk3, mem3


def test_tutorial6_class_net_is_memoryless_and_exported_as_what_it_computes():
    net = boost(ConvNet(), gain=4.0)
    x = torch.rand(batch_size, 1, 28, 28)
    with pytest.warns(ExportWarning, match="'lif1'.*Threshold"):
        graph = to_ir(net, x)
    assert [type(n).__name__ for n in graph.nodes.values()] == [
        "Input", "Conv2d", "MaxPool2d", "Threshold", "Conv2d", "MaxPool2d", "Threshold", "Flatten", "Affine",
        "Threshold", "Output"]
    xs = [torch.rand(batch_size, 1, 28, 28) * 2 for _ in range(6)]
    with torch.no_grad():
        want = torch.stack([net(x)[0] for x in xs])
    assert_spike_exact(run_steps(graph, xs), want)


def test_memoryless_graded_spikes_and_refusals():
    class Graded(nn.Module):
        def __init__(self, neuron):
            super().__init__()
            self.fc = nn.Linear(6, 6)
            self.lif = neuron

        def forward(self, x):
            mem = self.lif.init_leaky()
            spk, mem = self.lif(self.fc(x), mem)
            return spk

    net = boost(Graded(snn.Leaky(beta=0.9, graded_spikes_factor=2.5)))
    with pytest.warns(ExportWarning):
        graph = to_ir(net, torch.randn(1, 6))
    xs = [torch.randn(batch_size, 6) for _ in range(5)]
    with torch.no_grad():
        want = torch.stack([net(x) for x in xs])
    assert_spike_exact(run_steps(graph, xs), want)
    export_error(Graded(snn.Leaky(beta=0.9, threshold=-0.5)), torch.randn(1, 6), "'lif'", "negative threshold")

    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)
            self.lif = snn.RLeaky(beta=0.9, linear_features=6)

        def forward(self, x):
            spk, mem = self.lif.init_rleaky()
            spk, mem = self.lif(self.fc(x), spk, mem)
            return spk

    export_error(Recurrent(), torch.randn(1, 6), "'lif'", "memoryless", "loop over time inside forward")


# -- tutorial 6 layers inside a loop ---------------------------------------------------------------

class PoolNet(nn.Module):
    """F.max_pool2d, F.avg_pool2d, nn.AdaptiveAvgPool2d and x.view(B, -1) in a time loop."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.lif1 = snn.Leaky(beta=beta)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.lif2 = snn.Leaky(beta=beta)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc1 = nn.Linear(8 * 2 * 2, 5)
        self.lif3 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        mem3 = self.lif3.init_leaky()
        spk3_rec = []
        for step in range(num_steps):
            cur1 = F.max_pool2d(self.conv1(x[step]), 2)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = F.avg_pool2d(self.conv2(spk1), kernel_size=2, stride=2)
            spk2, mem2 = self.lif2(cur2, mem2)
            cur3 = self.fc1(self.pool(spk2).view(x.size(1), -1))
            spk3, mem3 = self.lif3(cur3, mem3)
            spk3_rec.append(spk3)
        return torch.stack(spk3_rec, dim=0)


def test_pooling_and_view_in_a_loop():
    net = boost(PoolNet(), gain=5.0)
    x = torch.rand(num_steps, batch_size, 1, 16, 16) * 2
    graph = to_ir(net, x)
    assert [type(n).__name__ for n in graph.nodes.values()] == [
        "Input", "Conv2d", "MaxPool2d", "LIF", "Conv2d", "AvgPool2d", "LIF", "AvgPool2d", "Flatten", "Affine", "LIF",
        "Output"]
    assert graph.nodes["pool"].kernel_size == (2, 2)
    with torch.no_grad():
        want = net(x)
    assert_spike_exact(run_steps(graph, list(x)), want)


@pytest.mark.parametrize("size,fragment", [((3, 3), "does not divide"), (1, "global mean")])
def test_adaptive_pooling_that_avgpool_cannot_reproduce(size, fragment):
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.AdaptiveAvgPool2d(size), nn.Flatten())
    export_error(model, torch.randn(1, 1, 8, 8), "'1'", fragment)


# -- the regression tutorials' readout: the membrane of a reset-free Leaky -----------------------

class Regression(nn.Module):
    def __init__(self, readout_beta=0.8, reset="none"):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.lif1 = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(16, 1)
        self.li = snn.Leaky(beta=readout_beta, reset_mechanism=reset)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.li.init_leaky()
        mem2_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            spk2, mem2 = self.li(self.fc2(spk1), mem2)
            mem2_rec.append(mem2)
        return torch.stack(mem2_rec)


@pytest.mark.parametrize("readout_beta,kind", [(0.8, "LI"), (1.0, "Integrator")])
def test_membrane_of_a_reset_free_leaky_is_an_exact_readout(readout_beta, kind, tmp_path):
    net = boost(Regression(readout_beta))
    x = torch.rand(num_steps, batch_size, 8) * 2
    graph = to_ir(net, x)
    assert type(graph.nodes["li"]).__name__ == kind
    with torch.no_grad():
        want = net(x)
    got = run_steps(graph, list(x), tmp_path)
    assert torch.equal(got, want) and float(want.abs().max()) > 0


def test_membrane_readout_of_a_resetting_leaky_is_refused():
    export_error(Regression(reset="subtract"), torch.rand(num_steps, batch_size, 8), "'li'", "reset_mechanism='none'")


# -- warnings and foreign libraries ---------------------------------------------------------------

def test_dropout_and_batchnorm_in_training_mode_warn():
    class WithDropout(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)
            self.drop = nn.Dropout(0.3)
            self.bn = nn.BatchNorm1d(6)
            self.lif = snn.Leaky(beta=0.9, init_hidden=True)

        def forward(self, x):
            return self.lif(self.bn(self.drop(self.fc(x))))

    model = WithDropout()
    with pytest.warns(ExportWarning, match="training mode.*'drop': dropout.*'bn': batch norm"):
        to_ir(model, torch.randn(1, 6))
    assert model.training  # the model is left as it was
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_ir(model, torch.randn(1, 6))


def _foreign(module_name: str, class_name: str) -> type:
    """A stand-in for a Norse or SpikingJelly neuron: a module whose class lives in that package and whose
    forward (a state tuple, data-dependent branches) torch.fx cannot trace."""

    def forward(self, x, state=None):
        if state is None or bool((x > 0).any()):
            state = torch.zeros_like(x)
        return x + state, state

    return type(class_name, (nn.Module,), {"__module__": module_name, "forward": forward})


@pytest.mark.parametrize("module_name,class_name,library", [
    ("norse.torch.module.lif", "LIFCell", "Norse"),
    ("spikingjelly.activation_based.neuron", "LIFNode", "SpikingJelly"),
])
def test_norse_and_spikingjelly_modules_are_named_and_pointed_to_nir(module_name, class_name, library):
    model = nn.Sequential(nn.Linear(4, 4), _foreign(module_name, class_name)())
    export_error(model, torch.randn(1, 4), "'1'", f"{module_name}.{class_name}", library, "NIR", "from_nir")
    export_error(_foreign(module_name, class_name)(), torch.randn(1, 4), library, "NIR")


def test_functional_dropout_that_always_drops_is_refused():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, x):
            return F.dropout(self.fc(x), 0.2)  # training=True by default: random even in eval mode

    export_error(Net(), torch.randn(1, 6), "training=True", "training=self.training")

    class Fixed(Net):
        def forward(self, x):
            return F.dropout(self.fc(x), 0.2, training=self.training)

    assert "Dropout" in [type(n).__name__ for n in to_ir(Fixed(), torch.randn(1, 6)).nodes.values()]


class SizedLoop(nn.Module):
    """The loop length read from the input: range(x.size(0)), range(len(x)), range(x.shape[0]), for x_t in x."""

    def __init__(self, form):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(5, 6)
        self.lif1 = snn.Leaky(beta=0.9)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk1_rec = []
        if self.form == "iter":
            for x_t in x:
                spk1, mem1 = self.lif1(self.fc1(x_t), mem1)
                spk1_rec.append(spk1)
            return torch.stack(spk1_rec)
        steps = {"size": x.size(0), "len": len(x), "shape": x.shape[0]}[self.form]
        for step in range(steps):
            spk1, mem1 = self.lif1(self.fc1(x[step].view(x.size(1), -1)), mem1)
            spk1_rec.append(spk1)
        return torch.stack(spk1_rec)


@pytest.mark.parametrize("form", ["size", "len", "shape", "iter"])
def test_loop_length_read_from_the_input(form):
    net = boost(SizedLoop(form))
    x = torch.rand(7, batch_size, 5) * 2
    graph = to_ir(net, x)
    assert list(graph.nodes) == ["input", "fc1", "lif1", "output"] and graph.metadata["num_steps"] == 7
    with torch.no_grad():
        want = net(x)
    assert_spike_exact(run_steps(graph, list(x)), want)


class RestartedEveryStep(nn.Module):
    """init_leaky() inside the loop: snnTorch restarts the neuron on every step."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 6)
        self.lif1 = snn.Leaky(beta=0.9)

    def forward(self, x):
        spk1_rec = []
        for step in range(num_steps):
            mem1 = self.lif1.init_leaky()
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk1_rec.append(spk1)
        return torch.stack(spk1_rec)


def test_a_neuron_restarted_on_every_step_is_refused():
    export_error(RestartedEveryStep(), torch.randn(batch_size, 6), "'lif1'", "set anew on every step", "before the loop")


class HoistedNet(Net):
    """Tutorial 5 with the first layer's current computed once, before the loop."""

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        cur1 = self.fc1(x.flatten(1))
        spk2_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(cur1, mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
        return torch.stack(spk2_rec, dim=0)


def test_work_before_the_loop_is_part_of_every_step():
    net = boost(HoistedNet())
    x = torch.rand(batch_size, 4, 5) * 2
    graph = to_ir(net, x)
    assert list(graph.nodes) == ["input", "flatten", "fc1", "lif1", "fc2", "lif2", "output"]
    with torch.no_grad():
        want = net(x)
    assert_spike_exact(run_steps(graph, [x] * num_steps), want)


class TwoReads(nn.Module):
    """x[step] read twice in one step: one IR input."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(5, 6)
        self.fc2 = nn.Linear(5, 6)
        self.lif1 = snn.Leaky(beta=0.9)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk1_rec = []
        for step in range(6):
            spk1, mem1 = self.lif1(self.fc1(x[step]) + self.fc2(x[step]), mem1)
            spk1_rec.append(spk1)
        return torch.stack(spk1_rec)


def test_the_step_input_read_twice():
    net = boost(TwoReads())
    x = torch.rand(6, batch_size, 5) * 2
    graph = to_ir(net, x)
    assert graph.predecessors("fc1") == ["input"] and graph.predecessors("fc2") == ["input"]
    with torch.no_grad():
        want = net(x)
    assert_spike_exact(run_steps(graph, list(x)), want)


def test_memoryless_membrane_readout_is_refused():
    class Readout(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 6)
            self.li = snn.Leaky(beta=0.9, reset_mechanism="none")

        def forward(self, x):
            mem = self.li.init_leaky()
            spk, mem = self.li(self.fc(x), mem)
            return mem

    with pytest.warns(ExportWarning):
        export_error(Readout(), torch.randn(1, 6), "'li'", "restarts it on every call")


def test_the_way_forward_for_a_non_zero_start_works():
    """The refusal says: keep the state out of forward and give it to the executor. That is exact."""
    model = boost(NonZeroStart())
    x = torch.randn(batch_size, 6)
    msg = export_error(model, x, "{'lif': (mem,)}")
    assert "ir_to_torch(graph, return_state=True)" in msg

    class Stepper(NonZeroStart):
        def forward(self, x, mem=None):
            return self.lif(self.fc(x), mem)

    stepper = Stepper()
    stepper.load_state_dict(model.state_dict())
    ex = ir_to_torch(to_ir(stepper, x), return_state=True)
    state = {"lif": (torch.full((batch_size, 6), 0.5),)}
    mem = torch.full((batch_size, 6), 0.5)
    xs = [torch.randn(batch_size, 6) for _ in range(8)]
    got, want = [], []
    with torch.no_grad():
        for x_t in xs:
            out, state = ex(x_t, state)
            spk, mem = stepper(x_t, mem)
            got.append(out)
            want.append(spk)
    assert_spike_exact(torch.stack(got), torch.stack(want))


class RegressionNet(nn.Module):
    """The regression tutorial's network (part 1), as written there: per-neuron learnable β and θ, an x[step, :, :]
    loop, and a reset-free Leaky output whose membrane is the prediction."""

    def __init__(self, timesteps, hidden):
        super().__init__()
        self.timesteps = timesteps
        self.hidden = hidden
        beta_in = torch.rand(self.hidden)
        thr_in = torch.rand(self.hidden)
        self.fc_in = torch.nn.Linear(in_features=1, out_features=self.hidden)
        self.lif_in = snn.Leaky(beta=beta_in, threshold=thr_in, learn_beta=True)
        beta_hidden = torch.rand(self.hidden)
        thr_hidden = torch.rand(self.hidden)
        self.fc_hidden = torch.nn.Linear(in_features=self.hidden, out_features=self.hidden)
        self.lif_hidden = snn.Leaky(beta=beta_hidden, threshold=thr_hidden, learn_beta=True)
        beta_out = torch.rand(1)
        self.fc_out = torch.nn.Linear(in_features=self.hidden, out_features=1)
        self.li_out = snn.Leaky(beta=beta_out, threshold=1.0, learn_beta=True, reset_mechanism="none")

    def forward(self, x):
        mem_1 = self.lif_in.init_leaky()
        mem_2 = self.lif_hidden.init_leaky()
        mem_3 = self.li_out.init_leaky()
        mem_3_rec = []
        for step in range(self.timesteps):
            x_timestep = x[step, :, :]
            cur_in = self.fc_in(x_timestep)
            spk_in, mem_1 = self.lif_in(cur_in, mem_1)
            cur_hidden = self.fc_hidden(spk_in)
            spk_hidden, mem_2 = self.lif_hidden(cur_hidden, mem_2)
            cur_out = self.fc_out(spk_hidden)
            _, mem_3 = self.li_out(cur_out, mem_3)
            mem_3_rec.append(mem_3)
        return torch.stack(mem_3_rec)


def test_regression_tutorial_network(tmp_path):
    torch.manual_seed(3)
    net = RegressionNet(timesteps=40, hidden=32)
    x = torch.rand(40, batch_size, 1) * 3
    graph = to_ir(net, x)
    assert [type(n).__name__ for n in graph.nodes.values()] == [
        "Input", "Affine", "LIF", "Affine", "LIF", "Affine", "LI", "Output"]
    assert graph.metadata["num_steps"] == 40
    with torch.no_grad():
        want = net(x)
    got = run_steps(graph, list(x), tmp_path)
    assert torch.equal(got, want) and float(want.abs().max()) > 0


def test_a_loop_whose_result_is_reduced_inside_forward_is_refused():
    class Counts(Net):
        def forward(self, x):
            spk2_rec, _ = super().forward(x)
            return spk2_rec.sum(dim=0)

    export_error(Counts(), torch.rand(batch_size, 20), "'lif1'", "called 25 times", "reduce it, e.g. .sum(0), outside")


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


class AnyLoop(nn.Module):
    """A tutorial-style loop over any length, reset mechanism and input layout."""

    def __init__(self, steps, reset, indexed, synaptic):
        super().__init__()
        self.steps, self.indexed = steps, indexed
        self.fc1 = nn.Linear(5, 7)
        self.lif1 = snn.Synaptic(alpha=0.7, beta=0.8, reset_mechanism=reset) if synaptic else \
            snn.Leaky(beta=0.85, reset_mechanism=reset)
        self.fc2 = nn.Linear(7, 3)
        self.lif2 = snn.Leaky(beta=0.6, threshold=0.7, reset_mechanism=reset)

    def forward(self, x):
        synaptic = isinstance(self.lif1, snn.Synaptic)
        syn1, mem1 = self.lif1.init_synaptic() if synaptic else (None, self.lif1.init_leaky())
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        for step in range(self.steps):
            cur1 = self.fc1(x[step] if self.indexed else x)
            if synaptic:
                spk1, syn1, mem1 = self.lif1(cur1, syn1, mem1)
            else:
                spk1, mem1 = self.lif1(cur1, mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
        return torch.stack(spk2_rec, dim=0)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.integers(2, 12), reset=st.sampled_from(["subtract", "zero", "none"]), indexed=st.booleans(),
       synaptic=st.booleans(), seed=st.integers(0, 2**16))
def test_any_loop_length_and_layout_is_exact(steps, reset, indexed, synaptic, seed):
    torch.manual_seed(seed)
    net = boost(AnyLoop(steps, reset, indexed, synaptic))
    x = torch.rand(steps, 3, 5) * 3 if indexed else torch.rand(3, 5) * 3
    graph = to_ir(net, x)
    assert graph.metadata["num_steps"] == steps
    assert list(graph.nodes) == ["input", "fc1", "lif1", "fc2", "lif2", "output"]
    with torch.no_grad():
        want = net(x)
    got = run_steps(graph, list(x) if indexed else [x] * steps)
    assert torch.equal(got, want)


def test_one_neuron_object_twice_in_a_sequential_is_refused():
    lif = snn.Leaky(beta=0.9, init_hidden=True)
    model = nn.Sequential(nn.Linear(10, 10), lif, nn.Linear(10, 10), lif)
    export_error(model, torch.randn(batch_size, 10), "'1'", "called 2 times")


def test_memoryless_synaptic_is_a_threshold_too():
    class OneStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(6, 8)
            self.syn = snn.Synaptic(alpha=0.8, beta=0.7, threshold=0.4)

        def forward(self, x):
            syn, mem = self.syn.init_synaptic()
            spk, syn, mem = self.syn(self.fc(x), syn, mem)
            return spk

    net = boost(OneStep())
    with pytest.warns(ExportWarning, match="'syn'"):
        graph = to_ir(net, torch.randn(1, 6))
    assert type(graph.nodes["syn"]).__name__ == "Threshold"
    xs = [torch.randn(batch_size, 6) for _ in range(6)]
    with torch.no_grad():
        want = torch.stack([net(x) for x in xs])
    assert_spike_exact(run_steps(graph, xs), want)
