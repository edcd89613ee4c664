"""Session 7's trust audit: snnTorch models written as snnTorch users write them, against TALON's export.

Each model is exported (`to_ir` or `export_to_ir`), written to a .t1c file and read back, and the executor is run
against snnTorch itself on the same inputs: every output value **and every neuron state** (membrane, synaptic
current, Alpha's two currents) must be bit-identical at every step. Where TALON refuses, the test pins the exact
error type and that the message names the module at fault and a way forward. Forms the earlier audits
(test_user_forms_audit.py, test_independent_audit.py, test_tutorial_forms.py, test_fidelity.py) already cover
are not repeated here: these are reset_delay=False with every reset and gsf, surrogate_disable, int/shape-(1,)
constants, every Synaptic/Alpha/RLeaky/RSynaptic variant with its states compared, the regression tutorial's
`rlif.V = ...`, pooling/flatten variants, BatchNormTT, LeakyParallel and the other snnTorch layers without an IR
form, keyword operands (`torch.add(input=a, other=b)`), division, and batch-first records (`torch.stack(rec, dim=1)`).
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict, namedtuple
from typing import Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.utils.prune  # noqa: F401 - torch.nn.utils.prune is a submodule to import

snn = pytest.importorskip("snntorch")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from snntorch import spikegen, utils  # noqa: E402
from snntorch.functional import quant  # noqa: E402

from talon import ir  # noqa: E402
from talon.backend import get_backend  # noqa: E402
from talon.bridge.executor import ir_to_torch  # noqa: E402
from talon.bridge.export import export_to_ir, to_ir  # noqa: E402
from talon.errors import TalonUsageError, UnsupportedModuleError  # noqa: E402

from firing import boost  # noqa: E402

T, B = 8, 3
num_steps = T
beta = 0.9
_gen = torch.Generator().manual_seed(7)
SEQ = torch.rand(T, B, 12, generator=_gen)
IMG = torch.rand(T, B, 1, 8, 8, generator=_gen)
SIG = torch.rand(T, B, 1, 12, generator=_gen)
STATIC = torch.rand(B, 12, generator=_gen)
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def roundtrip(graph: ir.Graph, tmp_path) -> ir.Graph:
    path = tmp_path / "m.t1c"
    ir.write(path, graph)
    loaded = ir.read(path)
    assert loaded == graph
    return loaded


def export(model: nn.Module, sample: torch.Tensor, api: Callable = to_ir) -> ir.Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return api(model, sample)


def snn_states(neuron: nn.Module) -> list[torch.Tensor]:
    """snnTorch's state tensors in the order of the IR runtime's state tuple (currents before the membrane)."""
    names = [a for a in ("syn_exc", "syn_inh", "syn", "mem") if isinstance(getattr(neuron, a, None), torch.Tensor)]
    return [getattr(neuron, a) for a in names]


def ir_states(state: dict, name: str) -> list[torch.Tensor]:
    value = state[name]
    return list(value) if isinstance(value, (tuple, list)) else [value]


def first(out):
    return out[0] if isinstance(out, tuple) else out


# ------------------------------------------------------------------------------------------------
# one-step models (init_hidden neurons) stepped by the caller: outputs and every state compared
# ------------------------------------------------------------------------------------------------

def L(**kw) -> nn.Module:
    return snn.Leaky(beta=beta, init_hidden=True, **kw)


def seq(neuron: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Linear(12, 8), neuron)


class KeywordOps(nn.Module):
    """Binary ops written with keyword operands, and divisions by a power of two ((a + b) / 2, SEW style)."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fa, self.fb = nn.Linear(12, 8), nn.Linear(12, 8)
        self.lif = L()

    def forward(self, x):
        a, b = self.fa(x), self.fb(x)
        h = {"add_input_other": lambda: torch.add(input=a, other=b),
             "add_other": lambda: torch.add(a, other=b),
             "method_add_other": lambda: a.add(other=b),
             "mul_other": lambda: torch.mul(a, other=2.5),
             "average": lambda: (a + b) / 2,
             "div_method": lambda: a.div(0.25),
             "div_other": lambda: torch.div(a, other=-4.0),
             "true_divide": lambda: torch.true_divide(a, 0.5)}[self.form]()
        return self.lif(h)


