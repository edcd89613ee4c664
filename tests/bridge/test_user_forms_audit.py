"""A new user's audit: snnTorch models written the way tutorials 1-7 and common GitHub code write them.

Each case is a model as a user would write it (class nets with `spk_rec`/`mem_rec` lists, `nn.Sequential` with
`init_hidden=True` neurons and `utils.reset`, surrogate gradients, learnable and tensor constants, every reset
mechanism, Synaptic/RLeaky/RSynaptic, conv nets with `F.max_pool2d`, `spikegen.rate` data, ...). Every case must
either export spike-exact against snnTorch running the same weights (the executor stepped over the same inputs,
after a .t1c round trip) or be refused with an UnsupportedModuleError that names the thing at fault and a way
forward. Where a refusal gives a way forward, a companion case applies it and must be exact.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

snn = pytest.importorskip("snntorch")
from snntorch import spikegen, surrogate, utils  # noqa: E402

from talon import ir  # noqa: E402
from talon.bridge.executor import ir_to_torch  # noqa: E402
from talon.bridge.export import to_ir  # noqa: E402
from talon.errors import UnsupportedModuleError  # noqa: E402

from firing import boost  # noqa: E402

T = 8          # time steps
B = 3          # batch
beta = 0.9
num_steps = T
batch_size = B
spike_grad = surrogate.fast_sigmoid(slope=25)


# ------------------------------------------------------------------------------------------------
# loop-inside-forward models (tutorials 5 and 6, GitHub training scripts)
# ------------------------------------------------------------------------------------------------

class Tut5(nn.Module):
    """Tutorial 5, with a fast-sigmoid surrogate and both records returned."""

    def __init__(self, **lif):
        super().__init__()
        self.fc1 = nn.Linear(12, 10)
        self.lif1 = snn.Leaky(beta=beta, spike_grad=spike_grad, **lif)
        self.fc2 = nn.Linear(10, 4)
        self.lif2 = snn.Leaky(beta=beta, spike_grad=spike_grad, **lif)

    def forward(self, x):
        mem1 = self.lif1.init_leaky().to(x.device)
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


class Tut5Tensors(Tut5):
    """Per-neuron β and θ tensors, learnable."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(1)
        self.lif1 = snn.Leaky(beta=torch.rand(10) * 0.5 + 0.45, threshold=torch.rand(10) * 0.5 + 0.5,
                              learn_beta=True, learn_threshold=True, spike_grad=surrogate.atan())
        self.lif2 = snn.Leaky(beta=torch.tensor(0.8), threshold=torch.tensor(0.7), learn_beta=True)


class Tut6Conv(nn.Module):
    """Tutorial 6's class-based conv net, with the loop inside forward (GitHub's usual form)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.lif1 = snn.Leaky(beta=beta, spike_grad=spike_grad)
        self.conv2 = nn.Conv2d(4, 8, 3)
        self.lif2 = snn.Leaky(beta=beta, spike_grad=spike_grad)
        self.fc1 = nn.Linear(8 * 1 * 1, 5)
        self.lif3 = snn.Leaky(beta=beta, spike_grad=spike_grad)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        mem3 = self.lif3.init_leaky()
        spk3_rec = []
        mem3_rec = []
        for step in range(num_steps):
            cur1 = F.max_pool2d(self.conv1(x), 2)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = F.max_pool2d(self.conv2(spk1), 1)
            spk2, mem2 = self.lif2(cur2, mem2)
            cur3 = self.fc1(spk2.view(batch_size, -1))
            spk3, mem3 = self.lif3(cur3, mem3)
            spk3_rec.append(spk3)
            mem3_rec.append(mem3)
        return torch.stack(spk3_rec), torch.stack(mem3_rec)


class ConvBN(nn.Module):
    """conv -> batch norm -> LIF -> avg pool -> flatten -> linear -> LIF, time-major input read as x[step]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.lif1 = snn.Leaky(beta=0.95, reset_mechanism="zero")
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(4 * 4 * 4, 5)
        self.lif2 = snn.Leaky(beta=0.95)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk_rec = []
        for step in range(x.size(0)):
            spk1, mem1 = self.lif1(self.bn(self.conv(x[step])), mem1)
            spk2, mem2 = self.lif2(self.fc(self.pool(spk1).flatten(1)), mem2)
            spk_rec.append(spk2)
        return torch.stack(spk_rec, dim=0)


class Prefix(nn.Module):
    """Work done once before the loop on a static input: `x = F.relu(self.fc0(x))`, `x * 2`, `x.view(B, -1)`."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix
        self.fc0 = nn.Linear(12, 12)
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        if self.prefix == "relu":
            x = F.relu(self.fc0(x))
        elif self.prefix == "scale":
            x = x * 2
        elif self.prefix == "view":
            x = x.view(batch_size, -1)
        elif self.prefix == "flatten_relu":
            x = self.fc0(x.flatten(1)).relu() * 0.5
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk_rec.append(spk1)
        return torch.stack(spk_rec)


class LazyInit(nn.Module):
    """States initialised lazily inside the loop, or `mem = None` handed to the neuron on the first step."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem = None
        spk_rec = []
        for step in range(num_steps):
            cur = self.fc1(x)
            if self.how == "init_leaky":
                if mem is None:
                    mem = self.lif1.init_leaky()
            elif self.how == "zeros_like":
                if mem is None:
                    mem = torch.zeros_like(cur)
            elif self.how == "new_zeros":
                if step == 0:
                    mem = cur.new_zeros(cur.shape)
            elif self.how == "zeros_every_step":
                mem = torch.zeros_like(cur)
            elif self.how == "init_to_device":
                if mem is None:
                    mem = self.lif1.init_leaky().to(x.device)
            elif self.how == "zeros_device":
                if mem is None:
                    mem = torch.zeros(x.size(0), 6, device=x.device)
            spk, mem = self.lif1(cur, mem)
            spk_rec.append(spk)
        return torch.stack(spk_rec)


