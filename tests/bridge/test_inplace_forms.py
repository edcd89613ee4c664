"""In-place operations in forward, written the way users write them: exported exactly or refused.

torch.fx records `y.mul_(2.0)` as a node whose result nobody reads; the export must not drop the overwrite
silently (it used to export `fc` alone). Every in-place op is refused with the node named and the
out-of-place form to write instead; `nn.ReLU(inplace=True)` after a layer, the common exact case, still
exports and matches snnTorch spike for spike.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

snn = pytest.importorskip("snntorch")

from talon.bridge.executor import ir_to_torch  # noqa: E402
from talon.bridge.export import export_to_ir  # noqa: E402
from talon.errors import UnsupportedModuleError  # noqa: E402

T = 12


class Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        y = self.fc(x)
        y.mul_(2.0)
        return y


class Loop(nn.Module):
    """Tutorial 5's loop with one in-place statement (`form`) inserted."""

    def __init__(self, form):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(20, 30)
        self.lif1 = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(30, 10)
        self.lif2 = snn.Leaky(beta=0.9)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk2_rec = []
        if self.form == "x.add_":
            x = x.clone()
            x.add_(1.0)
        for step in range(T):
            cur1 = self.fc1(x)
            if self.form == "cur1.mul_":
                cur1.mul_(2.0)
            elif self.form == "F.relu(inplace=True)":
                F.relu(cur1, inplace=True)
            elif self.form == "torch.relu_":
                torch.relu_(cur1)
            spk1, mem1 = self.lif1(cur1, mem1)
            if self.form == "spk1.mul_":
                spk1.mul_(3.0)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
        return torch.stack(spk2_rec, dim=0)


def test_an_unused_in_place_result_is_refused_not_dropped():
    with pytest.raises(UnsupportedModuleError, match=r"Tensor\.mul_.*y = y \* 2\.0 instead of y\.mul_\(2\.0\)"):
        export_to_ir(Plain().eval(), torch.rand(2, 4))


@pytest.mark.parametrize("form", ["cur1.mul_", "F.relu(inplace=True)", "torch.relu_", "spk1.mul_", "x.add_"])
def test_in_place_ops_in_a_tutorial_loop_are_refused(form):
    with pytest.raises(UnsupportedModuleError, match="in-place operation"):
        export_to_ir(Loop(form).eval(), torch.rand(3, 20))


class ReluNet(nn.Module):
    def __init__(self, reuse: bool):
        super().__init__()
        self.reuse = reuse
        self.fc1 = nn.Linear(20, 30)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(30, 10)
        self.lif = snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        rec = []
        for step in range(T):
            cur = self.fc1(x)
            h = self.act(cur)
            if self.reuse:
                h = h + cur  # reads the overwritten tensor again
            rec.append(self.lif(self.fc2(h)))
        return torch.stack(rec)


def test_relu_inplace_after_a_layer_is_exact():
    torch.manual_seed(0)
    net = ReluNet(reuse=False).eval()
    with torch.no_grad():
        net.fc2.weight.mul_(4.0)
    x = torch.rand(3, 20)
    graph = export_to_ir(net, x)
    assert list(graph.nodes) == ["input", "fc1", "act", "fc2", "lif", "output"]
    ex = ir_to_torch(graph)
    with torch.no_grad():
        want = net(x)
        got = torch.stack([ex(x) for _ in range(T)])
    assert want.sum() > 0
    assert torch.equal(got, want)


def test_relu_inplace_whose_input_is_read_again_is_refused():
    with pytest.raises(UnsupportedModuleError, match=r"'act'.*inplace=True.*inplace=False"):
        export_to_ir(ReluNet(reuse=True).eval(), torch.rand(3, 20))


class AugNet(nn.Module):
    """`c += c2` inside tutorial 5's loop; `alias` keeps a second name for c and feeds that to the neuron."""

    def __init__(self, alias: bool):
        super().__init__()
        self.alias = alias
        self.fc1 = nn.Linear(20, 30)
        self.fc1b = nn.Linear(20, 30)
        self.lif1 = snn.Leaky(beta=0.9)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        rec = []
        for step in range(T):
            c = self.fc1(x)
            kept = c
            c += self.fc1b(x)
            spk1, mem1 = self.lif1(kept if self.alias else c, mem1)
            rec.append(spk1)
        return torch.stack(rec)


def test_augmented_add_on_a_fresh_tensor_is_exact():
    torch.manual_seed(1)
    net = AugNet(alias=False).eval()
    x = torch.rand(3, 20) * 3
    graph = export_to_ir(net, x)
    ex = ir_to_torch(graph)
    with torch.no_grad():
        want = net(x)
        got = torch.stack([ex(x) for _ in range(T)])
    assert 0 < want.mean() < 1
    assert torch.equal(got, want)


def test_augmented_add_whose_tensor_is_read_through_another_name_is_refused():
    with pytest.raises(UnsupportedModuleError, match=r"a \+= b.*read again afterwards.*a = a \+ b"):
        export_to_ir(AugNet(alias=True).eval(), torch.rand(3, 20))