STEPPED: dict[str, tuple[Callable[[], nn.Module], torch.Tensor]] = {
    # surrogates: a hand-written one whose forward is the step, and snnTorch's own (their forward is the step)
    "spike_grad_custom_step": (lambda: seq(L(spike_grad=lambda x: (x > 0).float())), SEQ),
    "spike_grad_custom_surrogate": (lambda: seq(L(spike_grad=snn.surrogate.custom_surrogate(
        lambda input_, grad_input, spikes: grad_input))), SEQ),
    "spike_grad_sparse_fast_sigmoid": (lambda: seq(L(spike_grad=snn.surrogate.SFS(slope=25, B=1))), SEQ),
    # Leaky: every reset with reset_delay=False, graded spikes with each reset, constants as users pass them
    "leaky_zero_no_delay": (lambda: seq(L(reset_mechanism="zero", reset_delay=False)), SEQ),
    "leaky_none_no_delay": (lambda: seq(L(reset_mechanism="none", reset_delay=False)), SEQ),
    "leaky_graded_no_delay": (lambda: seq(L(graded_spikes_factor=2.0, reset_delay=False)), SEQ),
    "leaky_graded_zero": (lambda: seq(L(graded_spikes_factor=2.0, reset_mechanism="zero")), SEQ),
    "leaky_surrogate_disable": (lambda: seq(L(surrogate_disable=True)), SEQ),
    "leaky_int_threshold": (lambda: seq(snn.Leaky(beta=0.9, threshold=1, init_hidden=True)), SEQ),
    "leaky_int_beta_one_is_if": (lambda: seq(snn.Leaky(beta=1, init_hidden=True)), SEQ),
    "leaky_beta_zero": (lambda: seq(snn.Leaky(beta=0.0, init_hidden=True)), SEQ),
    "leaky_shape_1_tensors": (lambda: seq(snn.Leaky(beta=torch.tensor([0.9]), threshold=torch.tensor([0.8]),
                                                    init_hidden=True)), SEQ),
    "leaky_per_neuron_learnable_zero": (lambda: seq(snn.Leaky(
        beta=torch.linspace(0.2, 0.95, 8), threshold=torch.linspace(0.5, 1.4, 8), learn_beta=True,
        learn_threshold=True, reset_mechanism="zero", init_hidden=True)), SEQ),
    "leaky_negative_threshold_zero": (lambda: seq(L(threshold=-0.2, reset_mechanism="zero")), SEQ),
    # Synaptic and Alpha, every reset (their currents compared too)
    "synaptic_no_delay": (lambda: seq(snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True, reset_delay=False)), SEQ),
    "synaptic_none": (lambda: seq(snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True, reset_mechanism="none")), SEQ),
    "synaptic_zero_no_delay": (lambda: seq(snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True, reset_mechanism="zero",
                                                        reset_delay=False)), SEQ),
    "synaptic_output_true": (lambda: seq(snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True, output=True)), SEQ),
    "alpha_zero": (lambda: seq(snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True, reset_mechanism="zero")), SEQ),
    "alpha_none": (lambda: seq(snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True, reset_mechanism="none")), SEQ),
    "alpha_learnable_per_neuron_threshold": (lambda: seq(snn.Alpha(
        alpha=0.9, beta=0.8, threshold=torch.linspace(0.3, 1.2, 8), learn_threshold=True, init_hidden=True)), SEQ),
    "alpha_output_true": (lambda: seq(snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True, output=True)), SEQ),
    "lapicque_beta_output_true": (lambda: seq(snn.Lapicque(beta=0.5, threshold=0.3, init_hidden=True, output=True)), SEQ),
    "rsynaptic_output_true": (lambda: seq(snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=8, init_hidden=True,
                                                        output=True)), SEQ),
    # RLeaky / RSynaptic: the recurrence forms of snnTorch's docs and the regression tutorial
    "rleaky_one_to_one_default_V": (lambda: seq(snn.RLeaky(beta=0.9, all_to_all=False, init_hidden=True)), SEQ),
    "rleaky_one_to_one_scalar_V": (lambda: seq(snn.RLeaky(beta=0.9, all_to_all=False, V=0.5, init_hidden=True)), SEQ),
    "rleaky_one_to_one_learnable_V": (lambda: seq(snn.RLeaky(beta=0.9, all_to_all=False, V=torch.linspace(-0.5, 0.5, 8),
                                                             learn_recurrent=True, init_hidden=True)), SEQ),
    "rleaky_frozen_linear": (lambda: seq(snn.RLeaky(beta=0.9, linear_features=8, learn_recurrent=False,
                                                    init_hidden=True)), SEQ),
    "rleaky_no_delay": (lambda: seq(snn.RLeaky(beta=0.9, linear_features=8, reset_delay=False, init_hidden=True)), SEQ),
    "rleaky_none": (lambda: seq(snn.RLeaky(beta=0.9, linear_features=8, reset_mechanism="none", init_hidden=True)), SEQ),
    "rleaky_output_true": (lambda: seq(snn.RLeaky(beta=0.9, linear_features=8, init_hidden=True, output=True)), SEQ),
    "rsynaptic_zero": (lambda: seq(snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=8, reset_mechanism="zero",
                                                 init_hidden=True)), SEQ),
    "rsynaptic_one_to_one": (lambda: seq(snn.RSynaptic(alpha=0.8, beta=0.9, all_to_all=False, V=0.4,
                                                       init_hidden=True)), SEQ),
    "rsynaptic_conv": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), snn.RSynaptic(
        alpha=0.8, beta=0.9, conv2d_channels=4, kernel_size=3, init_hidden=True), nn.Flatten()), IMG),
    "rleaky_conv_one_to_one_per_channel_V": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), snn.RLeaky(
        beta=0.9, all_to_all=False, V=torch.linspace(-0.4, 0.4, 4).reshape(4, 1, 1), init_hidden=True), nn.Flatten()), IMG),
    # layers around the neurons, in eval mode
    "batchnorm1d_eval": (lambda: nn.Sequential(nn.Linear(12, 8), nn.BatchNorm1d(8), L()), SEQ),
    "batchnormtt_item_without_bias": (lambda: nn.Sequential(nn.Linear(12, 8), snn.BatchNormTT1d(8, 4)[0], L()), SEQ),
    "conv_no_bias_batchnorm_momentum_none": (lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4, eps=1e-3, momentum=None), L(), nn.Flatten()), IMG),
    "dropout_eval": (lambda: nn.Sequential(nn.Linear(12, 8), nn.Dropout(0.5), L()), SEQ),
    "avgpool_ceil_no_pad_count": (lambda: nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.AvgPool2d(4, stride=3, ceil_mode=True, count_include_pad=False), L(),
        nn.Flatten(), nn.Linear(16, 4), L()), IMG),
    "avgpool_padded": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), nn.AvgPool2d(3, padding=1), L(), nn.Flatten(),
                                             nn.Linear(16, 4), L()), IMG),
    "adaptive_avgpool_divides": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.AdaptiveAvgPool2d((4, 4)), L(),
                                                       nn.Flatten(), nn.Linear(64, 4), L()), IMG),
    "flatten_start_dim_2": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), L(), nn.Flatten(start_dim=2),
                                                  nn.Linear(36, 5), L(), nn.Flatten()), IMG),
    "flatten_1_2": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), L(), nn.Flatten(1, 2), nn.Linear(6, 5), L(),
                                          nn.Flatten()), IMG),
    "flatten_negative_dims": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), L(), nn.Flatten(-3, -1), nn.Linear(144, 5),
                                                    L()), IMG),
    "conv1d_audio": (lambda: nn.Sequential(nn.Conv1d(1, 4, 3), L(), nn.Flatten(), nn.Linear(40, 3), L()), SIG),
    "nested_sequentials": (lambda: nn.Sequential(nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), L()),
                                                 nn.Sequential(nn.Flatten(), nn.Linear(144, 4), L(output=True))), IMG),
    "ordered_dict_sequential": (lambda: nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(12, 8)), ("lif1", L()), ("fc2", nn.Linear(8, 4)), ("lif2", L(output=True))])), SEQ),
    "relu_after_spikes": (lambda: nn.Sequential(nn.Linear(12, 8), L(), nn.ReLU(), nn.Linear(8, 4), L()), SEQ),
    # spike encodings as input (tutorial 1): data only, the model is stepped over them
    "spikegen_latency_input": (lambda: nn.Sequential(nn.Linear(12, 8), L(), nn.Linear(8, 4), L()),
                               spikegen.latency(STATIC, num_steps=T, normalize=True, linear=True)),
    "spikegen_delta_input": (lambda: nn.Sequential(nn.Linear(12, 8), L(), nn.Linear(8, 4), L()),
                             spikegen.delta(SEQ, threshold=0.1)),
    # operators written with keywords, and divisions (exported since session 7)
    **{f"op_{form}": (lambda form=form: KeywordOps(form), SEQ) for form in (
        "add_input_other", "add_other", "method_add_other", "mul_other", "average", "div_method", "div_other",
        "true_divide")},
}


