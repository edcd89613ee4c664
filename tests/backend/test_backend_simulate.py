"""CPU simulation in float mode: it is the bridge runtime with counters; inputs, records, results."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from talon import ir
from talon.backend.stimulus import ConstantEncoder, RateEncoder, default_stimulus
from talon.bridge.executor import ir_to_torch
from talon.errors import BackendError

from backend_graphs import build_hybrid, build_mlp, lif

TUTORIAL = Path(__file__).resolve().parents[3] / "shared" / "seed" / "snntorch_tutorial.md"


def _section9() -> str:
    text = TUTORIAL.read_text()
    part = text[text.index("## 9. Backend Simulation") :]
    return re.search(r"```python\n(.*?)```", part, re.S).group(1)


def test_tutorial_section_9_runs_verbatim(capsys):
    """Section 9's code, verbatim, on the hybrid graph built by hand (the exporter's output)."""
    if not TUTORIAL.exists():
        pytest.skip("shared tutorial not available")
    hybrid_graph = build_hybrid()
    exec(compile(_section9(), "tutorial-section-9", "exec"), {"hybrid_graph": hybrid_graph})
    out = capsys.readouterr().out
    assert "Timesteps: 10" in out and "Output valid: True" in out
    assert re.search(r"Spike counts: \{'lif': \d+\}", out)
    for label in ("Total latency", "Total energy", "MAC energy", "Spike energy", "SRAM energy", "Peak memory"):
        assert label in out


def test_section_9_attributes(cpu, hybrid):
    sim = cpu.simulate(hybrid, n_steps=10)
    assert sim.timesteps_run == 10 and sim.batch_size == 1
    assert list(sim.spike_counts) == ["lif"] and isinstance(sim.spike_counts["lif"], int)
    assert sim.outputs_valid is True
    assert sim.output.shape == (10, 1, 10)
    assert 0 <= sim.firing_rates["lif"] <= 1
    assert sim.firing_rates["lif"] == sim.spike_counts["lif"] / (64 * 10)
    assert sim.input_events == {"fc2": sim.spike_counts["lif"]}  # fc2 is fed by the LIF's spikes
    prof = cpu.profile(hybrid, n_steps=10, energy_preset="45nm_cmos")
    parts = (prof.mac_energy_uj, prof.spike_energy_uj, prof.neuron_energy_uj, prof.elementwise_energy_uj, prof.sram_energy_uj)
    assert prof.energy_estimate_uj == math.fsum(parts)  # exactly rounded: the same in any order of the parts
    assert prof.energy_estimate_uj == pytest.approx(sum(lp.energy_uj for lp in prof.layers.values()))
    assert prof.total_latency_us == pytest.approx(sum(lp.latency_us for lp in prof.layers.values()))
    assert prof.total_latency_us > 0 and prof.peak_memory_bytes > 0
    from talon.sdk import profile_graph

    assert prof.peak_memory_bytes == profile_graph(hybrid).total_memory  # tutorial section 7's total
    assert "SRAM" in prof.summary() and "lif" in sim.summary()


def test_simulation_is_the_bridge_runtime(cpu, hybrid):
    """Outputs equal the bare executor's, bit for bit, on the same inputs (no second implementation)."""
    x = torch.rand((12, 2, 1, 28, 28), generator=torch.Generator().manual_seed(5)) * 2
    sim = cpu.simulate(hybrid, x, record=True)
    ex = ir_to_torch(hybrid, return_state=True)
    with torch.inference_mode():
        out, _ = ex.run(x, state=None)
    assert torch.equal(sim.output, out)
    assert sim.timesteps_run == 12 and sim.batch_size == 2
    assert sim.spikes["lif"].shape == (12, 2, 64) and sim.membranes["lif"].shape == (12, 2, 64)
    assert int(sim.spikes["lif"].count_nonzero()) == sim.spike_counts["lif"]
    # the recorded membrane crosses the threshold exactly where spikes are recorded
    assert torch.equal(sim.spikes["lif"] != 0, sim.membranes["lif"] > 1.0)