class Recorded(nn.Module):
    """What users do to the recorded values: .detach(), .clone(), .cpu(), .to(dtype), .float(), .item()."""

    def __init__(self, op: str):
        super().__init__()
        self.op = op
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            if self.op == "detach":
                spk1 = spk1.detach()
            elif self.op == "clone":
                spk1 = spk1.clone()
            elif self.op == "cpu":
                spk1 = spk1.cpu()
            elif self.op == "to_float32":
                spk1 = spk1.to(torch.float32)
            elif self.op == "float":
                spk1 = spk1.float()
            elif self.op == "contiguous":
                spk1 = spk1.contiguous()
            elif self.op == "to_half":
                spk1 = spk1.to(torch.float16)
            elif self.op == "item":
                spk1 = spk1 * spk1.sum().item()
            spk_rec.append(spk1)
        return torch.stack(spk_rec)


class SynapticNet(nn.Module):
    def __init__(self, reset: str = "subtract"):
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.syn1 = snn.Synaptic(alpha=0.8, beta=0.9, reset_mechanism=reset, spike_grad=spike_grad)
        self.fc2 = nn.Linear(8, 4)
        self.syn2 = snn.Synaptic(alpha=0.7, beta=0.85)

    def forward(self, x):
        syn1, mem1 = self.syn1.init_synaptic()
        syn2, mem2 = self.syn2.init_synaptic()
        spk2_rec, mem2_rec = [], []
        for step in range(num_steps):
            spk1, syn1, mem1 = self.syn1(self.fc1(x), syn1, mem1)
            spk2, syn2, mem2 = self.syn2(self.fc2(spk1), syn2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec, dim=0), torch.stack(mem2_rec, dim=0)


class RLeakyNet(nn.Module):
    def __init__(self, all_to_all: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        if all_to_all:
            self.rlif1 = snn.RLeaky(beta=beta, linear_features=8, spike_grad=spike_grad)
        else:
            self.rlif1 = snn.RLeaky(beta=beta, all_to_all=False, V=0.5)
        self.fc2 = nn.Linear(8, 4)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):
        spk1, mem1 = self.rlif1.init_rleaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        for step in range(x.shape[0]):
            spk1, mem1 = self.rlif1(self.fc1(x[step]), spk1, mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
        return torch.stack(spk2_rec)


class RSynapticNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.rsyn1 = snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=8)

    def forward(self, x):
        spk1, syn1, mem1 = self.rsyn1.init_rsynaptic()
        spk_rec = []
        for step in range(num_steps):
            spk1, syn1, mem1 = self.rsyn1(self.fc1(x), spk1, syn1, mem1)
            spk_rec.append(spk1)
        return torch.stack(spk_rec)


class Regression(nn.Module):
    """The regression tutorial: a reset-free Leaky whose membrane is the output."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc2 = nn.Linear(8, 1)
        self.lif2 = snn.Leaky(beta=beta, reset_mechanism="none")

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        mem2_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            _, mem2 = self.lif2(self.fc2(spk1), mem2)
            mem2_rec.append(mem2)
        return torch.stack(mem2_rec)


class LapicqueNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Lapicque(beta=0.9)

    def forward(self, x):
        mem = self.lif1.init_lapicque()
        spk_rec = []
        for step in range(num_steps):
            spk, mem = self.lif1(self.fc1(x), mem)
            spk_rec.append(spk)
        return torch.stack(spk_rec)


class HiddenLoop(nn.Module):
    """init_hidden neurons in a class net, `utils.reset(self)` before the loop (tutorial 7 in a class)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=beta, init_hidden=True, spike_grad=spike_grad)
        self.fc2 = nn.Linear(8, 4)
        self.lif2 = snn.Leaky(beta=beta, init_hidden=True, output=True)

    def forward(self, x):
        utils.reset(self)
        spk_rec = []
        for step in range(num_steps):
            spk, mem = self.lif2(self.fc2(self.lif1(self.fc1(x))))
            spk_rec.append(spk)
        return torch.stack(spk_rec)


class Tut7Wrapper(nn.Module):
    """Tutorial 7's `forward_pass(net, num_steps, data)` written as a module around an nn.Sequential."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2),
                                 snn.Leaky(beta=0.5, spike_grad=surrogate.atan(), init_hidden=True),
                                 nn.Flatten(), nn.Linear(4 * 3 * 3, 5),
                                 snn.Leaky(beta=0.5, spike_grad=surrogate.atan(), init_hidden=True, output=True))

    def forward(self, data):
        spk_rec = []
        utils.reset(self.net)
        for step in range(data.size(0)):
            spk_out, mem_out = self.net(data[step])
            spk_rec.append(spk_out)
        return torch.stack(spk_rec)


class BatchFirst(nn.Module):
    """A (B, T, F) input read as x[:, step] (the layout of many data loaders)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(x.size(1)):
            spk1, mem1 = self.lif1(self.fc1(x[:, step]), mem1)
            spk_rec.append(spk1)
        return torch.stack(spk_rec)


