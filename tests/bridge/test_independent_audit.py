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

from firing import boost  # noqa: E402

T, B = 30, 3


def _boost_linear(model: nn.Module, gain: float = 3.0) -> nn.Module:
    return boost(model, gain, layers=(nn.Linear,)).eval()


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
    model = _boost_linear(nn.Sequential(nn.Linear(12, 8), snn.Leaky(init_hidden=True, **kwargs)))
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
    model = _boost_linear(_EventFrames(), gain=2.0)
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
    model = _boost_linear(_Loop("restart"), gain=4.0)
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


# ------------------------------------------------------------------------------------------------
# Forms the audit found exact: kept so that they stay so.
# ------------------------------------------------------------------------------------------------

def _leaky(**kw):
    return snn.Leaky(init_hidden=True, **{"beta": 0.9, **kw})


def _trained(beta: float, threshold: float) -> nn.Module:
    net = nn.Sequential(nn.Linear(12, 8), _leaky(learn_beta=True, learn_threshold=True))
    with torch.no_grad():
        net[1].beta.fill_(beta)
        net[1].threshold.fill_(threshold)
    return net


def _reassigned(**attrs) -> nn.Module:
    net = nn.Sequential(nn.Linear(12, 8), _leaky())
    for k, v in attrs.items():
        setattr(net[1], k, v)
    return net


class _Shared(nn.Module):
    """One nn.Linear used by two layers."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(12, 12)
        self.lif1, self.lif2 = snn.Leaky(beta=0.9, init_hidden=True), snn.Leaky(beta=0.8, init_hidden=True)

    def forward(self, x):
        return self.lif2(self.fc(self.lif1(self.fc(x))))


class _ForwardPass(nn.Module):
    """snnTorch tutorial 7's forward_pass(net, data) moved into a module, with output=True neurons."""

    def __init__(self, neuron: str):
        super().__init__()
        if neuron == "synaptic":
            a, b = (snn.Synaptic(alpha=0.8, beta=0.9, init_hidden=True),
                    snn.Synaptic(alpha=0.7, beta=0.8, init_hidden=True, output=True))
        else:
            a, b = (snn.RLeaky(beta=0.9, linear_features=8, init_hidden=True),
                    snn.RLeaky(beta=0.8, linear_features=4, init_hidden=True, output=True))
        self.net = nn.Sequential(nn.Linear(12, 8), a, nn.Linear(8, 4), b)

    def forward(self, data):
        spk_rec = []
        utils.reset(self.net)
        for step in range(data.size(0)):
            spk_out = self.net(data[step])[0]
            spk_rec.append(spk_out)
        return torch.stack(spk_rec)


class _LoopForm(nn.Module):
    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1, self.lif1 = nn.Linear(12, 8), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(8, 4), snn.Leaky(beta=0.9)

    def step(self, xt, mem1, mem2):
        spk1, mem1 = self.lif1(self.fc1(xt), mem1)
        spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
        return spk2, mem1, mem2

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        rec = []
        if self.form == "enumerate":
            for _, xt in enumerate(x):
                spk2, mem1, mem2 = self.step(xt, mem1, mem2)
                rec.append(spk2)
        elif self.form == "first_step_outside":
            spk2, mem1, mem2 = self.step(x[0], mem1, mem2)
            rec.append(spk2)
            for t in range(1, x.shape[0]):
                spk2, mem1, mem2 = self.step(x[t], mem1, mem2)
                rec.append(spk2)
        elif self.form == "while":
            t = 0
            while t < x.shape[0]:
                spk2, mem1, mem2 = self.step(x[t], mem1, mem2)
                rec.append(spk2)
                t += 1
        return torch.stack(rec)


_SEQ12 = torch.rand(T, B, 12, generator=torch.Generator().manual_seed(11))
_SEQ3D = torch.rand(T, B, 4, 12, generator=torch.Generator().manual_seed(12))
_IMG = torch.rand(T, B, 2, 10, 10, generator=torch.Generator().manual_seed(13))
_SIG = torch.rand(T, B, 2, 20, generator=torch.Generator().manual_seed(14))