def test_chunking_and_progress_do_not_change_results(cpu, hybrid, capsys):
    whole = cpu.simulate(hybrid, n_steps=9, record="spikes")
    chunked = cpu.simulate(hybrid, n_steps=9, record="spikes", chunk_steps=2, progress=True)
    assert whole.spike_counts == chunked.spike_counts
    assert torch.equal(whole.spikes["lif"], chunked.spikes["lif"])
    assert torch.equal(whole.output, chunked.output)
    quiet = cpu.simulate(hybrid, n_steps=3)  # not a terminal: no progress output at all
    assert quiet.outputs_valid
    captured = capsys.readouterr()
    assert captured.out == ""


def test_input_forms(cpu):
    g = build_mlp()
    x = torch.rand(4, generator=torch.Generator().manual_seed(0)) * 3
    one = cpu.simulate(g, x, n_steps=5)  # one sample, repeated every step
    batched = cpu.simulate(g, x.unsqueeze(0), n_steps=5)
    seq = cpu.simulate(g, x.expand(5, 1, 4).clone())  # (T, B, ...): n_steps from T
    enc = cpu.simulate(g, ConstantEncoder(x.unsqueeze(0)), n_steps=5)
    named = cpu.simulate(g, {"inp": x.numpy()}, n_steps=5)
    for r in (batched, seq, enc, named):
        assert r.timesteps_run == 5 and torch.equal(r.output, one.output)
    rate = cpu.simulate(g, RateEncoder(torch.full((2, 4), 0.5), seed=1), n_steps=6)
    again = cpu.simulate(g, RateEncoder(torch.full((2, 4), 0.5), seed=1), n_steps=6)
    assert rate.batch_size == 2 and torch.equal(rate.output, again.output)
    assert cpu.simulate(g).timesteps_run == 10  # default: 10 steps of the default stimulus


def test_default_stimulus_is_documented_and_deterministic(cpu, hybrid):
    x = default_stimulus((1, 28, 28))
    assert x.shape == (1, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) < 1
    assert torch.equal(x, torch.rand((1, 1, 28, 28), generator=torch.Generator().manual_seed(0)))
    a, b = cpu.simulate(hybrid, n_steps=4), cpu.simulate(hybrid, x, n_steps=4)
    assert torch.equal(a.output, b.output) and a.spike_counts == b.spike_counts
    assert "seed" in a.stimulus


def test_input_errors(cpu):
    g = build_mlp()
    with pytest.raises(BackendError, match="trailing dimensions"):
        cpu.simulate(g, torch.zeros(3))
    with pytest.raises(BackendError, match="holds 2 steps but n_steps=5"):
        cpu.simulate(g, torch.zeros(2, 1, 4), n_steps=5)
    with pytest.raises(BackendError, match="n_steps"):
        cpu.simulate(g, n_steps=0)
    with pytest.raises(BackendError, match="unknown"):
        cpu.simulate(g, {"nope": torch.zeros(4)})
    with pytest.raises(BackendError, match="expected S, \\(B, \\*S\\) or \\(T, B, \\*S\\)"):
        cpu.simulate(g, torch.zeros(1, 1, 1, 4))
    with pytest.raises(BackendError, match="mode"):
        cpu.simulate(g, mode="double")
    with pytest.raises(BackendError, match="record names unknown"):
        cpu.simulate(g, record=["ghost"])