class IterSteps(nn.Module):
    """`for x_t in x:` over a time-major input, returning the last step only."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta, reset_mechanism="zero")

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        for x_t in x:
            spk1, mem1 = self.lif1(self.fc1(x_t), mem1)
        return spk1


class Unsupported(nn.Module):
    """Forms the IR cannot hold; each is refused with a named reason."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            if self.form == "slice_features":
                cur = self.fc1(x[:, :12])[:, :3]
            else:
                cur = self.fc1(x)
            spk1, mem1 = self.lif1(cur, mem1)
            spk_rec.append(spk1)
        if self.form == "sum0":
            return torch.stack(spk_rec).sum(0)
        if self.form == "stack_dim2":  # (B, n, T): dim 1 (batch-first) exports since session 7, test_user_forms_s7.py
            return torch.stack(spk_rec, dim=2)
        if self.form == "lists":
            return spk_rec, mem1
        return torch.stack(spk_rec)


class DataDependent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            if spk1.sum() > 0:
                spk_rec.append(spk1)
        return torch.stack(spk_rec)


class WrongIndex(nn.Module):
    """The input indexed per step in a form that is not one step of it (x[step % 2], x[:, :, step])."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(4, 6)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            xt = x[:, :, step] if self.form == "dim2" else x[:, step, :4]
            spk1, mem1 = self.lif1(self.fc1(xt), mem1)
            spk_rec.append(spk1)
        return torch.stack(spk_rec)


class InputViews(nn.Module):
    """Views of the input taken before the loop and read one step at a time (GitHub code for (B, T, ...) loaders)."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(16, 6)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x, num_steps=num_steps):
        if self.form == "float":
            x = x.float()
        elif self.form == "transpose":
            x = x.transpose(0, 1)                     # (B, T, F) -> (T, B, F)
        elif self.form == "permute":
            x = x.permute(1, 0, 2, 3)
        elif self.form == "view_T":
            x = x.view(x.size(0), x.size(1), -1)      # flatten every step at once: refused
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            xt = x[step]
            if self.form in ("permute", "view_T_fixed"):
                xt = xt.flatten(1)                    # the way forward for view_T
            spk1, mem1 = self.lif1(self.fc1(xt), mem1)
            spk_rec.append(spk1)
        return torch.stack(spk_rec, dim=0)


class Records(nn.Module):
    """What users return after the loop."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc2 = nn.Linear(6, 4)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk_rec, mem_rec = [], []
        if self.form == "prealloc":
            out = torch.zeros(num_steps, batch_size, 6)
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            if self.form == "prealloc":
                out[step] = spk1
            spk_rec.append(spk1)
            mem_rec.append(mem1)
        if self.form == "two_loops":
            spk2_rec = []
            for step in range(num_steps):
                spk2, mem2 = self.lif2(self.fc2(spk_rec[step]), mem2)
                spk2_rec.append(spk2)
            return torch.stack(spk2_rec)
        if self.form == "prealloc":
            return out
        if self.form == "mem_first":
            return torch.stack(mem_rec), torch.stack(spk_rec)
        if self.form == "mean0":
            return torch.stack(spk_rec).mean(0)
        if self.form == "cat":
            return torch.cat(spk_rec)
        if self.form == "dict":
            return {"spk": torch.stack(spk_rec)}
        if self.form == "stack_last":
            return torch.stack(spk_rec)[-1]
        spk_rec = torch.stack(spk_rec, dim=0)          # "stacked_then_returned"
        return spk_rec, torch.stack(mem_rec, dim=0)


class OtherNeurons(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.fc1 = nn.Linear(12, 4)
        self.lif1 = {"inhibition": snn.Leaky(beta=0.9, inhibition=True), "alpha": snn.Alpha(alpha=0.9, beta=0.8),
                     "slstm": snn.SLSTM(4, 4)}[kind]

    def forward(self, x):
        spk_rec = []
        if self.kind == "alpha":
            syn_exc, syn_inh, mem = self.lif1.init_alpha()
        elif self.kind == "slstm":
            syn, mem = self.lif1.init_slstm()
        else:
            mem = self.lif1.init_leaky()
        for step in range(num_steps):
            if self.kind == "alpha":
                spk, syn_exc, syn_inh, mem = self.lif1(self.fc1(x), syn_exc, syn_inh, mem)
            elif self.kind == "slstm":
                spk, syn, mem = self.lif1(self.fc1(x), syn, mem)
            else:
                spk, mem = self.lif1(self.fc1(x), mem)
            spk_rec.append(spk)
        return torch.stack(spk_rec)


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 4)
        self.lif1 = snn.Leaky(beta=beta, init_hidden=True)

    def forward(self, x, bias):
        return self.lif1(self.fc1(x) + bias)


class Gate(nn.Module):
    def forward(self, x):
        if x.mean() > 0.5:
            return x * 2
        return x


class GatedNet(nn.Module):
    """Data-dependent control flow inside a submodule's forward."""

    def __init__(self):
        super().__init__()
        self.gate = Gate()
        self.fc1 = nn.Linear(12, 4)
        self.lif1 = snn.Leaky(beta=beta, init_hidden=True)

    def forward(self, x):
        return self.lif1(self.fc1(self.gate(x)))


class ProxyCheck(nn.Module):
    """Runs on the sample, but its trace takes another branch: fx's proxy is not a torch.Tensor."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 4)
        self.lif1 = snn.Leaky(beta=beta, init_hidden=True)

    def forward(self, x):
        if not isinstance(x, torch.Tensor):
            x = x.view(-1, 24)
        return self.lif1(self.fc1(x))


class RateInside(nn.Module):
    """spikegen.rate called inside forward (tutorial 1's encoder moved into the model)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        spk_in = spikegen.rate(x, num_steps=num_steps)
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(spk_in[step]), mem1)
            spk_rec.append(spk1)
        return torch.stack(spk_rec)


