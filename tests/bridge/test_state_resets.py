"""Neuron state reset or set from Python inside forward, written the way the audit and users write it.

`utils.reset(self)`, `reset_mem()`, `init_leaky()` and `self.lif.mem = ...` are not recorded by torch.fx.
A zero reset before the time loop (tutorial 7) is exact and matches snnTorch spike for spike; a reset inside
the loop, a non-zero start, or a reset at the start of a one-step forward the caller steps is refused with
the neuron named, never exported as a neuron that silently keeps its state.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

snn = pytest.importorskip("snntorch")
from snntorch import utils  # noqa: E402

from talon.bridge.executor import ir_to_torch  # noqa: E402
from talon.bridge.export import export_to_ir  # noqa: E402
from talon.errors import UnsupportedModuleError  # noqa: E402

T = 15


class Net(nn.Module):
    def __init__(self, where: str, init_hidden: bool = True):
        super().__init__()
        self.where = where
        self.fc = nn.Linear(20, 30)
        self.lif = snn.Leaky(beta=0.9, init_hidden=init_hidden)
        with torch.no_grad():
            self.fc.weight.mul_(3)

    def _write(self, x):
        if self.where.endswith("utils.reset"):
            utils.reset(self)
        elif self.where.endswith("reset_mem"):
            self.lif.reset_mem()
        elif self.where.endswith("init_leaky"):
            self.lif.init_leaky()
        elif self.where.endswith("mem=0"):
            self.lif.mem = torch.zeros(1)
        elif self.where.endswith("mem=0.7"):
            self.lif.mem = torch.full((x.size(0), 30), 0.7)

    def forward(self, x):
        rec = []
        if self.where.startswith("before:"):
            self._write(x)
        for step in range(T):
            if self.where.startswith("inside:"):
                self._write(x)
            out = self.lif(self.fc(x))
            rec.append(out if self.lif.init_hidden else out[0])
        return torch.stack(rec)


@pytest.mark.parametrize("where", ["before:utils.reset", "before:reset_mem", "before:init_leaky", "before:mem=0"])
@pytest.mark.parametrize("init_hidden", [True, False])
def test_a_zero_reset_before_the_loop_is_exact(where, init_hidden):
    torch.manual_seed(0)
    net = Net(where, init_hidden).eval()
    x = torch.rand(3, 20)
    graph = export_to_ir(net, x)
    ex = ir_to_torch(graph)
    with torch.no_grad():
        want = net(x)
        got = torch.stack([ex(x) for _ in range(T)])
    assert 0 < want.mean() < 1
    assert torch.equal(got, want)


@pytest.mark.parametrize("where", ["inside:utils.reset", "inside:reset_mem", "inside:init_leaky", "inside:mem=0"])
@pytest.mark.parametrize("init_hidden", [True, False])
def test_a_reset_inside_the_loop_is_refused(where, init_hidden):
    with pytest.raises(UnsupportedModuleError, match=r"'lif'.*inside the time loop.*executor\.reset\(\)"):
        export_to_ir(Net(where, init_hidden).eval(), torch.rand(3, 20))


def test_a_non_zero_start_is_refused():
    with pytest.raises(UnsupportedModuleError, match=r"'lif'.*non-zero value before the time loop"):
        export_to_ir(Net("before:mem=0.7").eval(), torch.rand(3, 20))


class OneStep(nn.Module):
    """Reset at the start of a one-step forward that the caller steps: every call restarts the neuron."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(20, 30)
        self.lif = snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        utils.reset(self)
        return self.lif(self.fc(x))


def test_a_reset_in_a_one_step_forward_is_refused():
    with pytest.raises(UnsupportedModuleError, match=r"'lif'.*every call of forward restarts the neuron"):
        export_to_ir(OneStep().eval(), torch.rand(3, 20))


def test_the_neuron_classes_are_left_as_they_were():
    export_to_ir(Net("before:utils.reset").eval(), torch.rand(3, 20))
    assert "__setattr__" not in snn.Leaky.__dict__
