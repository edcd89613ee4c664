"""A kept calibration (`calibrate`, `calibration=`): the same bits as calibrating inside the call, no
calibration run, refusals by name, and a memoised plan that follows every change to the graph."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talon import ir
from talon.backend.cpu import Calibration, FixedPointConfig
from talon.backend.cpu import simulator
from talon.errors import BackendError

from backend_graphs import build_conv_recurrent, build_hybrid, build_mixed_conv, build_mlp


def assert_same_plan(a, b) -> None:
    assert a.order == b.order and a.config == b.config and a.summary() == b.summary()
    assert a.calibration == b.calibration
    for n in a.order:
        pa, pb = a.nodes[n], b.nodes[n]
        assert pa.to_dict() == pb.to_dict(), n
        assert set(pa.ints) == set(pb.ints), n
        for k in pa.ints:
            assert np.asarray(pa.ints[k]).dtype == np.asarray(pb.ints[k]).dtype and np.array_equal(pa.ints[k], pb.ints[k]), (n, k)


def assert_same_result(a, b) -> None:
    """Every number two simulate results hold, bit for bit (not the wall time)."""
    assert (a.mode, a.timesteps_run, a.batch_size, a.stimulus, a.outputs_valid) == (b.mode, b.timesteps_run, b.batch_size, b.stimulus, b.outputs_valid)
    assert a.spike_counts == b.spike_counts and a.input_events == b.input_events and a.neurons == b.neurons
    assert a.firing_rates == b.firing_rates and a.agreement == b.agreement and a.spike_inputs == b.spike_inputs
    for got, want in ((a.outputs, b.outputs), (a.spikes, b.spikes), (a.membranes, b.membranes)):
        assert set(got) == set(want)
        for n in got:
            assert got[n].dtype == want[n].dtype and torch.equal(got[n], want[n]), n
    assert_same_plan(a.fixed_point, b.fixed_point)


def assert_same_profile(a, b) -> None:
    for f in dataclasses.fields(a):
        if f.name != "simulation":
            assert getattr(a, f.name) == getattr(b, f.name), f.name
    assert_same_result(a.simulation, b.simulation)


def _exported_mlp() -> ir.Graph:
    pytest.importorskip("snntorch")
    from talon.bridge import to_ir
    from tutorial_models import SimpleSNN  # the tutorial's section 1 model, as a user writes it

    torch.manual_seed(0)
    return to_ir(SimpleSNN(), torch.zeros(1, 784))


def _cases():
    rng = np.random.default_rng(3)
    return {
        "tutorial MLP (snnTorch export)": (_exported_mlp, lambda: (torch.rand(6, 2, 784), torch.rand(9, 3, 784))),
        "hybrid": (build_hybrid, lambda: (torch.rand(5, 2, 1, 28, 28), torch.rand(7, 2, 1, 28, 28))),
        "conv SNN": (lambda: build_mixed_conv(rng), lambda: (torch.rand(5, 2, 1, 6, 6), torch.rand(6, 3, 1, 6, 6))),
        "recurrent conv SNN": (build_conv_recurrent, lambda: (2 * torch.rand(5, 2, 1, 5, 5), 2 * torch.rand(6, 3, 1, 5, 5))),
    }


@pytest.mark.parametrize("case", list(_cases()))
@pytest.mark.parametrize("round_trip", [False, True])
def test_a_kept_calibration_gives_the_bits_of_calibrating_in_the_call(cpu, case, round_trip, tmp_path):
    make, data = _cases()[case]
    g = make()
    torch.manual_seed(1)
    x, c = data()
    cal = cpu.calibrate(g, c)
    other = g
    if round_trip:  # calibrated on one copy of the graph, run on the one read back from its .t1c file
        ir.write(tmp_path / "g.t1c", g)
        other = ir.read(tmp_path / "g.t1c")
    for compare in (True, False):
        want = cpu.simulate(g, x, mode="fixed", calibration_inputs=c, record=True, compare=compare)
        got = cpu.simulate(other, x, mode="fixed", calibration=cal, record=True, compare=compare)
        assert_same_result(got, want)
    # the plan's calibration is the kept one, description included
    assert got.fixed_point.calibration == cal and cal.description.startswith("float run, ")
    # without calibration_inputs the call calibrates on its own stimulus: calibrate(graph, inputs)
    assert_same_result(cpu.simulate(other, x, mode="fixed", calibration=cpu.calibrate(g, x)), cpu.simulate(g, x, mode="fixed"))
    want_p = cpu.profile(g, x, mode="fixed", calibration_inputs=c)
    assert_same_profile(cpu.profile(other, x, mode="fixed", calibration=cal), want_p)


def test_calibrate_takes_n_steps_and_the_default_stimulus_as_compile_does(cpu):
    g = build_hybrid()
    a = cpu.compile(g, n_steps=4)
    b = cpu.compile(g, calibration=cpu.calibrate(g, n_steps=4))
    assert a.to_dict() == b.to_dict() if hasattr(a, "to_dict") else repr(a) == repr(b)
    assert set(a.arrays) == set(b.arrays) and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
    assert cpu.calibrate(g, n_steps=4) == cpu.simulate(g, n_steps=4, mode="fixed").fixed_point.calibration


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), steps=st.integers(1, 6), batch=st.integers(1, 3), scale=st.floats(0.1, 4.0), bits=st.integers(4, 12))
def test_kept_and_in_call_calibration_agree_bit_for_bit_property(cpu, seed, steps, batch, scale, bits):
    g = build_mlp(seed)
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.rand(steps, batch, 4, generator=gen)
    c = scale * torch.rand(steps + 1, batch, 4, generator=gen)
    cfg = FixedPointConfig(activation_bits=bits)
    cal = cpu.calibrate(g, c)
    want = cpu.simulate(g, x, mode="fixed", calibration_inputs=c, fixed_config=cfg, record=True)
    assert_same_result(cpu.simulate(g, x, mode="fixed", calibration=cal, fixed_config=cfg, record=True), want)


def _count_runs(monkeypatch) -> list[bool]:
    """The `calibrate` flag of every run_instrumented call from now on."""
    seen: list[bool] = []
    inner = simulator.run_instrumented

    def counted(*a, **k):
        seen.append(bool(k.get("calibrate")))
        return inner(*a, **k)

    monkeypatch.setattr(simulator, "run_instrumented", counted)
    return seen


def test_a_kept_calibration_runs_no_calibration_and_no_float_run_without_compare(cpu, monkeypatch):
    g = build_mlp(1)
    x = torch.rand(4, 2, 4)
    cal = cpu.calibrate(g, x)
    seen = _count_runs(monkeypatch)
    cpu.simulate(g, x, mode="fixed", calibration=cal, compare=False)
    assert seen == [False]  # the fixed run alone
    seen.clear()
    cpu.simulate(g, x, mode="fixed", calibration=cal)
    assert seen == [False, False]  # the float reference of the agreement, then the fixed run
    seen.clear()
    cpu.simulate(g, x, mode="fixed")
    assert seen == [True, False]  # without one: the calibration run (also the reference), then the fixed run


def test_calibrate_once_on_training_spikes_then_evaluate_test_batches(cpu):
    """What a user does: calibrate on training data once, then evaluate every test batch in fixed point."""
    g = _exported_mlp()
    gen = torch.Generator().manual_seed(5)
    train = (torch.rand(8, 16, 784, generator=gen) < 0.2).float()  # rate-coded training spikes
    calibration = cpu.calibrate(g, train)
    correct = total = 0
    for _ in range(3):
        batch = (torch.rand(6, 4, 784, generator=gen) < 0.2).float()
        labels = torch.randint(0, 10, (4,), generator=gen)
        res = cpu.simulate(g, batch, mode="fixed", calibration=calibration, compare=False)
        assert_same_result(res, cpu.simulate(g, batch, mode="fixed", calibration_inputs=train, compare=False))
        pred = res.output.sum(0).argmax(-1)
        correct += int((pred == labels).sum())
        total += len(labels)
    assert total == 12 and 0 <= correct <= total


def test_refusals_name_what_is_wrong_and_the_way_forward(cpu):
    g = build_mlp(0)
    x = torch.rand(3, 1, 4)
    cal = cpu.calibrate(g, x)
    with pytest.raises(BackendError, match="mode='fixed' only"):
        cpu.simulate(g, x, calibration=cal)
    with pytest.raises(BackendError, match="not both"):
        cpu.simulate(g, x, mode="fixed", calibration=cal, calibration_inputs=x)
    with pytest.raises(BackendError, match="not both"):
        cpu.profile(g, x, mode="fixed", calibration=cal, calibration_inputs=x)
    with pytest.raises(BackendError, match="mode='fixed' only"):
        cpu.profile(g, x, calibration=cal)
    with pytest.raises(BackendError, match="simulation="):
        cpu.profile(g, x, mode="fixed", calibration=cal, simulation=cpu.simulate(g, x, mode="fixed"))
    with pytest.raises(BackendError, match="drop n_steps"):
        cpu.compile(g, calibration=cal, n_steps=3)
    with pytest.raises(BackendError, match="must be a talon.backend.cpu.fixed.Calibration"):
        cpu.simulate(g, x, mode="fixed", calibration={"fc1": 1.0})
    neuron = next(n for n, node in g.nodes.items() if node.state_fields)
    missing = Calibration({k: v for k, v in cal.max_abs_output.items() if k != "fc1"}, cal.max_abs_state)
    with pytest.raises(BackendError, match="node 'fc1' has no calibrated output range.*backend.calibrate"):
        cpu.simulate(g, x, mode="fixed", calibration=missing)
    no_state = Calibration(cal.max_abs_output, {})
    with pytest.raises(BackendError, match=f"node '{neuron}' has no calibrated membrane range"):
        cpu.simulate(g, x, mode="fixed", calibration=no_state)
    extra = Calibration({**cal.max_abs_output, "fc9": 1.0}, cal.max_abs_state)
    with pytest.raises(BackendError, match="'fc9', but the graph has no node"):
        cpu.simulate(g, x, mode="fixed", calibration=extra)
    other = cpu.calibrate(build_hybrid(), None, 2)  # another graph's calibration
    with pytest.raises(BackendError, match="does not match the graph"):
        cpu.simulate(g, x, mode="fixed", calibration=other)
    bad = Calibration({**cal.max_abs_output, "fc1": -1.0}, cal.max_abs_state)
    with pytest.raises(BackendError, match="node 'fc1' must be a largest"):
        cpu.compile(g, calibration=bad)


def test_the_kept_plan_is_reused_and_follows_every_change(cpu):
    g = build_mlp(2)
    x = torch.rand(4, 2, 4)
    cal = cpu.calibrate(g, x)
    first = cpu.simulate(g, x, mode="fixed", calibration=cal)
    assert cpu.simulate(g, x, mode="fixed", calibration=cal).fixed_point is first.fixed_point  # memoised
    # a weight changed in place: a new plan, equal to a fresh one
    g.nodes["fc1"].weight[0, 0] += 0.75
    changed = cpu.simulate(g, x, mode="fixed", calibration=cal)
    assert changed.fixed_point is not first.fixed_point
    assert not np.array_equal(changed.fixed_point.nodes["fc1"].ints["weight"], first.fixed_point.nodes["fc1"].ints["weight"])
    fresh = simulator.fx.plan_fixed_point(g, cal)
    assert_same_plan(changed.fixed_point, fresh)
    # the calibration changed in place: a new plan (and the earlier plan keeps its own copy)
    inp = g.input_names[0]
    before = changed.fixed_point.calibration.max_abs_output[inp]
    cal.max_abs_output[inp] = 64 * before + 1.0
    recal = cpu.simulate(g, x, mode="fixed", calibration=cal)
    assert recal.fixed_point is not changed.fixed_point and changed.fixed_point.calibration.max_abs_output[inp] == before
    assert recal.fixed_point.nodes[inp].out_format != changed.fixed_point.nodes[inp].out_format
    assert_same_plan(recal.fixed_point, simulator.fx.plan_fixed_point(g, cal))
    # another config, dt, metadata: new plans
    other_cfg = cpu.simulate(g, x, mode="fixed", calibration=cal, fixed_config=FixedPointConfig(weight_bits=6))
    assert other_cfg.fixed_point is not recal.fixed_point and other_cfg.fixed_point.config.weight_bits == 6
    g.metadata["note"] = "v2"
    meta = cpu.simulate(g, x, mode="fixed", calibration=cal)
    assert meta.fixed_point is not recal.fixed_point and meta.fixed_point.graph.metadata["note"] == "v2"
    g.dt = 0.5 * float(g.dt)
    dt = cpu.simulate(g, x, mode="fixed", calibration=cal)
    assert dt.fixed_point is not meta.fixed_point and float(dt.fixed_point.graph.dt) == float(g.dt)
    assert_same_plan(dt.fixed_point, simulator.fx.plan_fixed_point(g, cal))


def test_evaluate_and_sweep_shards_calibrate_once_for_all_batches(cpu, monkeypatch):
    from talon.backend.cpu.backend import CPUBackend
    from talon.eval import evaluate
    from talon.sweep.point import run_shard

    g = build_mlp(4)
    rng = np.random.default_rng(0)
    x = rng.random((10, 5, 4)).astype(np.float32)  # (N, T, *S)
    y = rng.integers(0, 2, 10)
    calls: list[int] = []
    inner = CPUBackend.calibrate
    monkeypatch.setattr(CPUBackend, "calibrate", lambda self, *a, **k: calls.append(1) or inner(self, *a, **k))
    res = evaluate(g, (x, y), mode="fixed", batch_size=3, progress=False)
    assert len(calls) == 1  # four batches, one calibration (on the first batch)
    seq = torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2)))
    want = np.concatenate([cpu.simulate(g, seq[:, i : i + 3], mode="fixed", calibration_inputs=seq[:, :3], compare=False).output.sum(0).argmax(-1).numpy()
                           for i in range(0, 10, 3)])
    np.testing.assert_array_equal(res.scores["fixed"].predictions, want)
    calls.clear()
    shard = run_shard(g, seq.numpy(), "fixed", batch_size=4, readout=lambda o: o.sum(0).argmax(-1), output=g.output_names[0], calibration=seq[:, :2].numpy())
    assert len(calls) == 1
    by_call = [cpu.simulate(g, seq[:, i : i + 4], 5, mode="fixed", calibration_inputs=seq[:, :2].numpy(), compare=False) for i in range(0, 10, 4)]
    assert shard.spike_counts == {n: sum(s.spike_counts[n] for s in by_call) for n in shard.spike_counts}


def test_numpy_ranges_and_an_unhashable_description_plan_as_plain_floats(cpu):
    g = build_mlp(5)
    x = torch.rand(3, 2, 4)
    cal = cpu.calibrate(g, x)
    as_numpy = Calibration({k: np.float32(v) if np.float32(v) == v else v for k, v in cal.max_abs_output.items()},
                           dict(cal.max_abs_state), ["a", "list"], dict(cal.max_abs_current))  # type: ignore[arg-type]
    a = cpu.simulate(g, x, mode="fixed", calibration=as_numpy, compare=False)
    b = cpu.simulate(g, x, mode="fixed", calibration=as_numpy, compare=False)
    assert a.fixed_point is not b.fixed_point  # no key: planned afresh, the same plan
    assert_same_plan(a.fixed_point, b.fixed_point)
    assert a.fixed_point.summary() == cpu.simulate(g, x, mode="fixed", calibration=cal, compare=False).fixed_point.summary()