class AttributeState(nn.Module):
    """The membrane kept between calls in an attribute of the model (`self.mem1`), or (the way forward) in the
    neuron itself, called without a state argument."""

    def __init__(self, in_attribute: bool = True):
        super().__init__()
        self.in_attribute = in_attribute
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta)
        self.mem1 = None

    def forward(self, x):
        if not self.in_attribute:
            spk1, _ = self.lif1(self.fc1(x))
            return spk1
        if self.mem1 is None:
            self.mem1 = self.lif1.init_leaky()
        spk1, self.mem1 = self.lif1(self.fc1(x), self.mem1)
        return spk1


class LayerLists(nn.Module):
    """Layers in nn.ModuleList, states in a Python list indexed per layer (common in GitHub code)."""

    def __init__(self):
        super().__init__()
        self.fcs = nn.ModuleList([nn.Linear(12, 8), nn.Linear(8, 4)])
        self.lifs = nn.ModuleList([snn.Leaky(beta=beta, spike_grad=spike_grad) for _ in range(2)])

    def forward(self, x):
        mems = [lif.init_leaky() for lif in self.lifs]
        spk_rec = []
        for step in range(num_steps):
            h = x
            for i, (fc, lif) in enumerate(zip(self.fcs, self.lifs)):
                h, mems[i] = lif(fc(h), mems[i])
            spk_rec.append(h)
        return torch.stack(spk_rec)


class Block(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.fc = nn.Linear(n_in, n_out)
        self.lif = snn.Leaky(beta=0.85)

    def forward(self, x, mem):
        return self.lif(self.fc(x), mem)


class Blocks(nn.Module):
    """fc + neuron blocks, each a module of its own taking and returning the state."""

    def __init__(self):
        super().__init__()
        self.block1 = Block(12, 8)
        self.block2 = Block(8, 4)

    def forward(self, x):
        mem1, mem2 = self.block1.lif.init_leaky(), self.block2.lif.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.block1(x, mem1)
            spk2, mem2 = self.block2(spk1, mem2)
            spk_rec.append(spk2)
        return torch.stack(spk_rec)


class ResidualCat(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc2 = nn.Linear(8, 8)
        self.lif2 = snn.Leaky(beta=beta, reset_mechanism="zero")

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk_rec.append(torch.cat([spk1 + spk2, spk1], dim=1))
        return torch.stack(spk_rec)


class SynapticReadout(nn.Module):
    def __init__(self, unsqueeze_cat: bool = False):
        super().__init__()
        self.unsqueeze_cat = unsqueeze_cat
        self.fc1 = nn.Linear(12, 4)
        self.syn1 = snn.Synaptic(alpha=0.9, beta=0.8, reset_mechanism="none")

    def forward(self, x):
        syn, mem = self.syn1.init_synaptic()
        rec = []
        for step in range(num_steps):
            spk, syn, mem = self.syn1(self.fc1(x), syn, mem)
            rec.append(spk.unsqueeze(0) if self.unsqueeze_cat else mem)
        return torch.cat(rec, dim=0) if self.unsqueeze_cat else torch.stack(rec)


class NeuronVariant(nn.Module):
    """One hidden layer of a given neuron configuration, its state carried by hand in the loop."""

    def __init__(self, make: Callable[[], nn.Module], conv: bool = False):
        super().__init__()
        self.conv = conv
        self.fc1 = nn.Conv2d(1, 4, 3, padding=1) if conv else nn.Linear(12, 8)
        self.lif1 = make()
        self.fc2 = nn.Linear(4 * 8 * 8 if conv else 8, 4)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):
        states = self._init(self.lif1)
        mem2 = self.lif2.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            out = self.lif1(self.fc1(x), *states)
            spk1, states = out[0], self._next(self.lif1, out)
            spk2, mem2 = self.lif2(self.fc2(spk1.flatten(1)), mem2)
            spk_rec.append(spk2)
        return torch.stack(spk_rec)

    @staticmethod
    def _init(n: nn.Module) -> tuple:
        if isinstance(n, snn.RSynaptic):
            return n.init_rsynaptic()
        if isinstance(n, snn.RLeaky):
            return n.init_rleaky()
        if isinstance(n, snn.Synaptic):
            return n.init_synaptic()
        return (n.init_leaky(),)

    @staticmethod
    def _next(n: nn.Module, out: Any) -> tuple:
        """The states to hand back (RLeaky/RSynaptic take their spike too); `out` is traced: index, never iterate."""
        size = 3 if isinstance(n, (snn.Synaptic, snn.RSynaptic)) else 2
        first = 0 if isinstance(n, (snn.RLeaky, snn.RSynaptic)) else 1
        return tuple(out[i] for i in range(first, size))


class RecurrentByHand(nn.Module):
    """Recurrence written by hand: last step's spikes through a Linear (snn.RLeaky is the form the IR carries)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.rec1 = nn.Linear(8, 8)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk1 = torch.zeros(x.size(0), 8)
        spk_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x) + self.rec1(spk1), mem1)
            spk_rec.append(spk1)
        return torch.stack(spk_rec)


class Squeezed(nn.Module):
    """A (B, 1, F) input squeezed before the layers (data loaders that keep a channel dimension)."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(12, 6)
        self.lif1 = snn.Leaky(beta=beta, init_hidden=True)

    def forward(self, x):
        x = x.squeeze(1) if self.form == "dim" else x.squeeze()
        return self.lif1(self.fc1(x))


class ReadoutAfterLoop(nn.Module):
    """A readout applied once, after the loop, to the last step's spikes (`return self.fc_out(spk)`)."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc_out = nn.Linear(8, 3)
        self.lif_out = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(num_steps):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk_rec.append(spk1)
        if self.form == "linear":
            return self.fc_out(spk1)
        if self.form == "ops":
            return F.softmax(self.fc_out(spk1 * 2.0), dim=1), mem1
        if self.form == "neuron":
            spk_out, _ = self.lif_out(self.fc_out(spk1))
            return spk_out
        return self.fc_out(spk_rec[0])


# ------------------------------------------------------------------------------------------------
# one-step models the caller steps (tutorial 7's Sequential, the seed tutorial's explicit states)
# ------------------------------------------------------------------------------------------------

class ExplicitStates(nn.Module):
    """forward(x, mem1=None, mem2=None), states handed back by the caller's loop."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=beta, reset_mechanism="zero")
        self.fc2 = nn.Linear(8, 4)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x, mem1=None, mem2=None):
        if mem1 is None:
            mem1 = self.lif1.init_leaky()
        if mem2 is None:
            mem2 = self.lif2.init_leaky()
        spk1, mem1 = self.lif1(self.fc1(x), mem1)
        spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
        return spk2, mem1, mem2


