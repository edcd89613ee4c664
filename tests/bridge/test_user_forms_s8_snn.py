"""Session 8's trust audit of the snnTorch export: forms the earlier audits (test_user_forms_s7.py,
test_user_forms_audit.py, test_tutorial_forms.py, test_independent_audit.py, test_inplace_forms.py) did not try.

The references are snnTorch itself: each model is exported with `export_to_ir` (snnTorch's name), written to a
.t1c file and read back, and the executor, stepped over the same inputs, must give forward's record **and the
membrane record** bit for bit. Found in this session:

* `torch.stack(rec, axis=1)` (numpy's spelling, which torch accepts) was read as dim 0: the metadata said the
  record was time-major while forward returned it batch-first (a silent divergence); `torch.stack(tensors=rec)`
  crashed with an IndexError; `torch.cat([a, b], axis=1)` was refused as "concatenates along the batch dimension".
* Records laid out in the other ways users write them were refused: `torch.cat` / `vstack` / `hstack` of
  `spk.unsqueeze(0)` or `spk[None]`, and `torch.stack(rec).transpose(0, 1)` / `.permute(1, 0, 2)`.
* An input view taken before the loop lost the sample's sizes, so `x = x.permute(1, 0, 2); for x_t in x`,
  `x = x.float(); range(x.size(0))` and `for x_t in x.unbind(1)` / `torch.unbind(x, dim=1)` failed in torch.fx;
  `torch.zeros(B, n, device=x.device)` before a loop over `x[:, step]` was refused as computed from the input.
* `self.fc.forward(x)` / `self.lif.forward(cur, mem)` (a layer's forward called directly) failed in torch.fx or
  was refused as `F.linear`.
* `torch.stack(rec)[-1]` (and `self.fc_out(torch.stack(rec)[-1])`) was refused; `torch.stack(rec).detach().cpu()`
  was refused.
* Truncated BPTT (`mem.detach()` as the state, `mem = mem.detach()`, `self.lif.mem = self.lif.mem.detach()`)
  was refused as "not its own mem"; `return spk, mem.clone()` was refused while `return spk, mem` exports.
* A state kept in a list or dict attribute (`self.states[0] = mem`) exported as a memoryless Threshold (a silent
  divergence) and left fx proxies in the user's model, which then failed in snnTorch: now refused by item, with
  the model's containers put back.
"""

from __future__ import annotations

import io
import warnings
from typing import Callable

import pytest
import torch
import torch.nn as nn

snn = pytest.importorskip("snntorch")
from snntorch import utils  # noqa: E402
from snntorch.export_talonir import export_to_ir  # noqa: E402
from snntorch.import_talonir import import_from_ir  # noqa: E402

from talon import ir  # noqa: E402
from talon.errors import UnsupportedModuleError  # noqa: E402

from firing import boost  # noqa: E402

T, B = 6, 3
_gen = torch.Generator().manual_seed(8)
SEQ = torch.rand(T, B, 12, generator=_gen)          # time-major (T, B, F)
BATCH_FIRST = SEQ.transpose(0, 1).contiguous()       # (B, T, F)
IMG = torch.rand(T, B, 2, 8, 8, generator=_gen)
LAYERS = (nn.Linear, nn.Conv2d)


@pytest.fixture
def forget_neurons():
    """utils.reset resets every neuron snnTorch ever built (SpikingNeuron.instances): forget this test's."""
    before = list(snn.SpikingNeuron.instances)
    yield
    snn.SpikingNeuron.instances[:] = before


def roundtrip(model: nn.Module, sample: torch.Tensor, tmp_path) -> ir.Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_to_ir(model, sample)
    path = tmp_path / "m.t1c"
    ir.write(path, graph)
    loaded = ir.read(path)
    assert loaded == graph
    return loaded


# ------------------------------------------------------------------------------------------------
# time loops: the record forward returns, laid out as users write it
# ------------------------------------------------------------------------------------------------

def _record(form: str, rec: list, mrec: list):
    """forward's return value for each record form: (spikes, membranes) in the same layout."""
    return {
        "stack_tensors_keyword": lambda r: torch.stack(tensors=r, dim=0),
        "stack_axis_0": lambda r: torch.stack(r, axis=0),
        "stack_axis_1": lambda r: torch.stack(r, axis=1),
        "cat_of_unsqueezed": lambda r: torch.cat([s.unsqueeze(0) for s in r]),
        "concat_of_none_index": lambda r: torch.concat([s[None] for s in r], dim=0),
        "vstack_of_unsqueezed": lambda r: torch.vstack([torch.unsqueeze(s, 0) for s in r]),
        "cat_batch_first": lambda r: torch.cat([s.unsqueeze(1) for s in r], dim=1),
        "hstack_batch_first": lambda r: torch.hstack([s[:, None] for s in r]),
        "stack_then_transpose": lambda r: torch.stack(r).transpose(0, 1),
        "stack_then_permute": lambda r: torch.stack(r).permute(1, 0, 2),
        "stack_then_torch_transpose": lambda r: torch.transpose(torch.stack(r), 0, 1),
        "stack_then_swapaxes": lambda r: torch.stack(r, dim=0).swapaxes(1, 0),
        "stack_batch_first_then_back": lambda r: torch.stack(r, dim=1).transpose(1, 0),
        "stack_then_negative_permute": lambda r: torch.stack(r).permute(-2, -3, -1),
        "stack_detach_cpu": lambda r: torch.stack(r).detach().cpu(),
        "transpose_contiguous_clone": lambda r: torch.stack(r).transpose(0, 1).contiguous().clone(),
    }[form](rec), torch.stack(mrec)


