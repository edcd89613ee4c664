"""No sweep metric depends on how the data set is cut: shard and batch sizes give the same points, the
same data SHA-256 and the same price; a grid with its keys reordered resumes instead of re-running."""

import json

import numpy as np
import pytest

from sweep_fixtures import data, mlp_graph, strip_timings
from talon.backend import get_backend
from talon.backend.cpu.fixed import FixedPointConfig
from talon.sweep import sweep
from talon.sweep.point import prepare


@pytest.fixture(scope="module")
def conv():
    """The user's form: an snnTorch conv SNN exported with to_ir; sparse event-like frames (N, T, C, H, W)."""
    import snntorch as snn
    import torch
    import torch.nn as nn

    from talon.bridge import to_ir

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, stride=2, padding=1), snn.Leaky(beta=0.8, init_hidden=True), nn.Flatten(),
                        nn.Linear(4 * 4 * 4, 3), snn.Leaky(beta=0.8, init_hidden=True, output=True))  # fmt: skip
    g = to_ir(net, torch.zeros(1, 2, 8, 8))
    rng = np.random.default_rng(3)
    # samples of very different activity: the per-step event load differs from sample to sample
    density = np.array([0.02, 0.6, 0.1, 0.35, 0.05, 0.8, 0.2])[:, None, None, None, None]
    d = {"x": (rng.random((7, 5, 2, 8, 8)) < density).astype(np.float32), "y": rng.integers(0, 3, 7)}
    return g, d


GRID = {"weight_bits": [4, 8], "mesh": ["2x2"], "neurons_per_core": [64]}


def _run(g, d, out, **kw):
    res = sweep(g, d, GRID, str(out), plots=False, **kw)
    doc = json.loads((out / "results.json").read_text())
    settings = {k: v for k, v in doc["settings"].items() if k not in ("batch_size", "shard_size")}
    return res, settings


def test_shard_and_batch_sizes_give_identical_points(conv, tmp_path):
    g, d = conv
    runs = {(s, b): _run(g, d, tmp_path / f"s{s}b{b}", shard_size=s, batch_size=b) for s, b in [(7, 7), (1, 1), (3, 2), (3, 3), (7, 2), (2, 5)]}
    (base, base_settings), *others = runs.values()
    assert [p["status"] for p in base.points] == ["ok", "ok"] and base.points[0]["metrics"]["cores"] > 1  # the NoC is priced too
    for res, settings in others:
        assert strip_timings(res.points) == strip_timings(base.points)  # every metric, energy and latency included, exactly
        assert {**res.reference, "seconds": 0} == {**base.reference, "seconds": 0}
        assert settings == base_settings  # data_sha256 among them


def test_the_price_is_one_run_of_the_whole_data_set(conv, tmp_path):
    """energy and latency per sample are the backend's profile of all samples simulated as one batch."""
    g, d = conv
    res, _ = _run(g, d, tmp_path, shard_size=2, batch_size=1)
    p = res.points[1]
    mapped = prepare(g, p["settings"]).graph
    x = np.ascontiguousarray(np.swapaxes(d["x"], 0, 1))
    be = get_backend("cpu")
    cfg = FixedPointConfig(weight_bits=8)
    sim = be.simulate(mapped, x, 5, mode="fixed", calibration_inputs=x, fixed_config=cfg, compare=False, progress=False)
    prof = be.profile(mapped, x, 5, mode="fixed", simulation=sim)
    m = p["metrics"]
    assert m["latency_us"] == prof.total_latency_us
    assert m["energy_uj"] == prof.energy_estimate_uj
    assert m["spikes_per_sample"] == sim.total_spikes / 7
    assert p["pricing"]["energy_preset"] == "45nm_cmos" and p["pricing"]["hardware"] == "small"
    assert p["pricing"]["energy_per_hop_pj"] == pytest.approx(3.5)


def test_the_data_digest_does_not_depend_on_the_shard_size(tmp_path):
    digests = set()
    for s in (1, 5, 24):
        sweep(mlp_graph(), data(), ["weight_bits=8", "mesh=1x1"], str(tmp_path / str(s)), steps=4, encode="rate", shard_size=s, plots=False)
        digests.add(json.loads((tmp_path / str(s) / "results.json").read_text())["settings"]["data_sha256"])
    assert len(digests) == 1
    other = sweep(mlp_graph(), data(seed=2), ["weight_bits=8", "mesh=1x1"], str(tmp_path / "o"), steps=4, encode="rate", plots=False)
    assert json.loads((tmp_path / "o" / "results.json").read_text())["settings"]["data_sha256"] not in digests and other.points


def test_a_grid_with_its_keys_reordered_resumes_without_duplicates(tmp_path):
    kw = dict(steps=4, encode="rate", batch_size=8, shard_size=8, plots=False)
    first = sweep(mlp_graph(), data(), ["neurons_per_core=64", "weight_bits=4,8", "mesh=1x1"], str(tmp_path), **kw)
    assert [p["id"] for p in first.points] == ["weight_bits=4 mesh=1x1 neurons_per_core=64", "weight_bits=8 mesh=1x1 neurons_per_core=64"]
    lines = []
    again = sweep(mlp_graph(), data(), {"mesh": ["1x1"], "weight_bits": [8, 4, 6], "neurons_per_core": [64]}, str(tmp_path), log=lines.append,
                  **{**kw, "shard_size": 3, "batch_size": 2})  # fmt: skip
    assert again.skipped == 2 and len(lines) == 1 and "weight_bits=6" in lines[0]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [p["params"]["weight_bits"] for p in doc["points"]] == [8, 4, 6]  # the new grid's order, each point once
    assert strip_timings(again.points[:2]) == strip_timings(first.points[::-1])


def test_a_hardware_sweep_says_which_energy_model_priced_it(tmp_path):
    lines = []
    res = sweep(mlp_graph(), data(), {"hardware": ["small", "loihi-like"]}, str(tmp_path), steps=4, encode="rate", log=lines.append, plots=False)
    assert lines[0].startswith("note: every hardware preset is priced with the energy preset '45nm_cmos'")
    assert "loihi-like 3.5 pJ/5.3 ns" in lines[0] and "small 3.5 pJ/5.3 ns" in lines[0]
    assert [p["pricing"]["hardware"] for p in res.points] == ["small", "loihi-like"]
    assert {p["pricing"]["energy_preset"] for p in res.points} == {"45nm_cmos"}
