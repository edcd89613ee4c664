"""An independent audit of `to_ir`: forms the earlier audits did not try, each run against snnTorch itself.

Every case either exports exactly (the executor stepped, and `run()`, after a .t1c round trip, reproduce
snnTorch value for value) or is refused with a TALON error that names the thing at fault; never a crash
with a torch/Python exception.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

snn = pytest.importorskip("snntorch")
from snntorch import utils  # noqa: E402

from talon import ir  # noqa: E402
from talon.bridge.executor import ir_to_torch  # noqa: E402
from talon.bridge.export import to_ir  # noqa: E402

T, B = 30, 3


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _boost(model: nn.Module, gain: float = 3.0) -> nn.Module:
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -1.0, 1.0)
            with torch.no_grad():
                m.weight.mul_(gain / m.weight[0].numel() ** 0.5)
    return model.eval()


def _assert_stepped_exact(model: nn.Module, seq: torch.Tensor, tmp_path) -> None:
    """A one-step model (init_hidden neurons) stepped over seq by snnTorch and by the exported graph."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = to_ir(model, seq[0])
    ir.write(tmp_path / "m.t1c", graph)
    graph = ir.read(tmp_path / "m.t1c")
    with torch.no_grad():
        utils.reset(model)
        want = torch.stack([model(x) for x in seq])
        ex = ir_to_torch(graph)
        stepped = torch.stack([ex(x) for x in seq])
        run = ir_to_torch(graph).run(seq, batch_time=False)
    assert torch.equal(stepped, want)
    assert torch.equal(run, want)
    assert 0.02 < float(want.mean()) < 0.98, "the comparison needs spikes"


@pytest.mark.parametrize("constant", ["threshold", "beta"])
def test_a_neuron_constant_passed_as_nn_parameter_exports(constant, tmp_path):
    """`snn.Leaky(threshold=nn.Parameter(...))` without learn_threshold keeps a buffer that requires grad:
    the export used to crash with torch's "leaf Variable ... in-place operation" while restoring it."""
    kwargs = {"beta": 0.9, constant: nn.Parameter(torch.tensor(0.6 if constant == "threshold" else 0.8))}
    model = _boost(nn.Sequential(nn.Linear(12, 8), snn.Leaky(init_hidden=True, **kwargs)))
    torch.manual_seed(1)
    _assert_stepped_exact(model, torch.rand(T, B, 12), tmp_path)
    assert getattr(model[1], constant).requires_grad  # left as it was


class _EventFrames(nn.Module):
    """tonic frames arrive as uint8 (or bool spikes); forward converts them first."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 8)
        self.lif = snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        x = x.float()
        return self.lif(self.fc(x))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bool])
def test_an_integer_input_converted_in_forward_gets_a_way_forward_that_works(dtype, tmp_path):
    from talon.errors import UnsupportedModuleError
    model = _boost(_EventFrames(), gain=2.0)
    torch.manual_seed(2)
    frames = (torch.rand(T, B, 12) * 3).to(dtype)
    with pytest.raises(UnsupportedModuleError) as info:
        to_ir(model, frames[0])
    msg = str(info.value)
    for fragment in ("x = x.float()", f"a {dtype} sample", "to_ir(model, sample.float())", "x.float()"):
        assert fragment in msg, msg
    graph = to_ir(model, frames[0].float())  # the advice, followed
    ir.write(tmp_path / "m.t1c", graph)
    ex = ir_to_torch(ir.read(tmp_path / "m.t1c"))
    with torch.no_grad():
        utils.reset(model)
        want = torch.stack([model(x) for x in frames])
        got = torch.stack([ex(x.float()) for x in frames])
    assert torch.equal(got, want)
    assert 0.02 < float(want.mean()) < 0.98


class _Loop(nn.Module):
    """Tutorial 5's net, with one of the loop variants users write."""

    def __init__(self, variant: str = ""):
        super().__init__()
        self.variant = variant
        self.fc1, self.lif1 = nn.Linear(12, 8), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(8, 4), snn.Leaky(beta=0.9)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk2_rec = []
        for step in range(x.shape[0]):
            if self.variant == "restart" and step == 15:
                mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            if self.variant == "skip" and step == 0:
                spk2 = torch.zeros_like(spk1[:, :4])
            else:
                spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk2_rec.append(spk2)
        return torch.stack(spk2_rec)


def test_a_neuron_skipped_in_some_steps_is_named_not_the_one_called_every_step():
    from talon.errors import UnsupportedModuleError
    with pytest.raises(UnsupportedModuleError) as info:
        to_ir(_Loop("skip"), torch.rand(T, B, 12))
    msg = str(info.value)
    for fragment in ("'lif2'", f"called {T - 1} times", f"'lif1' {T} times", "if step > 0:", "once in every step"):
        assert fragment in msg, msg


def test_a_restart_part_way_through_the_loop_says_where_and_the_way_forward_works(tmp_path):
    from talon.errors import UnsupportedModuleError
    model = _boost(_Loop("restart"), gain=4.0)
    torch.manual_seed(3)
    x = torch.rand(T, B, 12)
    with pytest.raises(UnsupportedModuleError) as info:
        to_ir(model, x)
    msg = str(info.value)
    for fragment in ("'lif1'", "set anew in step 15", "reset() at that step"):
        assert fragment in msg, msg
    plain = _Loop()
    plain.load_state_dict(model.state_dict())
    graph = to_ir(plain, x)  # the advice: export without the restart, reset the executor at step 15
    ir.write(tmp_path / "m.t1c", graph)
    ex = ir_to_torch(ir.read(tmp_path / "m.t1c"))
    with torch.no_grad():
        want = model(x)
        got = []
        for step, xt in enumerate(x):
            if step == 15:
                ex.reset()
            got.append(ex(xt))
    assert torch.equal(torch.stack(got), want)
    assert 0.02 < float(want.mean()) < 0.98


class _Pieces(nn.Module):
    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc = nn.Linear(12, 8)
        self.lif = snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        h = self.fc(x)
        if self.form == "chunk":
            a, b = h.chunk(2, dim=1)
        elif self.form == "split":
            a, b = torch.split(h, 4, dim=1)
        else:
            a = b = h.max(dim=1, keepdim=True)[0] * torch.ones(1, 4)
        return self.lif(torch.cat([b, a], dim=1))


@pytest.mark.parametrize("form, fragment", [("chunk", "Tensor.chunk at `a, b = h.chunk(2, dim=1)`"),
                                            ("split", "split at `a, b = torch.split(h, 4, dim=1)`"),
                                            ("max", "Tensor.max at `a = b = h.max(dim=1, keepdim=True)[0]")])
def test_an_op_that_returns_pieces_is_named_itself_not_blamed_on_a_constant(form, fragment):
    from talon.errors import UnsupportedModuleError
    with pytest.raises(UnsupportedModuleError) as info:
        to_ir(_Pieces(form), torch.rand(B, 12))
    msg = str(info.value)
    assert fragment in msg and "has no IR equivalent" in msg, msg
    assert "does not come from the input" not in msg, msg