class RecordForms(nn.Module):
    """Tutorial 5's two-layer net, with the record built in `form`; the membrane record is time-major."""

    def __init__(self, form: str, appended: str = ""):
        super().__init__()
        self.form, self.appended = form, appended
        self.fc1 = nn.Linear(12, 10)
        self.lif1 = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(10, 4)
        self.lif2 = snn.Leaky(beta=0.8, reset_mechanism="zero")

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        mem2 = self.lif2.init_leaky()
        spk_rec, mem_rec = [], []
        for step in range(x.size(0)):
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            # the unsqueeze written in the loop, as some scripts do
            if self.appended == "unsqueeze":
                spk_rec.append(spk2.unsqueeze(0))
            elif self.appended == "none":
                spk_rec.append(spk2[None])
            else:
                spk_rec.append(spk2)
            mem_rec.append(mem2)
        if self.appended:
            return torch.cat(spk_rec, dim=0), torch.stack(mem_rec)
        return _record(self.form, spk_rec, mem_rec)


RECORDS: dict[str, tuple[Callable[[], nn.Module], int]] = {
    form: (lambda form=form: RecordForms(form), dim) for form, dim in [
        ("stack_tensors_keyword", 0), ("stack_axis_0", 0), ("stack_axis_1", 1), ("cat_of_unsqueezed", 0),
        ("concat_of_none_index", 0), ("vstack_of_unsqueezed", 0), ("cat_batch_first", 1),
        ("hstack_batch_first", 1), ("stack_then_transpose", 1), ("stack_then_permute", 1),
        ("stack_then_torch_transpose", 1), ("stack_then_swapaxes", 1), ("stack_batch_first_then_back", 0),
        ("stack_then_negative_permute", 1), ("stack_detach_cpu", 0), ("transpose_contiguous_clone", 1)]
}
RECORDS["append_unsqueeze_then_cat"] = (lambda: RecordForms("", appended="unsqueeze"), 0)
RECORDS["append_none_index_then_cat"] = (lambda: RecordForms("", appended="none"), 0)


def _run_loop(graph: ir.Graph, steps: list[torch.Tensor], neuron: str) -> tuple[list, list]:
    ex = import_from_ir(graph, return_state=True)
    outs, mems, state = [], [], None
    with torch.no_grad():
        for x in steps:
            out, state = ex(x, state)
            outs.append(out)
            value = state[neuron]
            mems.append(value[-1] if isinstance(value, tuple) else value)  # (..., mem): the membrane is last
    return outs, mems


def _loop_matches_snntorch(model: nn.Module, graph: ir.Graph) -> torch.Tensor:
    """The exported graph, stepped over SEQ, gives the model's own spike and membrane records bit for bit;
    returns the spikes (for the activity check)."""
    with torch.no_grad():
        spk_rec, mem_rec = model(SEQ)
    outs, mems = _run_loop(graph, list(SEQ), "lif1")
    assert torch.equal(torch.stack(outs), spk_rec)
    assert torch.equal(torch.stack(mems), mem_rec)
    return spk_rec


@pytest.mark.parametrize("name", list(RECORDS))
def test_record_forms_match_snntorch(name, tmp_path):
    build, dim = RECORDS[name]
    model = boost(build(), 8.0, layers=LAYERS).eval()
    graph = roundtrip(model, SEQ, tmp_path)
    assert graph.metadata["time_loop"].get("stack_dim", 0) == dim
    with torch.no_grad():
        spk_rec, mem_rec = model(SEQ)
    outs, mems = _run_loop(graph, list(SEQ), "lif2")
    got = torch.stack(outs, dim=dim)  # the layout the metadata gives
    assert got.shape == spk_rec.shape
    assert torch.equal(got, spk_rec), f"{int((got != spk_rec).sum())} of {spk_rec.numel()} spikes differ"
    assert torch.equal(torch.stack(mems), mem_rec)
    assert 0.05 <= float(spk_rec.mean()) <= 0.95, "the comparison needs spikes"