#: Weight gains for models whose output layer needs more drive to fire (the default is 3).
GAIN = {"flatten_start_dim_2": 6.0, "ordered_dict_sequential": 5.0}


@pytest.mark.parametrize("name", list(STEPPED))
def test_stepped_model_matches_snntorch_in_every_output_and_state(name, tmp_path):
    build, data = STEPPED[name]
    model = boost(build(), GAIN.get(name, 3.0), layers=LAYERS).eval()
    graph = roundtrip(export(model, data[0]), tmp_path)
    neurons = {n: m for n, m in model.named_modules() if isinstance(m, snn.SpikingNeuron)}
    ex = ir_to_torch(graph, return_state=True)
    utils.reset(model)
    state, active, compared = None, 0.0, 0
    outputs, membranes = [], {path: [] for path in neurons}
    with torch.no_grad():
        for t, x in enumerate(data):
            want = first(model(x))
            got, state = ex(x, state)
            assert got.shape == want.shape
            assert torch.equal(got, want), f"step {t}: {int((got != want).sum())} of {want.numel()} outputs differ"
            active += float((want != 0).float().mean())
            outputs.append(want)
            for path, neuron in neurons.items():
                ours, theirs = ir_states(state, path), snn_states(neuron)
                assert len(ours) == len(theirs), path
                for k, (a, b) in enumerate(zip(ours, theirs)):
                    assert torch.equal(a, b), f"step {t}: state {k} of {path!r} differs by {(a - b).abs().max()}"
                    compared += 1
                membranes[path].append(theirs[-1].clone())
    assert compared >= len(data), "no neuron state was compared"
    assert 0.02 <= active / len(data) <= 0.98, f"activity {active / len(data):.3f} proves little"
    # the CPU backend runs the same runtime: its recorded membranes and output are snnTorch's too
    sim = get_backend("cpu").simulate(graph, inputs=data, record=True, batch_time=False)
    assert torch.equal(torch.as_tensor(sim.output), torch.stack(outputs))
    for path, mems in membranes.items():
        assert torch.equal(torch.as_tensor(sim.membranes[path]), torch.stack(mems)), path


# ------------------------------------------------------------------------------------------------
# loops inside forward (tutorials 5-7, regression tutorial 2): the record, and the membrane record
# ------------------------------------------------------------------------------------------------

class ResetThenLoop(nn.Module):
    """init_hidden neurons reset before the loop, in each of the ways snnTorch offers."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=beta, init_hidden=True, output=True)

    def forward(self, x):
        if self.how == "reset_hidden":
            snn.Leaky.reset_hidden()
        elif self.how == "detach_hidden":
            snn.Leaky.detach_hidden()
        elif self.how == "reset_mem":
            self.lif1.reset_mem()
        else:
            utils.reset(self.lif1)
        spk_rec, mem_rec = [], []
        for step in range(num_steps):
            spk, mem = self.lif1(self.fc1(x[step]))
            spk_rec.append(spk)
            mem_rec.append(mem)
        return torch.stack(spk_rec), torch.stack(mem_rec)


class BatchFirstRecord(nn.Module):
    """A (B, T, F) input read as x[:, step, :], the records stacked batch-first (dim=1 or dim=-2)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec, mem_rec = [], []
        for step in range(x.size(1)):
            spk1, mem1 = self.lif1(self.fc1(x[:, step, :]), mem1)
            spk_rec.append(spk1)
            mem_rec.append(mem1)
        return torch.stack(spk_rec, dim=self.dim), torch.stack(mem_rec, dim=self.dim)


class Branches(nn.Module):
    """Two spiking branches joined by torch.cat (tuple, negative dim) or added (SEW-ResNet style), plus a
    residual add of the step input."""

    def __init__(self, join: str):
        super().__init__()
        self.join = join
        self.fa, self.fb = nn.Linear(12, 8), nn.Linear(12, 8)
        self.la, self.lb = snn.Leaky(beta=0.9), snn.Leaky(beta=0.8, threshold=0.7)
        self.fo = nn.Linear(16 if join == "cat" else 8, 12)
        self.lo = snn.Leaky(beta=0.9)

    def forward(self, x):
        ma, mb, mo = self.la.init_leaky(), self.lb.init_leaky(), self.lo.init_leaky()
        spk_rec, mem_rec = [], []
        for step in range(num_steps):
            sa, ma = self.la(self.fa(x[step]), ma)
            sb, mb = self.lb(self.fb(x[step]), mb)
            h = torch.cat((sa, sb), dim=-1) if self.join == "cat" else sa + sb
            so, mo = self.lo(self.fo(h) + x[step], mo)
            spk_rec.append(so)
            mem_rec.append(mo)
        return torch.stack(spk_rec), torch.stack(mem_rec)


