"""A conv SNN file as the existing SDK writes it: per-neuron constants flat (a LIF after a 12x8x8
convolution has tau of shape (768,)). Every command reads it as the neuron layout it is (C order), and
it simulates spike for spike like the same model with shaped constants (issue 14)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from talon import ir

S = h5py.string_dtype("utf-8")
NEURONS = (12, 8, 8)


def _arrays(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = int(np.prod(NEURONS))
    return {
        "conv1": (rng.normal(0, 0.4, (24, 1, 3, 3)).astype(np.float32), rng.normal(0, 0.1, 24).astype(np.float32)),
        "conv2": (rng.normal(0, 0.3, (12, 24, 1, 1)).astype(np.float32), rng.normal(0, 0.1, 12).astype(np.float32)),
        # per-neuron constants that differ neuron by neuron, so a wrong layout would change the spikes
        "lif": {"tau": rng.uniform(2, 10, n).astype(np.float32), "v_threshold": rng.uniform(0.2, 0.6, n).astype(np.float32)},
        "fc": (rng.normal(0, 0.1, (10, n)).astype(np.float32), np.zeros(10, np.float32)),
    }


def write_existing_sdk_file(path) -> None:
    """The layout /work/shared/compat/README.md documents: plain HDF5, no attributes, vlen UTF-8 strings,
    int64 tuples, nodes unordered; here with the LIF's constants flat, as that SDK stores them."""
    a = _arrays()
    lif = a["lif"]
    nodes = {
        "input": ("Input", {"shape": np.array([1, 10, 10], np.int64)}),
        "conv1": ("Conv2d", {"weight": a["conv1"][0], "bias": a["conv1"][1], "stride": np.array([1, 1], np.int64),
                             "padding": np.array([0, 0], np.int64), "dilation": np.array([1, 1], np.int64), "groups": np.int64(1)}),
        "relu": ("ReLU", {"features": np.int64(24 * 8 * 8)}),
        "conv2": ("Conv2d", {"weight": a["conv2"][0], "bias": a["conv2"][1], "stride": np.array([1, 1], np.int64),
                             "padding": np.array([0, 0], np.int64), "dilation": np.array([1, 1], np.int64), "groups": np.int64(1)}),
        "lif": ("LIF", {"tau": lif["tau"], "r": lif["tau"].copy(), "v_leak": np.zeros(768, np.float32), "v_threshold": lif["v_threshold"]}),
        "flat": ("Flatten", {"start_dim": np.int64(0), "end_dim": np.int64(-1)}),
        "fc": ("Affine", {"weight": a["fc"][0], "bias": a["fc"][1]}),
        "output": ("Output", {"shape": np.array([10], np.int64)}),
    }
    order = list(nodes)
    with h5py.File(path, "w") as f:
        f.create_dataset("version", data="0.0.1", dtype=S)
        g = f.create_group("graph")
        g.create_dataset("type", data="Graph", dtype=S)
        ng = g.create_group("nodes")
        for name, (type_name, fields) in nodes.items():
            n = ng.create_group(name)
            n.create_dataset("type", data=type_name, dtype=S)
            for key, value in fields.items():
                n.create_dataset(key, data=value)
        edges = g.create_group("edges")
        edges.create_dataset("src", data=order[:-1], dtype=S)
        edges.create_dataset("dst", data=order[1:], dtype=S)


def shaped_graph() -> ir.Graph:
    """The same model built with shaped constants."""
    a = _arrays()
    lif = a["lif"]
    nodes = {
        "input": ir.Input(shape=(1, 10, 10)),
        "conv1": ir.Conv2d(weight=a["conv1"][0], bias=a["conv1"][1]),
        "relu": ir.ReLU(features=24 * 8 * 8),
        "conv2": ir.Conv2d(weight=a["conv2"][0], bias=a["conv2"][1]),
        "lif": ir.LIF(tau=lif["tau"].reshape(NEURONS), r=lif["tau"].reshape(NEURONS), v_leak=np.zeros(NEURONS, np.float32),
                      v_threshold=lif["v_threshold"].reshape(NEURONS)),
        "flat": ir.Flatten(),
        "fc": ir.Affine(weight=a["fc"][0], bias=a["fc"][1]),
        "output": ir.Output(shape=(10,)),
    }
    g = ir.Graph(nodes)
    g.chain(*nodes)
    return g


@pytest.fixture
def flat_file(tmp_path):
    path = tmp_path / "conv_snn_existing_sdk.t1c"
    write_existing_sdk_file(path)
    return path


def test_flat_constants_read_as_the_neuron_layout(flat_file):
    g = ir.read(flat_file)
    g.validate()
    lif = g.nodes["lif"]
    expected = shaped_graph().nodes["lif"]
    for name in ("tau", "r", "v_leak", "v_threshold"):
        value = getattr(lif, name)
        assert value.shape == NEURONS and np.array_equal(value, getattr(expected, name)), name
    assert g.nodes["lif"].output_shapes == [NEURONS]


@pytest.mark.parametrize("command", [["validate"], ["analyze", "--json"], ["profile", "--json"], ["simulate", "--steps", "5"],
                                     ["map"], ["export-html"]])
def test_every_command_works_on_the_file(flat_file, tmp_path, run_cli, command):
    if command[0] == "simulate":
        pytest.importorskip("torch")
    args = [command[0], str(flat_file), *command[1:]]
    if command[0] == "export-html":
        args += ["-o", str(tmp_path / "view.html")]
    code, out, err = run_cli(*args)
    assert code == 0, f"{command}: {out}\n{err}"
    if command[0] == "analyze":
        doc = json.loads(out)
        assert '"params": %d' % shaped_graph_params() in json.dumps(doc, separators=(", ", ": ")), doc


def shaped_graph_params() -> int:
    from talon.sdk import analyze_graph

    return analyze_graph(shaped_graph()).total_params


def test_simulates_spike_for_spike_like_the_shaped_model(flat_file):
    pytest.importorskip("torch")
    from talon.backend import get_backend

    cpu = get_backend("cpu")
    x = np.random.default_rng(1).uniform(0, 2, (6, 2, 1, 10, 10)).astype(np.float32)
    a = cpu.simulate(ir.read(flat_file), x, record="spikes")
    b = cpu.simulate(shaped_graph(), x, record="spikes")
    assert a.spike_counts == b.spike_counts and a.spike_counts["lif"] > 0
    assert np.array_equal(np.asarray(a.spikes["lif"]), np.asarray(b.spikes["lif"]))