class LIReadout(nn.Module):
    """The regression tutorial's reset-free readout, its membrane record returned batch-first by a permute."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 10)
        self.lif1 = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(10, 2)
        self.li = snn.Leaky(beta=0.7, reset_mechanism="none")

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.li.init_leaky()
        mem_rec = []
        for step in range(x.size(0)):
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            _, mem2 = self.li(self.fc2(spk1), mem2)
            mem_rec.append(mem2)
        return torch.stack(mem_rec).permute(1, 0, 2)


def test_membrane_readout_permuted_batch_first_is_exact(tmp_path):
    model = boost(LIReadout(), 4.0, layers=LAYERS).eval()
    graph = roundtrip(model, SEQ, tmp_path)
    assert type(graph.nodes["li"]).__name__ == "LI"
    assert graph.metadata["time_loop"]["stack_dim"] == 1
    with torch.no_grad():
        want = model(SEQ)
    outs, _ = _run_loop(graph, list(SEQ), "lif1")
    assert torch.equal(torch.stack(outs, dim=1), want)


class RefusedRecord(nn.Module):
    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc = nn.Linear(12, 4)
        self.lif = snn.Leaky(beta=0.9)

    def forward(self, x):
        mem = self.lif.init_leaky()
        rec = []
        for step in range(x.size(0)):
            spk, mem = self.lif(self.fc(x[step]), mem)
            rec.append(spk)
        if self.form == "time_last":
            return torch.cat([s.unsqueeze(-1) for s in rec], dim=-1)
        if self.form == "unsqueeze_0_cat_1":
            return torch.cat([s.unsqueeze(0) for s in rec], dim=1)
        return torch.stack(rec, axis=2)


@pytest.mark.parametrize("form, fragments", [
    ("time_last", ("'lif'", "torch.cat([s.unsqueeze(-1) for s in rec], dim=-1)", "dim 0 (time-major) or dim 1")),
    ("unsqueeze_0_cat_1", ("'lif'", "torch.cat([s.unsqueeze(0) for s in rec], dim=1)", "reduce it")),
    ("stack_axis_2", ("'lif'", "torch.stack(rec, axis=2)", "dim 0 (time-major) or dim 1")),
])
def test_records_no_stepping_returns_are_refused_by_line(form, fragments):
    """A record with the steps along a feature dim (or joined into the batch) is what no stepping returns."""
    with pytest.raises(UnsupportedModuleError) as info:
        export_to_ir(RefusedRecord(form), SEQ)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


# ------------------------------------------------------------------------------------------------
# time loops: the input read one step at a time through a view or unbind
# ------------------------------------------------------------------------------------------------

class InputForms(nn.Module):
    """A (B, T, F) input (or (T, B, F) for the `_time_major` forms) read step by step as `form` writes it."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Synaptic(alpha=0.8, beta=0.9)

    def steps(self, x):
        f = self.form
        if f == "unbind_1":
            return x.unbind(1)
        if f == "unbind_dim_keyword":
            return x.unbind(dim=1)
        if f == "torch_unbind_1":
            return torch.unbind(x, dim=1)
        if f == "unbind_0_time_major":
            return x.unbind(0)
        if f == "permute_then_iterate":
            return x.permute(1, 0, 2)
        if f == "torch_transpose_then_iterate":
            return torch.transpose(x, 0, 1)
        if f == "permute_dims_keyword":
            return x.permute(dims=(1, 0, 2))
        if f == "transpose_negative_dims":
            return x.transpose(-3, -2)
        if f == "swapaxes_then_index":
            x = x.swapaxes(0, 1)
            return [x[step] for step in range(len(x))]
        if f == "float_then_size_time_major":
            x = x.float()
            return [x[step] for step in range(x.size(0))]
        raise AssertionError(f)

    def forward(self, x):
        syn, mem = self.lif1.init_synaptic()
        spk_rec, mem_rec = [], []
        for x_t in self.steps(x):
            spk, syn, mem = self.lif1(self.fc1(x_t), syn, mem)
            spk_rec.append(spk)
            mem_rec.append(mem)
        return torch.stack(spk_rec), torch.stack(mem_rec)


INPUTS = ["unbind_1", "unbind_dim_keyword", "torch_unbind_1", "unbind_0_time_major", "permute_then_iterate",
          "torch_transpose_then_iterate", "permute_dims_keyword", "transpose_negative_dims", "swapaxes_then_index",
          "float_then_size_time_major"]


@pytest.mark.parametrize("form", INPUTS)
def test_input_read_through_a_view_or_unbind_matches_snntorch(form, tmp_path):
    data = SEQ if form.endswith("time_major") else BATCH_FIRST
    model = boost(InputForms(form), 4.0, layers=LAYERS).eval()
    graph = roundtrip(model, data, tmp_path)
    time_dim = 0 if form.endswith("time_major") else 1
    assert graph.metadata["time_loop"]["time_dim"] == time_dim
    with torch.no_grad():
        spk_rec, mem_rec = model(data)
    outs, states = _run_loop(graph, list(data.unbind(time_dim)), "lif1")
    assert torch.equal(torch.stack(outs), spk_rec)
    assert torch.equal(torch.stack(states), mem_rec)
    assert 0.05 <= float(spk_rec.mean()) <= 0.95


def test_unbind_along_a_feature_dim_is_refused_by_line():
    class FeatureSteps(InputForms):
        def steps(self, x):
            return x.unbind(2)

    with pytest.raises(UnsupportedModuleError) as info:
        export_to_ir(FeatureSteps("unbind_2"), torch.rand(B, 12, 12))
    msg = str(info.value)
    assert "x.unbind(2)" in msg and "x[step]" in msg, msg
    assert "getitem" not in msg, msg


# ------------------------------------------------------------------------------------------------
# one-step models stepped by the caller (utils.reset between sequences), every state compared
# ------------------------------------------------------------------------------------------------