class Flattened(nn.Module):
    """Tutorial 6's conv layer, flattened inside the loop in the ways users write it."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc1 = nn.Linear(4 * 6 * 6, 5)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk_rec, mem_rec = [], []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.conv1(x[step]), mem1)
            flat = {"view_minus_one": lambda: spk1.view(-1, 4 * 6 * 6),
                    "reshape_batch_of_input": lambda: spk1.reshape(x.shape[1], -1),
                    "flatten_start_dim": lambda: torch.flatten(spk1, start_dim=1)}[self.form]()
            spk2, mem2 = self.lif2(self.fc1(flat), mem2)
            spk_rec.append(spk2)
            mem_rec.append(mem2)
        return torch.stack(spk_rec), torch.stack(mem_rec)


class ExplicitStates(nn.Module):
    """Synaptic, Alpha, RSynaptic and RLeaky with their states initialised and carried by hand."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = {"synaptic": lambda: snn.Synaptic(alpha=0.8, beta=0.9),
                     "alpha": lambda: snn.Alpha(alpha=0.9, beta=0.8, threshold=0.5),
                     "rsynaptic": lambda: snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=8),
                     "rleaky_one_to_one": lambda: snn.RLeaky(beta=0.9, all_to_all=False, V=0.5)}[kind]()

    def forward(self, x):
        spk_rec, mem_rec = [], []
        if self.kind == "synaptic":
            syn, mem = self.lif1.init_synaptic()
        elif self.kind == "alpha":
            syn_exc, syn_inh, mem = self.lif1.init_alpha()
        elif self.kind == "rsynaptic":
            spk, syn, mem = self.lif1.init_rsynaptic()
        else:
            spk, mem = self.lif1.init_rleaky()
        for step in range(num_steps):
            cur = self.fc1(x[step])
            if self.kind == "synaptic":
                spk, syn, mem = self.lif1(cur, syn, mem)
            elif self.kind == "alpha":
                spk, syn_exc, syn_inh, mem = self.lif1(cur, syn_exc, syn_inh, mem)
            elif self.kind == "rsynaptic":
                spk, syn, mem = self.lif1(cur, spk, syn, mem)
            else:
                spk, mem = self.lif1(cur, spk, mem)
            spk_rec.append(spk)
            mem_rec.append(mem)
        return torch.stack(spk_rec), torch.stack(mem_rec)


class Regression2(nn.Module):
    """Regression tutorial 2: RLeaky with 1-to-1 feedback and `rlif.V = torch.rand(1)` set after construction
    (snnTorch's recurrent module keeps the V it was built with, and so does the export), or V changed in place."""

    def __init__(self, set_v: str):
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.rlif1 = snn.RLeaky(beta=beta, all_to_all=False, learn_recurrent=False)
        if set_v == "attribute":
            self.rlif1.V = torch.tensor([0.2])
        else:
            with torch.no_grad():
                self.rlif1.V.fill_(0.3)

    def forward(self, x):
        spk1, mem1 = self.rlif1.init_rleaky()
        spk_rec, mem_rec = [], []
        for step in range(num_steps):
            spk1, mem1 = self.rlif1(self.fc1(x), spk1, mem1)
            spk_rec.append(spk1)
            mem_rec.append(mem1)
        return torch.stack(spk_rec), torch.stack(mem_rec)


class BNTT(nn.Module):
    """snnTorch's BatchNormTT1d: one BatchNorm1d per step, `self.bn1[step](cur)`, or one of them for every step."""

    def __init__(self, per_step: bool):
        super().__init__()
        self.per_step = per_step
        self.fc1 = nn.Linear(12, 8)
        self.bn1 = snn.BatchNormTT1d(8, num_steps)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec, mem_rec = [], []
        for step in range(num_steps):
            cur1 = self.bn1[step if self.per_step else 0](self.fc1(x))
            spk1, mem1 = self.lif1(cur1, mem1)
            spk_rec.append(spk1)
            mem_rec.append(mem1)
        return torch.stack(spk_rec), torch.stack(mem_rec)


Records = namedtuple("Records", "spk mem")


class NamedRecords(nn.Module):
    """The records returned as a namedtuple, positionally or by field name (fx records a call of its class)."""

    def __init__(self, by_name: bool, reset: str = "subtract"):
        super().__init__()
        self.by_name = by_name
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=beta, reset_mechanism=reset)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec, mem_rec = [], []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            spk_rec.append(spk1)
            mem_rec.append(mem1)
        if self.by_name:
            return Records(mem=torch.stack(mem_rec), spk=torch.stack(spk_rec))
        return Records(torch.stack(spk_rec), torch.stack(mem_rec))


LOOPS: dict[str, tuple[Callable[[], nn.Module], torch.Tensor, str]] = {  # name: (model, input, neuron of mem_rec)
    **{f"reset_{how}_before_loop": (lambda how=how: ResetThenLoop(how), SEQ, "lif1")
       for how in ("reset_hidden", "detach_hidden", "reset_mem", "utils_reset")},
    "batch_first_record_dim_1": (lambda: BatchFirstRecord(1), SEQ.transpose(0, 1).contiguous(), "lif1"),
    "batch_first_record_dim_minus_2": (lambda: BatchFirstRecord(-2), SEQ.transpose(0, 1).contiguous(), "lif1"),
    "cat_branches_and_residual": (lambda: Branches("cat"), SEQ, "lo"),
    "sew_add_branches_and_residual": (lambda: Branches("add"), SEQ, "lo"),
    **{f"flatten_{form}": (lambda form=form: Flattened(form), IMG, "lif2")
       for form in ("view_minus_one", "reshape_batch_of_input", "flatten_start_dim")},
    **{f"explicit_{kind}": (lambda kind=kind: ExplicitStates(kind), SEQ, "lif1")
       for kind in ("synaptic", "alpha", "rsynaptic", "rleaky_one_to_one")},
    "regression2_V_attribute_set_after_init": (lambda: Regression2("attribute"), STATIC, "rlif1"),
    "regression2_V_changed_in_place": (lambda: Regression2("in_place"), STATIC, "rlif1"),
    "batchnormtt_one_layer_for_every_step": (lambda: BNTT(per_step=False), STATIC, "lif1"),
    "namedtuple_records": (lambda: NamedRecords(by_name=False), SEQ, "lif1"),
    "namedtuple_records_by_field_name": (lambda: NamedRecords(by_name=True), SEQ, "lif1"),
}


