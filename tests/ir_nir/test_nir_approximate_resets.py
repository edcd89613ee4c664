"""snnTorch's default (subtract-reset) neurons to NIR with the explicit opt-in approximate_resets=True.

The user's path: an snnTorch model with default Leaky/Synaptic neurons -> talon.bridge.to_ir -> write_nir
(approximate_resets=True) or `talon convert --approximate-resets`. TALON reads its own file back exactly (same
Graph, same spikes as snnTorch); a reader that ignores TALON's metadata gets NIR's reset to v_reset, which is
snnTorch's reset_mechanism="zero"; the warning reports the measured spike agreement of the two."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")

import talon.ir as ir  # noqa: E402
from talon.bridge import measure_reset_effect, to_ir  # noqa: E402
from talon.ir.nir import NIRConversionError, NIRConversionWarning, from_nir, read_nir, to_nir, write_nir  # noqa: E402
from talon.ir.nir_resets import reset_approximation, reset_measure  # noqa: E402

from .test_nir_numerics import run_talon  # noqa: E402

T, B = 60, 3


def _model(reset: str | None = None):
    """Tutorial style: Linear -> Leaky -> Linear -> Synaptic, snnTorch defaults (subtract) unless `reset`."""
    kw = {} if reset is None else {"reset_mechanism": reset}
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 12), snn.Leaky(beta=0.9, init_hidden=True, **kw),
        torch.nn.Linear(12, 4), snn.Synaptic(alpha=0.7, beta=0.85, init_hidden=True, **kw),
    )


def _snntorch_spikes(net, xs):
    from snntorch import utils as snn_utils

    with torch.no_grad():
        snn_utils.reset(net)
        return np.stack([net(xs[t]).numpy() for t in range(xs.shape[0])]).astype(np.float64)


def _leaky_net(reset: str | None = None):
    kw = {} if reset is None else {"reset_mechanism": reset}
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 10), snn.Leaky(beta=0.9, init_hidden=True, **kw),
                               torch.nn.Linear(10, 4), snn.Leaky(beta=0.8, init_hidden=True, **kw))


def _without_talon_metadata(path):
    """The file as a tool that ignores TALON's metadata sees it (dt passed explicitly, as such a user must)."""
    plain = nir.read(str(path))
    plain.metadata = {}
    for node in plain.nodes.values():
        node.metadata = {}
    return plain


@pytest.fixture
def stimulus():
    torch.manual_seed(1)
    return torch.rand(T, B, 6) * 1.5


def test_default_snntorch_model_is_still_refused_without_the_opt_in():
    graph = to_ir(_model(), torch.rand(1, 6))
    with pytest.raises(NIRConversionError, match=r"subtract.*approximate_resets=True"):
        to_nir(graph)


def test_subtract_reset_model_round_trips_exactly_and_other_readers_get_nir_reset(tmp_path, stimulus):
    net = _model()
    graph = to_ir(net, stimulus[0])
    assert [n.reset_mode for n in graph.nodes.values() if hasattr(n, "reset_mode")] == ["subtract", "subtract"]
    with pytest.warns(NIRConversionWarning, match="approximate_resets: 2 neuron layer") as rec:
        write_nir(tmp_path / "net.nir", graph, approximate_resets=True)
    message = str(rec[0].message)
    assert "'1' (subtract)" in message and "'3' (subtract)" in message and "Measured effect" in message

    # TALON reads its own file back exactly: the same Graph, and snnTorch's spikes
    back = read_nir(tmp_path / "net.nir")
    assert back == graph
    want = _snntorch_spikes(net, stimulus)
    assert want.sum() > 0
    np.testing.assert_array_equal(run_talon(back, stimulus.numpy()), want)

    # a reader ignoring TALON's metadata gets NIR's LIF/CubaLIF with the zero reset ...
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRConversionWarning)
        foreign = from_nir(_without_talon_metadata(tmp_path / "net.nir"), dt=graph.dt)
    neurons = {n: node for n, node in foreign.nodes.items() if hasattr(node, "reset_mode")}
    assert [(type(v).__name__, v.reset_mode) for v in neurons.values()] == [("LIF", "zero"), ("CubaLIF", "zero")]
    # ... which spikes exactly as the approximated graph, and as snnTorch with reset_mechanism="zero" (Leaky)
    approx, changed = reset_approximation(graph)
    assert changed == {"1": "subtract", "3": "subtract"}
    got_foreign = run_talon(foreign, stimulus.numpy())
    np.testing.assert_array_equal(got_foreign, run_talon(approx, stimulus.numpy()))
    assert not np.array_equal(got_foreign, want), "the stimulus should show the approximation"