class CatAxis(nn.Module):
    """Two branches joined by torch.cat(..., axis=1): numpy's spelling, which torch accepts."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(12, 4), nn.Linear(12, 4)
        self.lif = snn.Leaky(beta=0.9, init_hidden=True)

    def forward(self, x):
        return self.lif(torch.cat([self.a(x), self.b(x)], axis=1))


def _lif(**kw) -> nn.Module:
    return snn.Leaky(beta=kw.pop("beta", 0.9), init_hidden=True, **kw)


STEPPED: dict[str, tuple[Callable[[], nn.Module], torch.Tensor]] = {
    "cat_axis_keyword": (CatAxis, SEQ),
    "beta_and_threshold_shaped_1_by_n": (lambda: nn.Sequential(nn.Linear(12, 8), _lif(
        beta=torch.linspace(0.5, 0.95, 8).reshape(1, 8), threshold=torch.linspace(0.6, 1.2, 8).reshape(1, 8))), SEQ),
    "learn_graded_spikes_factor": (lambda: nn.Sequential(nn.Linear(12, 8), _lif(
        graded_spikes_factor=2.5, learn_graded_spikes_factor=True)), SEQ),
    "beta_passed_as_parameter": (lambda: nn.Sequential(nn.Linear(12, 8), _lif(
        beta=nn.Parameter(torch.tensor(0.8)))), SEQ),
    "linear_on_a_sequence_of_tokens": (lambda: nn.Sequential(nn.Linear(12, 8), _lif()), torch.rand(T, B, 5, 12)),
    "alpha_after_a_conv_per_channel_threshold": (lambda: nn.Sequential(
        nn.Conv2d(2, 4, 3), snn.Alpha(alpha=0.9, beta=0.8, threshold=torch.linspace(0.1, 0.3, 4).reshape(4, 1, 1),
                                      init_hidden=True), nn.Flatten(), nn.Linear(144, 4), _lif()), IMG),
    "lapicque_zero_learn_beta": (lambda: nn.Sequential(nn.Linear(12, 8), snn.Lapicque(
        beta=0.7, threshold=0.5, reset_mechanism="zero", learn_beta=True, init_hidden=True)), SEQ),
    "rsynaptic_per_neuron_alpha_none": (lambda: nn.Sequential(nn.Linear(12, 8), snn.RSynaptic(
        alpha=torch.linspace(0.3, 0.9, 8), beta=0.9, linear_features=8, reset_mechanism="none", init_hidden=True)), SEQ),
    "channels_last_conv_net": (lambda: nn.Sequential(nn.Conv2d(2, 4, 3), _lif(), nn.Flatten(), nn.Linear(144, 4),
                                                     _lif()).to(memory_format=torch.channels_last), IMG),
}
GAIN = {"alpha_after_a_conv_per_channel_threshold": 12.0, "lapicque_zero_learn_beta": 6.0, "channels_last_conv_net": 6.0}


def _states(neuron: nn.Module) -> list[torch.Tensor]:
    names = [a for a in ("syn_exc", "syn_inh", "syn", "mem") if isinstance(getattr(neuron, a, None), torch.Tensor)]
    return [getattr(neuron, a) for a in names]


def _compare_stepped(model: nn.Module, graph: ir.Graph, data: torch.Tensor) -> None:
    neurons = {n: m for n, m in model.named_modules() if isinstance(m, snn.SpikingNeuron)}
    ex = import_from_ir(graph, return_state=True)
    utils.reset(model)
    state, active = None, 0.0
    with torch.no_grad():
        for t, x in enumerate(data):
            want = model(x)
            want = want[0] if isinstance(want, tuple) else want
            got, state = ex(x, state)
            assert torch.equal(got, want), f"step {t}: {int((got != want).sum())} outputs differ"
            active += float((want != 0).float().mean())
            for path, neuron in neurons.items():
                ours = state[path] if isinstance(state[path], tuple) else (state[path],)
                for a, b in zip(ours, _states(neuron), strict=True):
                    assert torch.equal(a, b), f"step {t}: a state of {path!r} differs"
    assert 0.02 <= active / len(data) <= 0.98, f"activity {active / len(data):.3f} proves little"


@pytest.mark.parametrize("name", list(STEPPED))
def test_stepped_forms_match_snntorch_in_every_state(name, tmp_path):
    build, data = STEPPED[name]
    model = boost(build(), GAIN.get(name, 3.0), layers=LAYERS).eval()
    _compare_stepped(model, roundtrip(model, data[0], tmp_path), data)


def test_a_model_loaded_from_a_state_dict_exports_its_trained_constants(tmp_path):
    """Train-then-save-then-load: the learnt β and θ come back through load_state_dict, and the export reads them."""
    def make() -> nn.Module:
        return nn.Sequential(nn.Linear(12, 8), _lif(beta=torch.full((8,), 0.5), learn_beta=True, learn_threshold=True),
                             nn.Linear(8, 4), _lif(output=True))

    trained = boost(make(), 6.0)
    with torch.no_grad():
        trained[1].beta.copy_(torch.linspace(0.6, 0.95, 8))
        trained[1].threshold.add_(0.25)
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    model = make()
    model.load_state_dict(torch.load(buffer))
    model.eval()
    graph = roundtrip(model, SEQ[0], tmp_path)
    assert float(graph.nodes["1"].v_threshold.max()) == pytest.approx(1.25)
    _compare_stepped(model, graph, SEQ)


def test_export_inside_inference_mode_and_with_a_grad_sample(tmp_path):
    """Users export inside `torch.inference_mode()` or with a sample that requires grad: same graph, model intact."""
    model = boost(nn.Sequential(nn.Linear(12, 8), _lif(), nn.Linear(8, 4), _lif(output=True)), 3.0).eval()
    with torch.inference_mode():
        graph = roundtrip(model, SEQ[0], tmp_path)
    assert roundtrip(model, SEQ[0].clone().requires_grad_(), tmp_path) == graph
    _compare_stepped(model, graph, SEQ)


# ------------------------------------------------------------------------------------------------
# a layer's forward called directly: `self.fc.forward(x)`, `self.lif.forward(cur, mem)`
# ------------------------------------------------------------------------------------------------

class DirectForward(nn.Module):
    """Every layer called through `.forward(...)`; before session 8 the neuron's failed in torch.fx ("symbolically
    traced variables cannot be used as inputs to control flow") and nn.Linear's was refused as `F.linear`."""

    def __init__(self, neuron: str):
        super().__init__()
        self.neuron = neuron
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = {"leaky": lambda: snn.Leaky(beta=0.9), "synaptic": lambda: snn.Synaptic(alpha=0.8, beta=0.9),
                     "rleaky": lambda: snn.RLeaky(beta=0.9, linear_features=8)}[neuron]()

    def forward(self, x):
        if self.neuron == "leaky":
            mem = self.lif1.init_leaky()
        elif self.neuron == "synaptic":
            syn, mem = self.lif1.init_synaptic()
        else:
            spk, mem = self.lif1.init_rleaky()
        spk_rec, mem_rec = [], []
        for step in range(x.size(0)):
            cur = self.fc1.forward(x[step])
            if self.neuron == "leaky":
                spk, mem = self.lif1.forward(cur, mem)
            elif self.neuron == "synaptic":
                spk, syn, mem = self.lif1.forward(cur, syn, mem)
            else:
                spk, mem = self.lif1.forward(cur, spk, mem)
            spk_rec.append(spk)
            mem_rec.append(mem)
        return torch.stack(spk_rec), torch.stack(mem_rec)