class ChangedState(nn.Module):
    """The state handed in is changed before the neuron uses it (`mem1 = mem1 * 0.5`), or only detached."""

    def __init__(self, change: bool):
        super().__init__()
        self.change = change
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=beta)

    def forward(self, x, mem1=None):
        if mem1 is None:
            mem1 = self.lif1.init_leaky()
        mem1 = mem1 * 0.5 if self.change else mem1.detach()
        spk1, mem1 = self.lif1(self.fc1(x), mem1)
        return spk1, mem1


def sequential_mlp() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), snn.Leaky(beta=beta, init_hidden=True, spike_grad=spike_grad),
                         nn.Linear(8, 4), snn.Leaky(beta=beta, init_hidden=True, output=True))


def sequential_synaptic() -> nn.Module:
    return nn.Sequential(nn.Linear(12, 8), snn.Synaptic(alpha=0.9, beta=0.8, init_hidden=True),
                         nn.Linear(8, 4), snn.Synaptic(alpha=0.9, beta=0.8, init_hidden=True, output=True))


def sequential_dropout_train() -> nn.Module:
    model = nn.Sequential(nn.Linear(12, 8), nn.Dropout(0.2), snn.Leaky(beta=beta, init_hidden=True, output=True))
    return model.train()


def sequential_reset_none() -> nn.Module:
    return nn.Sequential(nn.Linear(12, 8), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="none"),
                         nn.Linear(8, 4), snn.Leaky(beta=0.8, init_hidden=True, reset_mechanism="zero", output=True))


def sequential_rleaky() -> nn.Module:
    return nn.Sequential(nn.Linear(12, 8), snn.RLeaky(beta=beta, linear_features=8, init_hidden=True),
                         nn.Linear(8, 4), snn.Leaky(beta=beta, init_hidden=True, output=True))


def sequential_conv() -> nn.Module:
    """Tutorial 7's network, at a small size."""
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2),
                         snn.Leaky(beta=0.5, spike_grad=surrogate.atan(), init_hidden=True),
                         nn.Conv2d(4, 6, 2), nn.MaxPool2d(1),
                         snn.Leaky(beta=0.5, spike_grad=surrogate.atan(), init_hidden=True),
                         nn.Flatten(), nn.Linear(6 * 2 * 2, 5),
                         snn.Leaky(beta=0.5, spike_grad=surrogate.atan(), init_hidden=True, output=True))


# ------------------------------------------------------------------------------------------------
# the cases
# ------------------------------------------------------------------------------------------------

torch.manual_seed(0)
_STATIC = torch.rand(B, 12)
_IMAGE = torch.rand(B, 1, 8, 8)
_SEQ = torch.rand(T, B, 12)
_RATE = spikegen.rate(torch.rand(B, 12), num_steps=T)         # tutorial 1's rate code: (T, B, 12) spikes
_RATE_IMG = spikegen.rate(torch.rand(B, 1, 8, 8), num_steps=T)


@dataclass
class Case:
    name: str
    build: Callable[[], nn.Module]
    data: torch.Tensor                    # loop: forward's input; stepped: (T, B, ...) steps fed one by one
    stepped: bool = False                 # a one-step forward that the caller steps
    refused: tuple[str, ...] | None = None  # fragments of the expected UnsupportedModuleError
    gain: float = 3.0
    explicit_state: bool = False