def _steps(graph: ir.Graph, data: torch.Tensor) -> list[torch.Tensor]:
    loop = graph.metadata["time_loop"]
    if loop["input"] == "static":
        return [data] * graph.metadata["num_steps"]
    return list(data.unbind(loop.get("time_dim", 0)))


@pytest.mark.parametrize("name", list(LOOPS))
def test_loop_model_matches_snntorch_record_and_membranes(name, tmp_path):
    build, data, neuron = LOOPS[name]
    model = boost(build(), 4.0, layers=LAYERS).eval()
    graph = roundtrip(export(model, data, export_to_ir), tmp_path)
    with torch.no_grad():
        spk_rec, mem_rec = model(data)
        ex = ir_to_torch(graph, return_state=True)
        outs, mems, state = [], [], None
        for x in _steps(graph, data):
            out, state = ex(x, state)
            outs.append(out)
            mems.append(ir_states(state, neuron)[-1])
    dim = graph.metadata["time_loop"].get("stack_dim", 0)
    got_spk, got_mem = torch.stack(outs, dim=dim), torch.stack(mems, dim=dim)
    assert got_spk.shape == spk_rec.shape
    assert torch.equal(got_spk, spk_rec), f"{int((got_spk != spk_rec).sum())} of {spk_rec.numel()} spikes differ"
    assert torch.equal(got_mem, mem_rec), f"membranes differ by up to {(got_mem - mem_rec).abs().max()}"
    assert 0.02 <= float(spk_rec.mean()) <= 0.98, "the comparison needs spikes"


def test_batch_first_record_is_recorded_in_the_metadata():
    graph = export(BatchFirstRecord(1), SEQ.transpose(0, 1))
    assert graph.metadata["time_loop"] == {"input": "indexed", "output": "stacked", "time_dim": 1, "stack_dim": 1}
    assert "stack_dim" not in export(BatchFirstRecord(0), SEQ.transpose(0, 1)).metadata["time_loop"]


# ------------------------------------------------------------------------------------------------
# refusals: the exact error type, the module named, and the way forward
# ------------------------------------------------------------------------------------------------

class Reduced(nn.Module):
    """A record stacked along a feature dim, which no stepping of the IR graph returns."""

    def __init__(self):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(12, 8), snn.Leaky(beta=beta)

    def forward(self, x):
        mem1, spk_rec = self.lif1.init_leaky(), []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk_rec.append(spk1)
        return torch.stack(spk_rec, dim=2)


class GreaterOrEqual(torch.autograd.Function):
    """A surrogate written by hand whose forward fires at mem == threshold too (snnTorch's step: mem > threshold)."""

    @staticmethod
    def forward(ctx, x):
        return (x >= 0).float()

    @staticmethod
    def backward(ctx, grad):
        return grad


class Arith(nn.Module):
    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fa, self.fb = nn.Linear(12, 8), nn.Linear(12, 8)
        self.lif = L()

    def forward(self, x):
        a = self.fa(x)
        if self.form == "div3":
            return self.lif(a / 3)
        if self.form == "floor":
            return self.lif(torch.div(a, 2, rounding_mode="floor"))
        if self.form == "tensor":
            return self.lif(a / self.fb(x))
        if self.form == "softmax_float64":  # the dtype= argument used to be dropped: a float32 graph, silently
            return self.lif(torch.softmax(a, dim=1, dtype=torch.float64))
        return self.lif(torch.add(a, self.fb(x), alpha=2))


REFUSED: dict[str, tuple[Callable[[], nn.Module], torch.Tensor, tuple[str, ...]]] = {
    "state_quant": (lambda: seq(L(state_quant=quant.state_quant(num_bits=8, uniform=True))), SEQ[0],
                    ("'1'", "Leaky", "state_quant", "custom_map")),
    "lapicque_R_C_time_step": (lambda: seq(snn.Lapicque(R=5.1, C=5e-3, time_step=1e-3, init_hidden=True)), SEQ[0],
                               ("'1'", "Lapicque", "R == 1 and time_step == 1", "custom_map")),
    **{f"no_ir_form_{cls}": (lambda cls=cls, kw=kw: seq(getattr(snn, cls)(**kw)), SEQ[0],
                             ("'1'", f"snntorch._neurons.{cls.lower()}.{cls}", f"snnTorch's {cls} has no IR equivalent",
                              "Leaky", "RSynaptic", "custom_map"))
       for cls, kw in (("LeakyParallel", {"input_size": 8, "hidden_size": 8, "beta": 0.9}),
                       ("StateLeaky", {"beta": 0.9, "channels": 8}),
                       ("DeltaLeaky", {"beta": 0.9, "init_hidden": True}),
                       ("SLSTM", {"input_size": 8, "hidden_size": 4, "init_hidden": True}))},
    "no_ir_form_LinearLeaky": (lambda: nn.Sequential(snn.LinearLeaky(beta=0.9, in_features=12, out_features=8)), SEQ[0],
                               ("'0'", "LinearLeaky", "has no IR equivalent", "custom_map")),
    "no_ir_form_SConv2dLSTM": (lambda: nn.Sequential(snn.SConv2dLSTM(1, 4, 3, init_hidden=True), nn.Flatten()), IMG[0],
                               ("'0'", "SConv2dLSTM", "has no IR equivalent", "custom_map")),
    "spike_grad_soft_forward": (lambda: seq(L(spike_grad=lambda x: torch.sigmoid(5 * x))), SEQ[0],
                                ("'1'", "its spike_grad", "computes, in the forward pass", "snntorch.surrogate")),
    "spike_grad_greater_or_equal": (lambda: seq(snn.Synaptic(alpha=0.8, beta=0.9, spike_grad=GreaterOrEqual.apply,
                                                             init_hidden=True)), SEQ[0],
                                    ("'1'", "Synaptic", "spike_grad GreaterOrEqual.apply", "(x > 0).float()")),
    "flatten_batch_dim": (lambda: nn.Sequential(nn.Conv2d(1, 4, 3), L(), nn.Flatten(0)), IMG[0],
                          ("'2'", "Flatten", "merges the batch dimension")),
    "unflatten": (lambda: nn.Sequential(nn.Linear(12, 8), nn.Unflatten(1, (2, 4)), L(), nn.Flatten()), SEQ[0],
                  ("'1'", "Unflatten", "no converter", "custom_map")),
    "lazy_linear_never_run": (lambda: nn.Sequential(nn.LazyLinear(8), L()), SEQ[0],
                              ("'0'", "LazyLinear", "not initialised yet", "model(sample)", "becomes nn.Linear")),
    "batchnormtt_one_per_step": (lambda: BNTT(per_step=True), STATIC,
                                 ("'bn1.0'", "'bn1.1'", "a different module in each step", "BatchNormTT1d",
                                  "use one layer for every step")),
    "record_stacked_along_features": (Reduced, STATIC, ("'lif1'", "torch.stack(spk_rec, dim=2)",
                                                        "dim 0 (time-major) or dim 1 (batch-first)")),
    "divide_by_three": (lambda: Arith("div3"), SEQ[0], ("self.lif(a / 3)", "divides by 3", "power of two")),
    "divide_with_rounding_mode": (lambda: Arith("floor"), SEQ[0], ("rounding_mode='floor'", "no IR equivalent")),
    "divide_by_a_tensor": (lambda: Arith("tensor"), SEQ[0], ("a / self.fb(x)", "divided by a Python number")),
    "add_with_alpha": (lambda: Arith("alpha"), SEQ[0], ("torch.add(a, self.fb(x), alpha=2)", "alpha != 1")),
    "softmax_with_dtype": (lambda: Arith("softmax_float64"), SEQ[0], ("functional op softmax", "dtype=torch.float64",
                                                                     "turns torch.float32 into torch.float64",
                                                                     "drop the dtype argument")),
}