@pytest.mark.parametrize("neuron", ["leaky", "synaptic", "rleaky"])
def test_layers_called_through_forward_export_as_the_calls(neuron, tmp_path):
    model = boost(DirectForward(neuron), 4.0, layers=LAYERS).eval()
    graph = roundtrip(model, SEQ, tmp_path)
    assert "fc1" in graph.nodes and "lif1" in graph.nodes
    assert not any("forward" in vars(m) for m in model.modules())  # the export leaves the instances as they were
    spk_rec = _loop_matches_snntorch(model, graph)
    assert 0.05 <= float(spk_rec.mean()) <= 0.95


def test_an_init_hidden_neuron_called_through_forward_in_a_sequence_of_layers(tmp_path):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fcs = nn.ModuleList([nn.Linear(12, 10), nn.Linear(10, 4)])
            self.lifs = nn.ModuleList([_lif(), _lif()])

        def forward(self, x):
            for fc, lif in zip(self.fcs, self.lifs):
                x = lif.forward(fc(x))
            return x

    model = boost(Net(), 6.0).eval()
    _compare_stepped(model, roundtrip(model, SEQ[0], tmp_path), SEQ)


# ------------------------------------------------------------------------------------------------
# the last step picked out of the record
# ------------------------------------------------------------------------------------------------

class LastOfRecord(nn.Module):
    """A classifier that reads the last step of its record (refused before session 8 as "neither the record nor
    the last step's value")."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=0.9)
        self.fc_out = nn.Linear(8, 3)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        spk_rec = []
        for step in range(x.size(0)):
            spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
            spk_rec.append(spk1)
        return {"stack_minus_1": lambda: torch.stack(spk_rec)[-1],
                "stack_T_minus_1_ellipsis": lambda: torch.stack(spk_rec)[x.size(0) - 1, ...],
                "batch_first_minus_1": lambda: torch.stack(spk_rec, dim=1)[:, -1],
                "readout_of_stack_minus_1": lambda: self.fc_out(torch.stack(spk_rec)[-1])}[self.form]()


@pytest.mark.parametrize("form", ["stack_minus_1", "stack_T_minus_1_ellipsis", "batch_first_minus_1",
                                  "readout_of_stack_minus_1"])
def test_the_last_step_of_the_record_is_the_last_output(form, tmp_path):
    model = boost(LastOfRecord(form), 4.0, layers=LAYERS).eval()
    graph = roundtrip(model, SEQ, tmp_path)
    assert graph.metadata["time_loop"]["output"] == "last"
    with torch.no_grad():
        want = model(SEQ)
    outs, _ = _run_loop(graph, list(SEQ), "lif1")
    assert torch.equal(outs[-1], want)
    if form != "readout_of_stack_minus_1":
        assert 0.05 <= float(want.mean()) <= 0.95


def test_another_step_of_the_record_is_refused():
    class FirstStep(LastOfRecord):
        def forward(self, x):
            mem1 = self.lif1.init_leaky()
            spk_rec = []
            for step in range(x.size(0)):
                spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
                spk_rec.append(spk1)
            return torch.stack(spk_rec)[0]

    with pytest.raises(UnsupportedModuleError) as info:
        export_to_ir(FirstStep("first"), SEQ)
    assert "torch.stack(spk_rec)[0]" in str(info.value) and "'lif1'" in str(info.value)


# ------------------------------------------------------------------------------------------------
# truncated BPTT: the state handed on detached (or cloned), which changes no value
# ------------------------------------------------------------------------------------------------

class Detached(nn.Module):
    """States detached between steps, as truncated-BPTT training scripts write it (refused before session 8:
    "its state argument 'mem' is not its own mem from the previous step")."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = {"synaptic": lambda: snn.Synaptic(alpha=0.8, beta=0.9),
                     "rleaky": lambda: snn.RLeaky(beta=0.9, linear_features=8)}.get(form, lambda: snn.Leaky(beta=0.9))()

    def forward(self, x):
        if self.form == "synaptic":
            syn, mem = self.lif1.init_synaptic()
        elif self.form == "rleaky":
            spk, mem = self.lif1.init_rleaky()
        else:
            mem = self.lif1.init_leaky()
        spk_rec, mem_rec = [], []
        for step in range(x.size(0)):
            cur = self.fc1(x[step])
            if self.form == "argument":
                spk, mem = self.lif1(cur, mem.detach())
            elif self.form == "after_the_call":
                spk, mem = self.lif1(cur, mem)
                mem = mem.detach()
            elif self.form == "torch_detach_clone":
                spk, mem = self.lif1(cur, torch.clone(torch.detach(mem)))
            elif self.form == "synaptic":
                spk, syn, mem = self.lif1(cur, syn.detach(), mem.detach())
            else:
                spk, mem = self.lif1(cur, spk.detach(), mem.detach().clone())
            spk_rec.append(spk)
            mem_rec.append(mem)
        return torch.stack(spk_rec), torch.stack(mem_rec)