def test_outputs_valid_false_on_non_finite(cpu):
    g = build_mlp()
    nodes = {n: g.nodes[n] for n in ("inp", "fc1", "n1", "fc2", "out")}
    ok = ir.Graph(nodes)
    ok.chain(*nodes)
    assert cpu.simulate(ok, torch.ones(4) * 3, n_steps=3).outputs_valid is True
    nodes["fc2"] = g.nodes["fc2"].replace(weight=np.full((2, 3), np.inf, np.float32))
    bad = ir.Graph(nodes)
    bad.chain(*nodes)
    assert cpu.simulate(bad, torch.ones(4) * 3, n_steps=3).outputs_valid is False


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_non_finite_stimulus_is_refused(cpu, mode):
    """An all-NaN (or partly inf) stimulus never yields 'valid' outputs or energy figures: it is refused,
    naming the input, the count of non-finite values and the first one's index."""
    g = build_mlp()
    nan = np.full((4,), np.nan, np.float32)
    with pytest.raises(BackendError, match=re.escape("input 'inp' holds 4 non-finite value(s) (NaN or ±inf) out of 4; the first is nan at index (0,)")):
        cpu.simulate(g, nan, n_steps=3, mode=mode)
    seq = np.zeros((5, 2, 4), np.float32)
    seq[3, 1, 2] = np.inf
    seq[4, 0, 0] = -np.inf
    with pytest.raises(BackendError, match=re.escape("input 'inp' holds 2 non-finite value(s) (NaN or ±inf) out of 40; the first is inf at index (3, 1, 2)")):
        cpu.simulate(g, seq, mode=mode)
    with pytest.raises(BackendError, match="input 'inp' holds 4 non-finite"):
        cpu.profile(g, nan, n_steps=3, mode=mode)
    if mode == "fixed":  # the calibration run is fed its own stimulus
        with pytest.raises(BackendError, match="input 'inp' holds 4 non-finite"):
            cpu.simulate(g, n_steps=3, mode=mode, calibration_inputs=nan)
    with pytest.raises(BackendError, match=re.escape("input 'inp' (from its encoder, step 2) holds 1 non-finite")):
        cpu.simulate(g, lambda t: torch.tensor([[0.0, 1.0, 0.0, float("nan") if t == 2 else 0.0]]), n_steps=4, mode=mode)


def test_non_finite_stimulus_is_refused_by_compile_and_named_inputs(cpu):
    nodes = {"a": ir.Input(shape=(3,)), "b": ir.Input(shape=(3,)), "sum": ir.Skip(skip_type="residual"), "n": lif(3), "o": ir.Output()}
    g = ir.Graph(nodes, [("a", "sum"), ("b", "sum"), ("sum", "n"), ("n", "o")])
    with pytest.raises(BackendError, match=re.escape("input 'b' holds 1 non-finite value(s) (NaN or ±inf) out of 3; the first is nan at index (1,)")):
        cpu.simulate(g, {"a": torch.ones(3), "b": torch.tensor([0.0, float("nan"), 1.0])}, n_steps=2)
    with pytest.raises(BackendError, match="input 'a' holds 3 non-finite"):
        cpu.compile(g, calibration_inputs={"a": torch.full((3,), float("inf")), "b": torch.ones(3)})


def test_rate_encoder_takes_probabilities_in_unit_interval(cpu):
    g = build_mlp()
    with pytest.raises(BackendError, match=re.escape("rate-encoded input 'inp' holds values in [0, 5] (2 of 4 outside [0, 1])")):
        RateEncoder(np.array([0.0, 5.0, 2.0, 1.0], np.float32), name="inp")
    with pytest.raises(BackendError, match=re.escape("rate-encoded input holds values in [-0.25, 0.5] (1 of 2 outside [0, 1])")):
        RateEncoder(torch.tensor([-0.25, 0.5]))
    with pytest.raises(BackendError, match=re.escape("rate-encoded input holds 1 non-finite value(s) (NaN or ±inf) out of 3; the first is nan at index (2,)")):
        RateEncoder([0.5, 1.0, float("nan")])
    with pytest.raises(BackendError, match="rate-encoded input holds 1 non-finite"):
        RateEncoder([0.5, float("inf")])
    edges = RateEncoder(np.array([[0.0, 1.0, 1.0, 0.0]], np.float32), seed=3)  # the bounds themselves are fine
    r = cpu.simulate(g, edges, n_steps=4, record=["inp"])
    assert torch.equal(r.spikes["inp"], torch.tensor([[[0.0, 1.0, 1.0, 0.0]]]).expand(4, 1, 4))