CASES = [
    Case("tut5_fast_sigmoid", Tut5, _STATIC),
    Case("tut5_reset_zero", lambda: Tut5(reset_mechanism="zero"), _STATIC),
    Case("tut5_reset_none", lambda: Tut5(reset_mechanism="none"), _STATIC),
    Case("tut5_threshold_tensor", lambda: Tut5(threshold=torch.tensor(0.6)), _STATIC),
    Case("tut5_learn_beta_threshold", lambda: Tut5(learn_beta=True, learn_threshold=True), _STATIC),
    Case("tut5_per_neuron_tensors", Tut5Tensors, _STATIC),
    Case("tut5_graded_spikes", lambda: Tut5(graded_spikes_factor=0.5), _STATIC),
    Case("tut5_reset_delay_false", lambda: Tut5(reset_delay=False), _STATIC),
    Case("tut6_conv_max_pool2d_view", Tut6Conv, _IMAGE),
    Case("conv_bn_avgpool_rate_input", ConvBN, _RATE_IMG),
    Case("prefix_relu_fc0", lambda: Prefix("relu"), _STATIC),
    Case("prefix_scale", lambda: Prefix("scale"), _STATIC),
    Case("prefix_view", lambda: Prefix("view"), _STATIC),
    Case("prefix_flatten_relu_scale", lambda: Prefix("flatten_relu"), _STATIC),
    Case("lazy_init_leaky", lambda: LazyInit("init_leaky"), _STATIC),
    Case("lazy_zeros_like", lambda: LazyInit("zeros_like"), _STATIC),
    Case("lazy_new_zeros_step0", lambda: LazyInit("new_zeros"), _STATIC),
    Case("lazy_init_leaky_to_device", lambda: LazyInit("init_to_device"), _STATIC),
    Case("lazy_zeros_on_input_device", lambda: LazyInit("zeros_device"), _STATIC),
    Case("mem_none_passed", lambda: LazyInit("none"), _STATIC),
    Case("zeros_like_every_step", lambda: LazyInit("zeros_every_step"), _STATIC,
         refused=("'lif1'", "set anew on every step", "initialise the state once, before the loop")),
    Case("record_detach", lambda: Recorded("detach"), _STATIC),
    Case("record_clone", lambda: Recorded("clone"), _STATIC),
    Case("record_cpu", lambda: Recorded("cpu"), _STATIC),
    Case("record_to_float32", lambda: Recorded("to_float32"), _STATIC),
    Case("record_float", lambda: Recorded("float"), _STATIC),
    Case("record_contiguous", lambda: Recorded("contiguous"), _STATIC),
    Case("record_to_half", lambda: Recorded("to_half"), _STATIC,
         refused=("Tensor.to()", "spk1 = spk1.to(torch.float16)", "torch.float32 tensor", "Remove it")),
    Case("record_item", lambda: Recorded("item"), _STATIC,
         refused=("Tensor.sum", "spk1 = spk1 * spk1.sum().item()", "outside the model", "custom_map")),
    Case("synaptic_subtract", SynapticNet, _STATIC),
    Case("synaptic_zero", lambda: SynapticNet("zero"), _STATIC),
    Case("rleaky_linear_features", RLeakyNet, _SEQ),
    Case("rleaky_one_to_one_V", lambda: RLeakyNet(all_to_all=False), _RATE),
    Case("rsynaptic_linear_features", RSynapticNet, _STATIC),
    Case("regression_mem_readout", Regression, _STATIC),
    Case("lapicque", LapicqueNet, _STATIC, gain=30.0),
    Case("init_hidden_class_utils_reset", HiddenLoop, _STATIC),
    Case("tut7_forward_pass_module", Tut7Wrapper, _RATE_IMG, gain=8.0),
    Case("batch_first_x_colon_step", BatchFirst, _SEQ.transpose(0, 1).contiguous()),
    Case("for_x_t_in_x_last_step", IterSteps, _SEQ, gain=6.0),
    Case("stack_sum0_readout", lambda: Unsupported("sum0"), _STATIC,
         refused=("'lif1'", "torch.stack(record, dim=0)", ".sum(0)", "outside")),
    Case("stack_dim2", lambda: Unsupported("stack_dim2"), _STATIC,
         refused=("'lif1'", "torch.stack(spk_rec, dim=2)", "along dim 0 (time-major) or dim 1 (batch-first)")),
    Case("return_list_of_steps", lambda: Unsupported("lists"), _STATIC,
         refused=("'lif1'", "Python list of per-step values", "torch.stack(spk_rec, dim=0)")),
    Case("slice_features", lambda: Unsupported("slice_features"), torch.rand(B, 14),
         refused=("self.fc1(x[:, :12])[:, :3]", "no slice or select node", "x[:, step]")),
    Case("index_dim2", lambda: WrongIndex("dim2"), torch.rand(B, 4, T),
         refused=("x[:, :, 1]", "xt = x[:, :, step]", "x[step]", "x[:, step]")),
    Case("index_step_and_slice", lambda: WrongIndex("slice"), torch.rand(B, T, 6),
         refused=("x[:, 1, :4]", "x[step]")),
    Case("data_dependent_if", DataDependent, _STATIC,
         refused=("DataDependent.forward", "if spk1.sum() > 0:", "custom_map")),
    Case("input_float_before_loop", lambda: InputViews("float"), torch.rand(T, B, 16)),
    Case("input_transpose_before_loop", lambda: InputViews("transpose"), torch.rand(B, T, 16)),
    Case("input_permute_before_loop", lambda: InputViews("permute"), torch.rand(B, T, 4, 4)),
    Case("input_view_T_before_loop", lambda: InputViews("view_T"), torch.rand(T, B, 4, 4),
         refused=("'lif1'", "x = x.view(x.size(0), x.size(1), -1)", "computed before the loop from the whole input",
                  "x[step].flatten(1)")),
    Case("input_view_T_fixed", lambda: InputViews("view_T_fixed"), torch.rand(T, B, 4, 4)),
    Case("stacked_then_returned", lambda: Records("stacked"), _STATIC),
    Case("preallocated_record", lambda: Records("prealloc"), _STATIC,
         refused=("item assignment", "out[step] = spk1", "torch.stack(spk_rec, dim=0)")),
    Case("two_loops", lambda: Records("two_loops"), _STATIC,
         refused=("'lif1'", "'lif2' in another loop", "one loop that calls every layer once per step")),
    Case("membrane_record_first", lambda: Records("mem_first"), _STATIC,
         refused=("'lif1'", "returns its membrane", "reset_mechanism='none'", "return the spikes")),
    Case("mean0_readout", lambda: Records("mean0"), _STATIC, refused=("torch.stack(spk_rec).mean(0)", "outside the model")),
    Case("cat_record", lambda: Records("cat"), _STATIC, refused=("torch.cat(spk_rec)", "torch.stack(record, dim=0)")),
    Case("dict_output", lambda: Records("dict"), _STATIC, refused=("returns a dict", "torch.stack(spk_rec, dim=0)")),
    # refused before session 8; the last step picked out of the record is the last step's value, and now exports
    Case("stack_then_index_last", lambda: Records("stack_last"), _STATIC),
    Case("inhibition", lambda: OtherNeurons("inhibition"), _STATIC, refused=("'lif1'", "inhibition=True", "custom_map")),
    Case("alpha_neuron", lambda: OtherNeurons("alpha"), _STATIC),  # exported exactly since issue 16 (docs/neurons/alpha.md)
    Case("slstm_neuron", lambda: OtherNeurons("slstm"), _STATIC, refused=("'lif1'", "SLSTM", "no converter", "custom_map")),
    Case("two_forward_inputs", TwoInputs, _STATIC, refused=("TwoInputs", "'bias' has no default")),
    Case("data_dependent_submodule", GatedNet, _STATIC,
         refused=("module 'gate' (Gate)", "if x.mean() > 0.5:", "custom_map={Gate: fn}")),
    Case("trace_only_failure", ProxyCheck, _STATIC,
         refused=("ProxyCheck runs on the sample (3, 12)", "x = x.view(-1, 24)", "custom_map")),
    Case("spikegen_rate_inside_forward", RateInside, _STATIC,
         refused=("spk_in = spikegen.rate(x, num_steps=num_steps)", "belongs outside the model")),
    Case("state_in_model_attribute", AttributeState, _SEQ, stepped=True,
         refused=("self.mem1", "reads back", "init_hidden=True", "def forward(self, x, mem1=None)")),
    Case("state_in_neuron_no_argument", lambda: AttributeState(in_attribute=False), _SEQ, stepped=True),
    Case("module_list_layers", LayerLists, _STATIC),
    Case("blocks_with_state_arguments", Blocks, _STATIC, gain=5.0),
    Case("residual_and_cat_per_step", ResidualCat, _STATIC),
    Case("synaptic_membrane_readout", SynapticReadout, _STATIC,
         refused=("'syn1'", "returns its state 'mem'", "reset_mechanism='none'", "return the spikes")),
    # refused before session 8; torch.cat of unsqueezed steps is the record torch.stack builds, and now exports
    Case("unsqueeze_then_cat_record", lambda: SynapticReadout(unsqueeze_cat=True), _STATIC),
    Case("rleaky_reset_zero", lambda: NeuronVariant(lambda: snn.RLeaky(beta=beta, linear_features=8,
                                                                        reset_mechanism="zero")), _STATIC),
    Case("rleaky_conv2d_channels", lambda: NeuronVariant(lambda: snn.RLeaky(beta=beta, conv2d_channels=4, kernel_size=3),
                                                         conv=True), _IMAGE),
    Case("rsynaptic_one_to_one", lambda: NeuronVariant(lambda: snn.RSynaptic(alpha=0.8, beta=beta, all_to_all=False,
                                                                             V=torch.full((8,), 0.3))), _STATIC),
    Case("synaptic_per_neuron_learnable", lambda: NeuronVariant(lambda: snn.Synaptic(
        alpha=torch.linspace(0.5, 0.9, 8), beta=torch.linspace(0.6, 0.95, 8), learn_alpha=True, learn_beta=True)), _STATIC),
    Case("leaky_graded_learnable", lambda: NeuronVariant(lambda: snn.Leaky(
        beta=beta, graded_spikes_factor=2.0, learn_graded_spikes_factor=True)), _STATIC),
    Case("leaky_conv_per_channel_beta", lambda: NeuronVariant(lambda: snn.Leaky(beta=torch.rand(4, 1, 1) * 0.5 + 0.4),
                                                              conv=True), _IMAGE),
    Case("recurrence_by_hand", RecurrentByHand, _STATIC,
         refused=("'lif1'", "self.lif1(self.fc1(x) + self.rec1(spk1), mem1)", "earlier step", "snn.RLeaky")),
    Case("squeeze_dim", lambda: Squeezed("dim"), _SEQ.unsqueeze(2), stepped=True),
    Case("squeeze_no_dim_batch_1", lambda: Squeezed("all"), torch.rand(T, 1, 1, 12), stepped=True,
         refused=("x = x.squeeze(1) if", "changing the batch dimension", "x.squeeze(1)")),
    Case("readout_after_loop", lambda: ReadoutAfterLoop("linear"), _STATIC),
    Case("readout_ops_after_loop", lambda: ReadoutAfterLoop("ops"), _STATIC),
    Case("neuron_after_loop", lambda: ReadoutAfterLoop("neuron"), _STATIC,
         refused=("'lif_out'", "called once, after the time loop", "call it inside the loop")),
    Case("readout_of_first_step", lambda: ReadoutAfterLoop("first"), _STATIC,
         refused=("self.fc_out(spk_rec[0])", "of an earlier step", "outside the model")),
    Case("state_changed_on_the_way_in", lambda: ChangedState(True), _SEQ, stepped=True, explicit_state=True,
         refused=("'lif1'", "mem1 = mem1 * 0.5 if self.change", "Pass the state to the neuron unchanged")),
    Case("state_detached_on_the_way_in", lambda: ChangedState(False), _SEQ, stepped=True, explicit_state=True),
    Case("explicit_states_caller_loop", ExplicitStates, _SEQ, stepped=True, explicit_state=True),
    Case("sequential_mlp_init_hidden", sequential_mlp, _RATE, stepped=True),
    Case("sequential_synaptic", sequential_synaptic, _SEQ, stepped=True),
    Case("sequential_reset_none_zero", sequential_reset_none, _SEQ, stepped=True),
    Case("sequential_rleaky", sequential_rleaky, _SEQ, stepped=True),
    Case("sequential_tut7_conv", sequential_conv, _RATE_IMG, stepped=True, gain=8.0),
]