@pytest.mark.parametrize("form", ["argument", "after_the_call", "torch_detach_clone", "synaptic", "rleaky"])
def test_detached_states_are_the_neurons_own(form, tmp_path):
    model = boost(Detached(form), 4.0, layers=LAYERS).eval()
    graph = roundtrip(model, SEQ, tmp_path)
    spk_rec = _loop_matches_snntorch(model, graph)
    assert 0.05 <= float(spk_rec.mean()) <= 0.95


class HiddenDetached(nn.Module):
    """init_hidden neurons detached in the loop: `self.lif1.mem = self.lif1.mem.detach()` or `detach_hidden()`."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = _lif()

    def forward(self, x):
        utils.reset(self)
        spk_rec = []
        for step in range(x.size(0)):
            spk_rec.append(self.lif1(self.fc1(x[step])))
            if self.form == "attribute":
                self.lif1.mem = self.lif1.mem.detach()
            elif self.form == "detach_hidden":
                self.lif1.detach_hidden()
            else:  # a reset inside the loop: still refused
                self.lif1.mem = torch.zeros_like(self.lif1.mem)
        return torch.stack(spk_rec)


@pytest.mark.parametrize("form", ["attribute", "detach_hidden"])
def test_an_init_hidden_state_detached_in_the_loop_is_exact(form, forget_neurons, tmp_path):
    model = boost(HiddenDetached(form), 4.0, layers=LAYERS).eval()
    graph = roundtrip(model, SEQ, tmp_path)
    with torch.no_grad():
        want = model(SEQ)
    outs, _ = _run_loop(graph, list(SEQ), "lif1")
    assert torch.equal(torch.stack(outs), want)
    assert 0.05 <= float(want.mean()) <= 0.95


def test_a_reset_written_into_the_state_inside_the_loop_is_still_refused(forget_neurons):
    with pytest.raises(UnsupportedModuleError) as info:
        export_to_ir(HiddenDetached("zeros"), SEQ)
    assert "'lif1'" in str(info.value) and "inside the time loop" in str(info.value)


def test_a_returned_state_copy_is_dropped_like_the_state(tmp_path):
    """`return spk, mem.clone()` was refused as "uses state output 1 as a value" while `return spk, mem` exports."""
    class OneStep(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(12, 8)
            self.lif1 = snn.Leaky(beta=0.9)

        def forward(self, x, mem=None):
            if mem is None:
                mem = self.lif1.init_leaky()
            spk, mem = self.lif1(self.fc1(x), mem.detach())
            return spk.detach(), mem.clone()

    model = boost(OneStep(), 4.0).eval()
    ex = import_from_ir(roundtrip(model, SEQ[0], tmp_path), return_state=True)
    mem, state, active = None, None, 0.0
    with torch.no_grad():
        for x in SEQ:
            spk, mem = model(x, mem)
            got, state = ex(x, state)
            assert torch.equal(got, spk)
            assert torch.equal(state["lif1"][-1], mem)
            active += float(spk.mean())
    assert active > 0


# ------------------------------------------------------------------------------------------------
# zero states made before the loop from the input's sizes, device and dtype
# ------------------------------------------------------------------------------------------------

class ZerosFromInput(nn.Module):
    """A model found in the wild: a (B, T, F) input, `B, T, _ = x.shape`, an assert on T, zero states made with
    `torch.zeros(B, n, device=x.device)` before the loop, records returned batch-first through `.permute(1, 0, 2)`.
    Before session 8 the zeros were refused as "computes on the whole (T, B, ...) input before the loop"."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc0, self.lif0 = nn.Linear(12, 12), snn.Leaky(beta=0.9)
        self.fc1, self.lif1 = nn.Linear(12, 4), snn.Leaky(beta=0.8)
        self.num_steps = T

    def forward(self, x):
        if self.form == "to_device":
            x = x.to("cpu")
        elif self.form == "float":
            x = x.float()
        B, steps, _ = x.shape
        assert steps == self.num_steps, f"time dim {steps} != num_steps {self.num_steps}"
        mem0 = torch.zeros(B, self.fc0.out_features, device=x.device)
        mem1 = torch.zeros(B, self.fc1.out_features, device=x.device, dtype=x.dtype)
        spk_rec, mem_rec = [], []
        for step in range(steps):
            spk0, mem0 = self.lif0(self.fc0(x[:, step, :]), mem0)
            spk1, mem1 = self.lif1(self.fc1(spk0), mem1)
            spk_rec.append(spk1)
            mem_rec.append(mem1)
        return torch.stack(spk_rec, dim=0).permute(1, 0, 2), torch.stack(mem_rec, dim=0).permute(1, 0, 2)