def test_the_warning_reports_the_measured_agreement(tmp_path):
    graph = to_ir(_model(), torch.rand(1, 6))
    with pytest.warns(NIRConversionWarning) as rec:
        to_nir(graph, approximate_resets=True)
    effect = measure_reset_effect(graph)
    assert str(effect) in str(rec[0].message)
    assert [a.name for a in effect.layers] == ["1", "3"] and [a.name for a in effect.outputs] == ["output"]
    # the numbers are those of the two graphs run on the stated stimulus
    rng = np.random.default_rng(0)
    xs = rng.random((100, 4, 6), dtype=np.float32)
    true_out, approx_out = run_talon(graph, xs), run_talon(reset_approximation(graph)[0], xs)
    assert effect.outputs[0].agreement == pytest.approx(float(np.mean(true_out == approx_out)))
    assert effect.outputs[0].true_spikes == int(np.count_nonzero(true_out)) and not effect.exact
    json.dumps(effect.to_dict())


def test_without_a_registered_measure_the_warning_says_how_to_measure(monkeypatch):
    graph = to_ir(_model(), torch.rand(1, 6))
    monkeypatch.setattr("talon.ir.nir_resets._MEASURE", None)
    assert reset_measure() is None
    with pytest.warns(NIRConversionWarning, match="Effect not measured.*import talon.bridge"):
        to_nir(graph, approximate_resets=True)
    calls = []
    with pytest.warns(NIRConversionWarning, match="Measured effect: custom"):
        to_nir(graph, approximate_resets=True, measure=lambda t, a: calls.append((t, a)) or "custom")
    assert calls and calls[0][0] is graph and calls[0][1] == reset_approximation(graph)[0]


def test_exact_graphs_are_unaffected_by_the_opt_in(stimulus):
    graph = to_ir(_model("zero"), stimulus[0])  # Leaky zero is NIR's reset; Synaptic zero is zero_post
    approx, changed = reset_approximation(graph)
    assert changed == {"3": "zero_post"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing approximated, nothing to say
        to_nir(to_ir(torch.nn.Sequential(torch.nn.Linear(6, 4), snn.Leaky(beta=0.9, reset_mechanism="zero", init_hidden=True)),
                     stimulus[0]), approximate_resets=True)
    with pytest.warns(NIRConversionWarning, match=r"'3' \(zero_post\)"):
        ng = to_nir(graph, approximate_resets=True)
    assert from_nir(ng) == graph


def test_talon_convert_approximate_resets(tmp_path, stimulus):
    from click.testing import CliRunner

    from talon.cli import cli

    net = _model()
    graph = to_ir(net, stimulus[0])
    ir.write(tmp_path / "net.t1c", graph)
    run = lambda *a: CliRunner().invoke(cli, [str(x) for x in a], catch_exceptions=False)  # noqa: E731
    refused = run("convert", tmp_path / "net.t1c", "-o", tmp_path / "net.nir")
    assert refused.exit_code != 0 and "--approximate-resets" in refused.stderr and "approximate_resets=True" not in refused.stderr
    assert not (tmp_path / "net.nir").exists()
    ok = run("convert", tmp_path / "net.t1c", "-o", tmp_path / "net.nir", "--approximate-resets", "--json")
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.stdout)
    assert payload["approximated_resets"] == measure_reset_effect(graph).to_dict()
    assert "talon: warning:" in ok.stderr and "Measured effect" in ok.stderr
    back = run("convert", tmp_path / "net.nir", "-o", tmp_path / "back.t1c")
    assert back.exit_code == 0 and ir.read(tmp_path / "back.t1c") == graph
    np.testing.assert_array_equal(run_talon(ir.read(tmp_path / "back.t1c"), stimulus.numpy()), _snntorch_spikes(net, stimulus))
    misuse = run("convert", tmp_path / "net.t1c", "-o", tmp_path / "x.t1c", "--approximate-resets")
    assert misuse.exit_code == 2 and "applies to writing a .nir" in misuse.stderr


def test_written_for_snntorchs_time_unit_other_readers_get_snntorchs_zero_reset(tmp_path, stimulus):
    """write_nir(dt=1e-4, approximate_resets=True) for snnTorch's importer: a reader ignoring TALON's metadata runs
    snnTorch's Leaky(reset_mechanism="zero") with the same weights; TALON still reads back the subtract reset."""
    net, zero_net = _leaky_net(), _leaky_net("zero")  # same seed: same weights
    graph = to_ir(net, stimulus[0])
    with pytest.warns(NIRConversionWarning, match="Measured effect"):
        write_nir(tmp_path / "for_snntorch.nir", graph, dt=1e-4, approximate_resets=True)
    back = read_nir(tmp_path / "for_snntorch.nir")
    assert back.dt == 1e-4 and [n.reset_mode for n in back.nodes.values() if hasattr(n, "reset_mode")] == ["subtract"] * 2
    np.testing.assert_array_equal(run_talon(back, stimulus.numpy()), _snntorch_spikes(net, stimulus))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRConversionWarning)  # no dt in the file: the default 1e-4 is meant
        foreign = from_nir(_without_talon_metadata(tmp_path / "for_snntorch.nir"))
    want_zero = _snntorch_spikes(zero_net, stimulus)
    assert want_zero.sum() > 0
    np.testing.assert_array_equal(run_talon(foreign, stimulus.numpy()), want_zero)