@pytest.fixture
def forget_neurons():
    """snnTorch keeps every neuron ever built in SpikingNeuron.instances, and utils.reset resets all of them: a
    DeltaLeaky built and never run (mem None) would break every later utils.reset in the suite."""
    before = list(snn.SpikingNeuron.instances)
    yield
    snn.SpikingNeuron.instances[:] = before


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_with_the_module_named_and_a_way_forward(name, forget_neurons):
    build, sample, fragments = REFUSED[name]
    model = build().eval()
    with pytest.raises(UnsupportedModuleError) as info:
        export(model, sample, export_to_ir)
    msg = str(info.value)
    for fragment in fragments:
        assert fragment in msg, msg
    assert "getitem" not in msg, msg  # the user's code, not torch.fx's names


def test_a_lazy_layer_run_once_exports_exactly(tmp_path):
    """The way forward of the refusal above: once run, LazyLinear is an nn.Linear."""
    model = nn.Sequential(nn.LazyLinear(8), L())
    model(SEQ[0])
    model = boost(model).eval()
    graph = roundtrip(export(model, SEQ[0]), tmp_path)
    ex = ir_to_torch(graph)
    utils.reset(model)
    with torch.no_grad():
        assert torch.equal(torch.stack([ex(x) for x in SEQ]), torch.stack([model(x) for x in SEQ]))


def test_a_float64_snntorch_model_that_snntorch_cannot_run_is_a_usage_error_naming_the_layer():
    """snnTorch's spikes are float32 even in a `.double()` model, so its next Linear fails in snnTorch itself; the
    export says where, as a TalonUsageError, instead of a torch traceback."""
    model = nn.Sequential(nn.Linear(12, 8), L(), nn.Linear(8, 4), L()).double()
    with pytest.raises(TalonUsageError) as info:
        export(model, SEQ[0].double())
    assert "module '2' (Linear)" in str(info.value)


# ------------------------------------------------------------------------------------------------
# property: a division by ±2^k is the IR's Scale(2^-k), bit for bit, for every float32 input
# ------------------------------------------------------------------------------------------------

class Halve(nn.Module):
    def __init__(self, divisor: float):
        super().__init__()
        self.divisor = divisor
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) / self.divisor


_FLOATS = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(k=st.integers(-30, 30), negative=st.booleans(), values=st.lists(_FLOATS, min_size=8, max_size=8),
       scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e30]))
def test_division_by_a_power_of_two_is_bit_exact(k, negative, values, scale):
    divisor = (-1.0 if negative else 1.0) * math.ldexp(1.0, k)
    model = Halve(divisor)
    with torch.no_grad():
        model.fc.weight.copy_(torch.eye(4) * scale)
        model.fc.bias.zero_()
    graph = to_ir(model, torch.zeros(1, 4))
    assert type(graph.nodes["div"]).__name__ == "Scale"
    x = torch.tensor(values, dtype=torch.float32).reshape(2, 4)
    with torch.no_grad():
        want = model(x)
        got = ir_to_torch(graph)(x)
    assert torch.equal(got.view(torch.int32), want.view(torch.int32))  # bits, signed zeros included


# ------------------------------------------------------------------------------------------------
# forward hooks (fx traces forward, not the hooks __call__ runs) and torch's weight reparametrisations
# ------------------------------------------------------------------------------------------------

def _mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(12, 8), L(), nn.Linear(8, 4), L())


def _double(module, args, output):
    return output * 2


def _double_input(module, args):
    return (args[0] * 2,)


def _double_in_place(module, args, output):
    output.mul_(2)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 8)
        self.lif = L()

    def forward(self, x):
        return self.lif(self.fc(x))