@pytest.mark.parametrize("form", ["as_given", "to_device", "float"])
def test_zero_states_from_the_inputs_device_and_dtype(form, tmp_path):
    model = boost(ZerosFromInput(form), 4.0, layers=LAYERS).eval()
    graph = roundtrip(model, BATCH_FIRST, tmp_path)
    assert graph.metadata["time_loop"] == {"input": "indexed", "output": "stacked", "time_dim": 1, "stack_dim": 1}
    with torch.no_grad():
        spk_rec, mem_rec = model(BATCH_FIRST)
    outs, mems = _run_loop(graph, list(BATCH_FIRST.unbind(1)), "lif1")
    assert torch.equal(torch.stack(outs, dim=1), spk_rec)
    assert torch.equal(torch.stack(mems, dim=1), mem_rec)
    assert 0.05 <= float(spk_rec.mean()) <= 0.95


# ------------------------------------------------------------------------------------------------
# state kept between calls inside a container attribute: refused, and the model left as it was
# ------------------------------------------------------------------------------------------------

class ContainerState(nn.Module):
    """The membrane carried between calls in a list or dict attribute. Before session 8 this exported (as a
    memoryless Threshold, with a warning that snnTorch restarts the neuron, which it does not) and left fx proxies
    in `self.states`, so the next snnTorch call of the model failed inside torch.fx."""

    def __init__(self, form: str):
        super().__init__()
        self.form = form
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = snn.Leaky(beta=0.9)
        self.states = {"list_item": [None], "dict_item": {"mem": None}}.get(form)
        self.key = {"list_item": 0, "dict_item": "mem"}.get(form)
        self.mems = None
        self.recordings = {}

    def forward(self, x):
        if self.form == "new_list":
            mem = self.lif1.init_leaky() if self.mems is None else self.mems[0]
        elif self.form == "recordings":
            mem = self.lif1.init_leaky()
        else:
            mem = self.states[self.key]
            if mem is None:
                mem = self.lif1.init_leaky()
        spk, mem = self.lif1(self.fc1(x), mem)
        if self.form == "new_list":
            self.mems = [mem]
        elif self.form == "recordings":
            self.recordings = {"mem1": mem.detach().cpu()}
        else:
            self.states[self.key] = mem
        return spk


@pytest.mark.parametrize("form, where", [("list_item", "self.states[0]"), ("dict_item", "self.states['mem']"),
                                         ("new_list", "self.mems[0]"), ("recordings", "self.recordings['mem1']")])
def test_a_state_kept_in_a_container_attribute_is_refused_and_the_model_left_intact(form, where):
    model = ContainerState(form).eval()
    states = model.states
    with pytest.raises(UnsupportedModuleError) as info:
        export_to_ir(model, SEQ[0])
    msg = str(info.value)
    assert where in msg and "reads back" in msg and "remove the assignment" in msg, msg
    assert model.states is states and model.states == {"list_item": [None], "dict_item": {"mem": None}}.get(form)
    assert model.mems is None and model.recordings == {}
    with torch.no_grad():  # snnTorch still runs the model: no fx proxy was left in it
        first = model(SEQ[0])
        second = model(SEQ[1])
    assert first.shape == second.shape == (B, 8)


# ------------------------------------------------------------------------------------------------
# neuron states passed by keyword, as snnTorch's signatures name them
# ------------------------------------------------------------------------------------------------