def test_multiple_inputs_and_t1c_path(cpu, tmp_path):
    nodes = {
        "a": ir.Input(shape=(3,)),
        "b": ir.Input(shape=(3,)),
        "sum": ir.Skip(skip_type="residual"),
        "n": lif(3, threshold=0.5),
        "o": ir.Output(),
    }
    g = ir.Graph(nodes, [("a", "sum"), ("b", "sum"), ("sum", "n"), ("n", "o")])
    r = cpu.simulate(g, {"a": torch.ones(3), "b": torch.ones(3)}, n_steps=4)
    assert r.spike_counts["n"] == 12  # 2 > 0.5 on every step, every neuron
    with pytest.raises(BackendError, match="pass inputs as a dict"):
        cpu.simulate(g, torch.ones(3))
    d = cpu.simulate(g, n_steps=2)  # default stimulus: seed 0 for 'a', seed 1 for 'b'
    assert d.outputs_valid
    path = tmp_path / "m.t1c"
    ir.write(str(path), g)
    assert cpu.simulate(str(path), {"a": torch.ones(3), "b": torch.ones(3)}, n_steps=4).spike_counts == r.spike_counts


def test_progress_bar_renders_on_request():
    from rich.console import Console

    from talon.backend.cpu import simulator

    assert simulator._progress(10, None) is None  # short run, not a terminal
    buf = io.StringIO()
    bar = simulator._progress(10, True, Console(file=buf, force_terminal=True, width=80))
    with bar:
        task = bar.add_task("simulate", total=10)
        bar.update(task, completed=10)
        bar.refresh()
    assert "simulating" in buf.getvalue()


def test_batch_time_false_equals_per_step_executor_calls(cpu, hybrid):
    x = torch.rand((6, 3, 1, 28, 28), generator=torch.Generator().manual_seed(11)) * 2
    sim = cpu.simulate(hybrid, x, batch_time=False)
    ex = ir_to_torch(hybrid, return_state=True)
    state, outs = None, []
    with torch.inference_mode():
        for t in range(6):
            out, state = ex(x[t], state)
            outs.append(out)
    assert torch.equal(sim.output, torch.stack(outs))


def test_stimuli_beyond_float32_and_empty_batches_are_refused(cpu):
    """A float64 value beyond float32's range would become inf in a float32 run; a batch of no samples
    has nothing to simulate. Both are refused up front with BackendError, in every form of input."""
    g = build_mlp()
    shape = tuple(g.nodes["inp"].shape)
    big = np.full((5, 2, *shape), 1e39)
    with pytest.raises(BackendError, match="beyond float32's range"):
        cpu.simulate(g, big)
    with pytest.raises(BackendError, match="beyond float32's range"):
        cpu.simulate(g, big[0])
    with pytest.raises(BackendError, match="no samples"):
        cpu.simulate(g, np.zeros((0, *shape), np.float32), n_steps=3)


def test_our_encoders_are_not_rechecked_every_step(cpu, monkeypatch):
    """Arrays and our own encoders are checked once, up front; only a user's encoder is checked per step."""
    from talon.backend import stimulus

    calls = []
    real = stimulus.check_finite
    monkeypatch.setattr(stimulus, "check_finite", lambda x, what: (calls.append(what), real(x, what)))
    g = build_mlp()
    shape = tuple(g.nodes["inp"].shape)
    cpu.simulate(g, stimulus.RateEncoder(np.full((2, *shape), 0.5)), n_steps=6)
    cpu.simulate(g, np.full((2, *shape), 0.5, np.float32), n_steps=6)
    assert not [c for c in calls if "step" in c]
    cpu.simulate(g, {"inp": lambda t: np.full((2, *shape), 0.5, np.float32)}, n_steps=6)
    assert len([c for c in calls if "step" in c]) >= 6