def _first(out: Any) -> torch.Tensor:
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def reference(case: Case, model: nn.Module) -> torch.Tensor:
    """What snnTorch computes: forward's first returned value, or the stepped outputs stacked."""
    with torch.no_grad():
        if not case.stepped:
            return _first(model(case.data))
        utils.reset(model)
        outs, state = [], ()
        for x in case.data:
            out = model(x, *state)
            if case.explicit_state:
                state = tuple(out[1:])
            outs.append(_first(out))
        return torch.stack(outs)


def talon_steps(case: Case, graph: ir.Graph) -> tuple[torch.Tensor, bool]:
    """The executor stepped over the inputs the model saw; (outputs, only the last step is forward's value)."""
    loop = graph.metadata.get("time_loop")
    if case.stepped:
        steps = list(case.data)
    elif loop is None:
        steps = [case.data]
    elif loop["input"] == "static":
        steps = [case.data] * graph.metadata["num_steps"]
    else:
        steps = list(case.data.unbind(loop.get("time_dim", 0)))
    ex = ir_to_torch(graph)
    with torch.no_grad():
        out = torch.stack([ex(x) for x in steps])
    return out, bool(loop and loop["output"] == "last")


def export(model: nn.Module, case: Case) -> ir.Graph:
    sample = case.data[0] if case.stepped else case.data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_ir(model, sample)