HOOKED: dict[str, tuple[Callable[[nn.Module], object], tuple[str, ...]]] = {
    "linear_forward_hook": (lambda m: m[0].register_forward_hook(_double),
                            ("forward hook _double", "module '0'", "returns another output", "handle.remove()")),
    "linear_pre_hook": (lambda m: m[0].register_forward_pre_hook(_double_input),
                        ("pre-forward hook _double_input", "module '0'", "returns another input")),
    "neuron_forward_hook": (lambda m: m[1].register_forward_hook(_double), ("module '1'", "returns another output")),
    "in_place_hook": (lambda m: m[2].register_forward_hook(_double_in_place),
                      ("_double_in_place", "module '2'", "writes to the output in place")),
    "model_forward_hook": (lambda m: m.register_forward_hook(_double), ("the model itself", "returns another output")),
    "kwargs_pre_hook": (lambda m: m.register_forward_pre_hook(lambda mod, args, kwargs: ((args[0] + 1,), kwargs),
                                                              with_kwargs=True), ("the model itself", "returns another input")),
}


@pytest.mark.parametrize("name", list(HOOKED))
def test_a_hook_that_changes_a_value_is_refused_not_dropped(name):
    """Before session 7 the export silently left such hooks out: the graph differed from the model."""
    register, fragments = HOOKED[name]
    model = boost(_mlp())
    handle = register(model)
    with pytest.raises(UnsupportedModuleError) as info:
        export(model, SEQ[0])
    msg = str(info.value)
    for fragment in fragments:
        assert fragment in msg, msg
    handle.remove()
    export(model, SEQ[0])  # the way forward: without the hook it exports
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())  # hooks put back


def test_a_global_hook_that_changes_outputs_is_refused():
    from torch.nn.modules.module import register_module_forward_hook
    handle = register_module_forward_hook(lambda m, args, out: out + 1 if isinstance(out, torch.Tensor) else None)
    try:
        with pytest.raises(UnsupportedModuleError, match="a global hook"):
            export(_mlp(), SEQ[0])
    finally:
        handle.remove()


def test_hooks_that_only_record_keep_the_export_exact(tmp_path):
    """The usual hook records activations: it changes nothing, so the export goes ahead and stays exact; a hook on
    a module the trace goes through (not a leaf) is traced with it and exported too."""
    model = boost(nn.Sequential(Block(), nn.Linear(8, 4), L()))
    seen: list[torch.Tensor] = []
    for m in (model[0].fc, model[0].lif, model[1]):
        m.register_forward_hook(lambda mod, args, out: seen.append(out))
    model.register_forward_hook(lambda mod, args, out: seen.append(out))
    model[0].register_forward_hook(lambda mod, args, out: out * 0.5)  # traced with Block: a Scale node
    graph = roundtrip(export(model, SEQ[0]), tmp_path)
    assert "Scale" in [type(n).__name__ for n in graph.nodes.values()]
    assert seen, "the recording hooks ran on the sample"
    ex = ir_to_torch(graph)
    utils.reset(model)
    with torch.no_grad():
        want = torch.stack([model(x) for x in SEQ])
        got = torch.stack([ex(x) for x in SEQ])
    assert torch.equal(got, want)
    assert 0.02 <= float(want.mean()) <= 0.98


REPARAMETRISED: dict[str, Callable[[nn.Module], object]] = {
    "parametrizations_weight_norm": lambda m: nn.utils.parametrizations.weight_norm(m),
    "parametrizations_spectral_norm": lambda m: nn.utils.parametrizations.spectral_norm(m),
    "parametrizations_orthogonal": lambda m: nn.utils.parametrizations.orthogonal(m),
    "prune_l1_unstructured": lambda m: torch.nn.utils.prune.l1_unstructured(m, "weight", 0.5),
}


@pytest.mark.parametrize("name", list(REPARAMETRISED))
def test_reparametrised_weights_export_as_computed(name, tmp_path):
    """torch.nn.utils.parametrizations re-classes a layer as Parametrized<Layer> (it used to be refused with "no
    converter"); the weight it computes is the layer's weight, exported bit for bit."""
    model = boost(nn.Sequential(nn.Linear(12, 8), L(threshold=0.1), nn.Conv1d(1, 2, 3), L(threshold=0.1), nn.Flatten()),
                  4.0, layers=LAYERS)
    for layer in (model[0], model[2]):
        REPARAMETRISED[name](layer)
    model.eval()
    graph = roundtrip(export(model, SEQ[0].unsqueeze(1)), tmp_path)
    assert [type(n).__name__ for n in graph.nodes.values()][1:3] == ["Affine", "LIF"]
    ex = ir_to_torch(graph)
    utils.reset(model)
    with torch.no_grad():
        want = torch.stack([model(x.unsqueeze(1)) for x in SEQ])
        got = torch.stack([ex(x.unsqueeze(1)) for x in SEQ])
    assert torch.equal(got, want)
    assert 0.02 <= float(want.mean()) <= 0.98


# ------------------------------------------------------------------------------------------------
# wrapped and patched models: TorchScript, torch.compile, DataParallel, a forward assigned on an instance
# ------------------------------------------------------------------------------------------------

class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 8)
        self.lif = L()

    def forward(self, x):
        return self.lif(self.fc(x))


def _scripted_layer() -> nn.Module:
    model = TwoLayer()
    model.fc = torch.jit.script(nn.Linear(12, 8))
    return model


def _patched(root: bool) -> nn.Module:
    model = TwoLayer()
    if root:
        model.forward = lambda x: model.lif(model.fc(x) * 2)
    else:
        inner = model.fc.forward
        model.fc.forward = lambda x: inner(x) * 2
    return model