class KeywordStates(nn.Module):
    """`self.lif1(cur, mem=mem)`, `self.lif1(input_=cur, mem=mem)`, `syn=`, `spk=`, `syn_exc=`/`syn_inh=`."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.fc1 = nn.Linear(12, 8)
        self.lif1 = {"leaky": lambda: snn.Leaky(beta=0.9), "leaky_input": lambda: snn.Leaky(beta=0.9),
                     "synaptic": lambda: snn.Synaptic(alpha=0.8, beta=0.9),
                     "rleaky": lambda: snn.RLeaky(beta=0.9, linear_features=8),
                     "rsynaptic": lambda: snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=8),
                     "alpha": lambda: snn.Alpha(alpha=0.9, beta=0.8, threshold=0.5)}[kind]()

    def forward(self, x):
        k, lif = self.kind, self.lif1
        if k in ("leaky", "leaky_input"):
            mem = lif.init_leaky()
        elif k == "synaptic":
            syn, mem = lif.init_synaptic()
        elif k == "rleaky":
            spk, mem = lif.init_rleaky()
        elif k == "rsynaptic":
            spk, syn, mem = lif.init_rsynaptic()
        else:
            syn_exc, syn_inh, mem = lif.init_alpha()
        spk_rec, mem_rec = [], []
        for step in range(x.size(0)):
            cur = self.fc1(x[step])
            if k == "leaky":
                spk, mem = lif(cur, mem=mem)
            elif k == "leaky_input":
                spk, mem = lif(input_=cur, mem=mem)
            elif k == "synaptic":
                spk, syn, mem = lif(cur, syn=syn, mem=mem)
            elif k == "rleaky":
                spk, mem = lif(cur, spk=spk, mem=mem)
            elif k == "rsynaptic":
                spk, syn, mem = lif(cur, spk=spk, syn=syn, mem=mem)
            else:
                spk, syn_exc, syn_inh, mem = lif(cur, syn_exc=syn_exc, syn_inh=syn_inh, mem=mem)
            spk_rec.append(spk)
            mem_rec.append(mem)
        return torch.stack(spk_rec), torch.stack(mem_rec)


@pytest.mark.parametrize("kind", ["leaky", "leaky_input", "synaptic", "rleaky", "rsynaptic", "alpha"])
def test_states_passed_by_keyword_match_snntorch(kind, tmp_path):
    model = boost(KeywordStates(kind), 4.0, layers=LAYERS).eval()
    graph = roundtrip(model, SEQ, tmp_path)
    spk_rec = _loop_matches_snntorch(model, graph)
    assert 0.02 <= float(spk_rec.mean()) <= 0.95


def test_a_reset_inside_the_loop_is_placed_among_the_calls_with_detached_states_removed(forget_neurons):
    """The detached copies are removed from the traced graph before the state writes are placed among the neuron's
    calls: the write is still found inside the loop (after call 6 of 8), not after it."""
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.lif1 = nn.Linear(12, 8), snn.Leaky(beta=0.9)
            self.fc2, self.lif2 = nn.Linear(8, 4), _lif()

        def forward(self, x):
            mem1 = self.lif1.init_leaky()
            utils.reset(self.lif2)
            spk_rec = []
            for step in range(x.size(0)):
                spk1, mem1 = self.lif1(self.fc1(x[step]), mem1)
                spk1, mem1 = spk1.detach(), mem1.detach()
                spk_rec.append(self.lif2(self.fc2(spk1)))
                if step == 5:
                    self.lif2.mem = torch.zeros_like(self.lif2.mem)
            return torch.stack(spk_rec)

    with pytest.raises(UnsupportedModuleError) as info:
        export_to_ir(Net(), torch.rand(8, B, 12))
    assert "'lif2'" in str(info.value) and "inside the time loop (after call 6 of 8)" in str(info.value)


class NeuroBenchStyle(nn.Module):
    """NeuroBench's snnTorch wrapper loop, as a module: a (B, T, ...) input read as `data[:, step, ...]`, an
    init_hidden `nn.Sequential` whose last neuron has `output=True`, `utils.reset` before the loop, and the record
    made batch-first by `torch.stack(spikes).transpose(0, 1)` (refused before session 8)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, 4, 3), nn.MaxPool2d(2), _lif(), nn.Flatten(), nn.Linear(36, 4),
                                 _lif(output=True))

    def forward(self, data):
        utils.reset(self.net)
        spikes = []
        for step in range(data.shape[1]):
            spk_out, _ = self.net(data[:, step, ...])
            spikes.append(spk_out)
        return torch.stack(spikes).transpose(0, 1)


def test_the_neurobench_wrapper_loop_exports_batch_first(forget_neurons, tmp_path):
    model = boost(NeuroBenchStyle(), 6.0, layers=LAYERS).eval()
    data = IMG.transpose(0, 1).contiguous()  # (B, T, C, H, W)
    graph = roundtrip(model, data, tmp_path)
    assert graph.metadata["time_loop"] == {"input": "indexed", "output": "stacked", "time_dim": 1, "stack_dim": 1}
    with torch.no_grad():
        want = model(data)
    outs, _ = _run_loop(graph, list(data.unbind(1)), "net.5")
    assert torch.equal(torch.stack(outs, dim=1), want)
    assert 0.02 <= float(want.mean()) <= 0.95


# ------------------------------------------------------------------------------------------------
# `a /= c`: in place in PyTorch, like `a += b` and `a *= c`
# ------------------------------------------------------------------------------------------------

class InPlaceDivide(nn.Module):
    def __init__(self, aliased: bool):
        super().__init__()
        self.aliased = aliased
        self.fa, self.fb = nn.Linear(12, 8), nn.Linear(12, 8)
        self.lif1 = _lif()

    def forward(self, x):
        a = self.fa(x)
        kept = a
        a /= 4.0
        return self.lif1((kept if self.aliased else a) + self.fb(x))


def test_an_aliased_in_place_division_is_refused():
    """`kept = a; a /= 4.0; use(kept)`: PyTorch divides `kept` too (one tensor). Before session 8 torch.fx recorded
    `a / 4.0` as a new value, so the graph read the undivided `kept`: a silent divergence."""
    with pytest.raises(UnsupportedModuleError) as info:
        export_to_ir(InPlaceDivide(aliased=True), SEQ[0])
    msg = str(info.value)
    assert "a /= b" in msg and "a /= 4.0" in msg and "a = a / b" in msg, msg


def test_an_in_place_division_of_a_fresh_tensor_is_exact(tmp_path):
    model = boost(InPlaceDivide(aliased=False), 6.0).eval()
    _compare_stepped(model, roundtrip(model, SEQ[0], tmp_path), SEQ)