@pytest.mark.parametrize("case", [c for c in CASES if c.refused is None], ids=lambda c: c.name)
def test_exports_spike_exact(case: Case, tmp_path) -> None:
    model = boost(case.build(), case.gain).eval()
    graph = export(model, case)
    ir.write(tmp_path / "m.t1c", graph)
    graph = ir.read(tmp_path / "m.t1c")
    want = reference(case, model)
    got, last_only = talon_steps(case, graph)
    if last_only:
        got = got[-1]
    assert got.shape == want.shape
    mismatches = int((got != want).sum())
    assert mismatches == 0, f"{case.name}: {mismatches} of {want.numel()} values differ"
    if case.name not in ("regression_mem_readout", "readout_after_loop", "readout_ops_after_loop"):  # spikes: some, not all
        rate = float((want != 0).float().mean())
        assert 0.02 <= rate <= 0.98, f"{case.name}: activity {rate:.3f} proves little"


@pytest.mark.parametrize("case", [c for c in CASES if c.refused is not None], ids=lambda c: c.name)
def test_refused_with_reason(case: Case) -> None:
    model = case.build().eval()
    with pytest.raises(UnsupportedModuleError) as info:
        export(model, case)
    msg = str(info.value)
    for fragment in case.refused:
        assert fragment in msg, msg
    if case.stepped:  # the refused export leaves the model as it was: snnTorch still runs it
        reference(case, model)
    assert "getitem" not in msg and "iteration" not in msg, msg  # fx's internals, not the user's code


def test_dropout_left_in_training_mode_warns_and_matches_eval() -> None:
    """nn.Dropout in train mode: a warning at export; the graph is the eval-mode model, exactly."""
    model = boost(sequential_dropout_train())
    with pytest.warns(UserWarning, match="training mode"):
        graph = to_ir(model, _SEQ[0])
    assert model.training  # the export leaves the model as it was
    case = Case("dropout", sequential_dropout_train, _SEQ, stepped=True)
    want = reference(case, model.eval())
    got, _ = talon_steps(case, graph)
    assert torch.equal(got, want)


class FixedBatch(nn.Module):
    """Tutorial 6 writes `spk2.view(batch_size, -1)` with the training batch size (128)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.lif1 = snn.Leaky(beta=beta)
        self.fc1 = nn.Linear(4 * 3 * 3, 5)
        self.lif2 = snn.Leaky(beta=beta)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk1, mem1 = self.lif1(F.max_pool2d(self.conv1(x), 2), mem1)
        spk2, mem2 = self.lif2(self.fc1(spk1.view(128, -1)), mem2)
        return spk2, mem2


def test_a_fixed_batch_size_names_the_line_and_both_fixes() -> None:
    from talon.errors import TalonUsageError
    with pytest.raises(TalonUsageError) as info:
        to_ir(FixedBatch(), torch.rand(1, 1, 8, 8))
    msg = str(info.value)
    for fragment in ("spk1.view(128, -1)", "fixes the batch size to 128", "sample with batch 128", ".view(x.size(0), -1)"):
        assert fragment in msg, msg


def test_a_float64_model_is_rounded_with_a_warning() -> None:
    """The IR is float32: exporting a `.double()` model rounds it, which must not pass silently."""
    from talon.bridge.export import ExportWarning
    model = nn.Sequential(nn.Linear(12, 4), nn.ReLU())
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExportWarning)
        to_ir(model, _STATIC)  # float32: no warning
    with pytest.warns(ExportWarning, match="float64"):
        to_ir(model.double(), _STATIC.double())