WRAPPED: dict[str, tuple[Callable[[], nn.Module], tuple[str, ...]]] = {
    "jit_script_model": (lambda: torch.jit.script(nn.Sequential(nn.Linear(12, 8), nn.ReLU())),
                         ("the model (torch.jit", "TorchScript", "export the nn.Module it was made from")),
    "jit_trace_layer": (lambda: nn.Sequential(torch.jit.trace(nn.Linear(12, 8), SEQ[0]), L()),
                        ("module '0'", "TorchScript")),
    "jit_script_layer": (_scripted_layer, ("module 'fc'", "TorchScript")),
    "torch_compile": (lambda: torch.compile(TwoLayer()), ("OptimizedModule", "model._orig_mod")),
    "data_parallel": (lambda: nn.DataParallel(TwoLayer()), ("DataParallel wrapper", "model.module")),
    "forward_assigned_on_the_model": (lambda: _patched(root=True), ("the model (", "forward replaced on the instance")),
    "forward_assigned_on_a_layer": (lambda: _patched(root=False), ("module 'fc' (torch.nn.modules.linear.Linear)",
                                                                   "forward replaced on the instance", "subclass")),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated; users still have it
@pytest.mark.parametrize("name", list(WRAPPED))
def test_wrapped_or_patched_models_are_refused_by_path(name):
    """These used to crash with an AttributeError (TorchScript), blame torch.fx (torch.compile), say "no converter"
    (DataParallel), or export the class's forward instead of the one the instance runs (a silent divergence)."""
    build, fragments = WRAPPED[name]
    with pytest.raises(UnsupportedModuleError) as info:
        export(build(), SEQ[0])
    msg = str(info.value)
    for fragment in fragments:
        assert fragment in msg, msg


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_scripted_layer_with_a_custom_converter_exports(tmp_path):
    """custom_map is the way forward for a layer TALON cannot trace: the converter decides, and the model (buffers,
    train flags) is left as it was."""
    model = boost(_scripted_layer(), layers=(nn.Linear,))
    model.fc = torch.jit.script(boost(nn.Linear(12, 8), layers=(nn.Linear,)))
    model.train()

    def affine(module, ctx):
        return ir.Affine(weight=module.weight.detach().numpy(), bias=module.bias.detach().numpy())

    graph = roundtrip(to_ir(model, SEQ[0], custom_map={"fc": affine}), tmp_path)
    assert model.training and model.fc.training
    ex = ir_to_torch(graph)
    utils.reset(model)
    with torch.no_grad():
        want = torch.stack([model(x) for x in SEQ])
        got = torch.stack([ex(x) for x in SEQ])
    assert torch.equal(got, want)
    assert 0.02 <= float(want.mean()) <= 0.98


# ------------------------------------------------------------------------------------------------
# property: any layout, record dim and return container of a tutorial loop reproduces forward's record
# ------------------------------------------------------------------------------------------------

class AnyRecord(nn.Module):
    def __init__(self, steps: int, batch_first: bool, stack_dim: int, container: str, synaptic: bool):
        super().__init__()
        self.steps, self.batch_first, self.stack_dim, self.container = steps, batch_first, stack_dim, container
        self.fc1 = nn.Linear(6, 5)
        self.lif1 = snn.Synaptic(alpha=0.7, beta=0.85) if synaptic else snn.Leaky(beta=0.85, threshold=0.8)

    def forward(self, x):
        synaptic = isinstance(self.lif1, snn.Synaptic)
        syn1, mem1 = self.lif1.init_synaptic() if synaptic else (None, self.lif1.init_leaky())
        spk_rec, mem_rec = [], []
        for step in range(self.steps):
            cur1 = self.fc1(x[:, step] if self.batch_first else x[step])
            if synaptic:
                spk1, syn1, mem1 = self.lif1(cur1, syn1, mem1)
            else:
                spk1, mem1 = self.lif1(cur1, mem1)
            spk_rec.append(spk1)
            mem_rec.append(mem1)
        spk, mem = torch.stack(spk_rec, dim=self.stack_dim), torch.stack(mem_rec, dim=self.stack_dim)
        if self.container == "namedtuple":
            return Records(spk, mem)
        return (spk, mem) if self.container == "tuple" else spk


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.integers(2, 9), batch_first=st.booleans(), stack_dim=st.sampled_from([0, 1, -2]),
       container=st.sampled_from(["tensor", "tuple", "namedtuple"]), synaptic=st.booleans(), seed=st.integers(0, 2**16))
def test_any_record_layout_is_exact(steps, batch_first, stack_dim, container, synaptic, seed):
    torch.manual_seed(seed)
    model = boost(AnyRecord(steps, batch_first, stack_dim, container, synaptic), 4.0, layers=(nn.Linear,)).eval()
    x = torch.rand(3, steps, 6) if batch_first else torch.rand(steps, 3, 6)
    graph = to_ir(model, x)
    loop = graph.metadata["time_loop"]
    assert loop.get("stack_dim", 0) == stack_dim % 3 and loop.get("time_dim", 0) == int(batch_first)
    with torch.no_grad():
        want = first(model(x))
        ex = ir_to_torch(graph)
        got = torch.stack([ex(xt) for xt in x.unbind(int(batch_first))], dim=stack_dim % 3)
    assert torch.equal(got, want)


def _rleaky() -> nn.Module:
    return boost(nn.Sequential(nn.Linear(12, 8), snn.RLeaky(beta=0.9, linear_features=8, init_hidden=True))).eval()


def test_a_hook_inside_a_neuron_is_watched_too():
    """RLeaky calls its recurrent layer inside its own forward: a hook there changes snnTorch's feedback."""
    model = _rleaky()
    model[1].recurrent.register_forward_hook(_double)
    with pytest.raises(UnsupportedModuleError, match=r"forward hook _double .* of module '1.recurrent' returns another output"):
        export(model, SEQ[0])


@pytest.mark.parametrize("recurrent", ["weight_norm", "no_bias"])
def test_a_recurrent_layer_set_by_hand_exports_exactly(recurrent, tmp_path):
    model = _rleaky()
    if recurrent == "weight_norm":
        nn.utils.parametrizations.weight_norm(model[1].recurrent)
    else:
        model[1].recurrent = boost(nn.Linear(8, 8, bias=False))
    graph = roundtrip(export(model, SEQ[0]), tmp_path)
    ex = ir_to_torch(graph)
    utils.reset(model)
    with torch.no_grad():
        want = torch.stack([model(x) for x in SEQ])
        got = torch.stack([ex(x) for x in SEQ])
    assert torch.equal(got, want)
    assert 0.02 <= float(want.mean()) <= 0.98
