"""talon.sweep in-process: every point's numbers are talon.eval's, a point that does not fit is a result,
results are written as points finish, and running again skips finished points."""

import json
import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sweep_fixtures import data, mlp_graph, strip_timings
from talon.backend.cpu.fixed import FixedPointConfig
from talon.errors import TalonError
from talon.eval import evaluate
from talon.sdk import convert_to_spiking, quantize_weights
from talon.sweep import pareto_front, sweep
from talon.sweep.point import prepare

KW = dict(steps=6, encode="rate", batch_size=4, shard_size=8, plots=False)
GRID = ["weight_bits=3,8", "accumulator_bits=10,24", "neurons_per_core=4,64", "mesh=1x1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    lines = []
    res = sweep(mlp_graph(), data(), GRID, str(out), log=lines.append, **KW)
    return out, res, lines


def test_every_point_is_talon_eval_on_the_converted_model(run):
    out, res, _ = run
    g, d = mlp_graph(), data()
    ref = evaluate(g, d, "float", steps=6, encode="rate", batch_size=4)
    assert res.reference["accuracy"] == ref.accuracy and res.reference["predictions"] == ref.scores["float"].predictions.tolist()
    measured = [p for p in res.points if p["status"] == "ok"]
    assert len(measured) == 4
    for p in measured:
        wb, ab = p["params"]["weight_bits"], p["params"]["accumulator_bits"]
        hw = quantize_weights(convert_to_spiking(g, wb, ab), wb)  # built here the way the sdk docs do it
        fx = evaluate(hw, d, "fixed", steps=6, encode="rate", batch_size=4, fixed_config=FixedPointConfig(weight_bits=wb, accumulator_bits=ab))
        m = p["metrics"]
        assert m["accuracy"] == fx.scores["fixed"].accuracy
        assert m["agreement"] == float(np.mean(fx.scores["fixed"].predictions == ref.scores["float"].predictions))
        assert m["float_accuracy"] == ref.accuracy and m["fits"] and m["cores"] == 1
        assert p["accumulator_bits"] == [ab]
        mapped = prepare(g, p["settings"]).graph  # with its mapping attached, so the NoC is priced as well
        priced = evaluate(mapped, d, "fixed", steps=6, encode="rate", batch_size=4, fixed_config=FixedPointConfig(weight_bits=wb, accumulator_bits=ab))
        assert m["energy_uj"] == priced.scores["fixed"].energy_per_sample_uj
        assert m["spikes_per_sample"] == priced.scores["fixed"].spikes_per_sample
        assert m["latency_us"] > 0 and m["packet_hops_per_step"] >= 0
    # the narrow accumulator saturates: 8-bit weights into 10 bits cannot match the float model everywhere
    by = {p["id"]: p["metrics"] for p in measured}
    assert by["weight_bits=8 accumulator_bits=24 mesh=1x1 neurons_per_core=64"]["agreement"] > by["weight_bits=8 accumulator_bits=10 mesh=1x1 neurons_per_core=64"]["agreement"]


def test_a_point_that_does_not_fit_is_a_result(run):
    _, res, _ = run
    small = [p for p in res.points if p["params"]["neurons_per_core"] == 4]
    assert len(small) == 4
    for p in small:
        assert p["status"] == "does-not-fit" and p["fits"] is False and p["metrics"]["fits"] is False
        assert p["reason"].startswith("map: the graph does not fit the 1x1 mesh") and "smallest mesh that" in p["reason"]
        assert p["metrics"]["accuracy"] is None and p["metrics"]["energy_uj"] is None


def test_files_csv_and_pareto(run):
    out, res, lines = run
    doc = json.loads((out / "results.json").read_text())
    assert doc["schema"] == "talon.sweep/2" and [p["id"] for p in doc["points"]] == [p["id"] for p in res.points]
    assert doc["settings"]["samples"] == 24 and doc["settings"]["steps"] == 6
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 9 and rows[0].startswith("id,weight_bits,accumulator_bits,neurons_per_core,mesh,status,fits,accuracy")
    front = (out / "pareto.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in front] == [p["id"] for p in res.pareto] and res.pareto
    assert len(lines) == 8 and lines[-1].startswith("[8/8] ") and "best " in lines[-1] and "s left" in lines[-1]


def test_running_again_skips_finished_points_and_resumes_a_broken_run(run, tmp_path):
    out, res, _ = run
    lines = []
    again = sweep(mlp_graph(), data(), GRID, str(out), log=lines.append, **KW)
    assert again.skipped == 8 and lines == [] and strip_timings(again.points) == strip_timings(res.points)
    # a run stopped after 3 points: its results.json holds those; the next run does only the other 5
    doc = json.loads((out / "results.json").read_text())
    doc["points"] = doc["points"][:3]
    (tmp_path / "results.json").write_text(json.dumps(doc))
    resumed = sweep(mlp_graph(), data(), GRID, str(tmp_path), log=lines.append, **KW)
    assert resumed.skipped == 3 and len(lines) == 5 and lines[0].startswith("[4/8] ")
    assert strip_timings(resumed.points) == strip_timings(res.points)


def test_a_different_sweep_in_the_same_folder_is_refused(run):
    out, _, _ = run
    before = (out / "results.json").read_bytes()
    with pytest.raises(TalonError, match=r"holds a different sweep \(it differs in data_sha256, seed\)"):
        sweep(mlp_graph(), data(), GRID, str(out), **{**KW, "seed": 5})
    assert (out / "results.json").read_bytes() == before


def test_out_must_be_a_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(TalonError, match="is a file; the sweep writes a folder"):
        sweep(mlp_graph(), data(), ["weight_bits=8"], str(tmp_path / "f"), **KW)


def test_out_none_and_an_unreachable_ray_address_are_refused_clearly(tmp_path):
    with pytest.raises(TalonError, match="out must be the folder"):
        sweep(mlp_graph(), data(), ["weight_bits=8"], None, **KW)
    import socket

    with socket.socket() as s:  # a port nothing listens on: Ray itself would retry it without end
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TalonError, match="cannot reach a Ray head there"):
        sweep(mlp_graph(), data(), ["weight_bits=8"], str(tmp_path / "o"), ray=True, ray_address=f"127.0.0.1:{port}", **KW)


def test_ray_missing_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(TalonError, match=r"pip install 't1c-talon\[distributed\]'"):
        sweep(mlp_graph(), data(), ["weight_bits=8"], str(tmp_path / "o"), ray=True, **KW)
    assert not (tmp_path / "o").exists()


def test_a_conv_snn_from_snntorch(tmp_path):
    """The user's form: an snnTorch conv SNN exported with to_ir, event-like frames as (N, T, C, H, W)."""
    import snntorch as snn
    import torch
    import torch.nn as nn

    from talon.bridge import to_ir

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), snn.Leaky(beta=0.8, init_hidden=True), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 3), snn.Leaky(beta=0.8, init_hidden=True, output=True))  # fmt: skip
    g = to_ir(net, torch.zeros(1, 2, 8, 8))
    rng = np.random.default_rng(0)
    d = {"x": (rng.random((6, 5, 2, 8, 8)) < 0.3).astype(np.float32), "y": rng.integers(0, 3, 6)}
    res = sweep(g, d, {"weight_bits": [4, 8], "accumulator_bits": [16]}, str(tmp_path), batch_size=3, shard_size=3, plots=True)
    assert [p["status"] for p in res.points] == ["ok", "ok"] and (tmp_path / "pareto.png").stat().st_size > 0
    fx = evaluate(g, d, "fixed", batch_size=3, fixed_config=FixedPointConfig(weight_bits=8, accumulator_bits=16))
    assert res.reference["accuracy"] == fx.scores["float"].accuracy


metric = st.tuples(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), st.integers(1, 6))


@settings(max_examples=60, deadline=None)
@given(st.lists(metric, min_size=1, max_size=8))
def test_pareto_front_is_exactly_the_undominated_points(pairs):
    pts = [{"id": str(i), "status": "ok", "metrics": {"accuracy": a, "energy_uj": float(e)}} for i, (a, e) in enumerate(pairs)]
    front = pareto_front(pts + [{"id": "x", "status": "does-not-fit", "metrics": {"accuracy": None, "energy_uj": None}}])
    ids = {p["id"] for p in front}

    def beats(q, p):
        qa, qe, pa, pe = q["metrics"]["accuracy"], q["metrics"]["energy_uj"], p["metrics"]["accuracy"], p["metrics"]["energy_uj"]
        return qa >= pa and qe <= pe and (qa > pa or qe < pe)

    for p in pts:
        assert (p["id"] in ids) == (not any(beats(q, p) for q in pts))
    assert [p["metrics"]["energy_uj"] for p in front] == sorted(p["metrics"]["energy_uj"] for p in front)