EXACT = {  # name: (build, data, one-step model stepped by the caller?, weight gain)
    "sequential_output_true": (lambda: nn.Sequential(nn.Linear(12, 8), _leaky(), nn.Linear(8, 4), _leaky(output=True)),
                               _SEQ12, True, 4.0),
    "threshold_nn_parameter_learnable": (lambda: nn.Sequential(nn.Linear(12, 8), _leaky(
        threshold=torch.tensor(0.7), learn_threshold=True)), _SEQ12, True, 3.0),
    "trained_beta_negative": (lambda: _trained(-0.3, 1.0), _SEQ12, True, 3.0),
    "trained_beta_above_one_threshold_negative": (lambda: _trained(1.3, -0.1), _SEQ12, True, 3.0),
    "beta_threshold_graded_reassigned": (lambda: _reassigned(beta=torch.tensor(0.5), threshold=torch.tensor(0.4),
                                                             graded_spikes_factor=torch.tensor(3.0)), _SEQ12, True, 3.0),
    "reset_delay_reassigned": (lambda: _reassigned(reset_delay=False), _SEQ12, True, 5.0),
    "beta_with_batch_dim": (lambda: nn.Sequential(nn.Linear(12, 8), _leaky(beta=torch.linspace(0.3, 0.95, 8)[None])),
                            _SEQ12, True, 3.0),
    "linear_on_3d_per_row_beta": (lambda: nn.Sequential(nn.Linear(12, 8), _leaky(beta=torch.linspace(0.3, 0.95, 4)[:, None]),
                                                        nn.Flatten()), _SEQ3D, True, 3.0),
    "conv_stride_pad_dilation_groups_nobias": (lambda: nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=2, stride=2, dilation=2, groups=2, bias=False), _leaky(threshold=torch.rand(4, 5, 5) + 0.3),
        nn.Flatten()), _IMG, True, 5.0),
    "conv1d_padding_same_batchnorm_eval": (lambda: nn.Sequential(
        nn.Conv1d(2, 4, 3, padding="same"), nn.BatchNorm1d(4), _leaky(), nn.Flatten(), nn.Linear(80, 4, bias=False), _leaky()),
        _SIG, True, 5.0),
    "shared_linear_two_layers": (_Shared, _SEQ12, True, 3.0),
    "activations_tanh_gelu_tanh_elu": (lambda: nn.Sequential(nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 8),
                                                             nn.GELU(approximate="tanh"), nn.ELU(alpha=0.4), _leaky()),
                                       _SEQ12, True, 4.0),
    "forward_pass_synaptic_output_true": (lambda: _ForwardPass("synaptic"), _SEQ12, False, 4.0),
    "forward_pass_rleaky_output_true": (lambda: _ForwardPass("rleaky"), _SEQ12, False, 4.0),
    "loop_enumerate": (lambda: _LoopForm("enumerate"), _SEQ12, False, 4.0),
    "loop_first_step_outside": (lambda: _LoopForm("first_step_outside"), _SEQ12, False, 4.0),
    "loop_while": (lambda: _LoopForm("while"), _SEQ12, False, 4.0),
}


def _spikes(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", list(EXACT))
def test_new_forms_are_exact(name, tmp_path):
    build, data, stepped, gain = EXACT[name]
    model = boost(build(), layers=(nn.Linear, nn.Conv1d, nn.Conv2d), gain=gain).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = to_ir(model, data[0] if stepped else data)
    ir.write(tmp_path / "m.t1c", graph)
    graph = ir.read(tmp_path / "m.t1c")
    with torch.no_grad():
        utils.reset(model)
        # an output=True neuron returns (spk, mem): the spike is the graph's output
        want = torch.stack([_spikes(model(x)) for x in data]) if stepped else model(data)
        ex = ir_to_torch(graph)
        got = torch.stack([ex(x) for x in data])
        run = ir_to_torch(graph).run(data, batch_time=False)
    assert torch.equal(got, want), f"{name}: {int((got != want).sum())} of {want.numel()} differ"
    assert torch.equal(run, want)
    rate = float((want != 0).float().mean())
    assert 0.02 <= rate <= 0.98, f"{name}: activity {rate:.3f} proves little"
