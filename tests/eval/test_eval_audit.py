"""What a new user tries first: torch DataLoaders, tonic-style data sets, event samples as tonic gives them."""

import numpy as np
import pytest
import torch

from eval_models import mlp_graph
from talon.errors import TalonError
from talon.eval import evaluate


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(2)
    return rng.random((9, 6, 8)).astype(np.float32), rng.integers(0, 4, 9)


def test_dataloader_over_single_samples_equals_the_arrays(data):
    x, y = data
    g = mlp_graph()
    ref = evaluate(g, (x, y), progress=False).scores["float"].predictions
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    got = evaluate(g, torch.utils.data.DataLoader(ds, batch_size=None), progress=False).scores["float"].predictions
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_a_batching_dataloader_is_refused_with_the_way_forward(data, batch_size):
    x, y = data
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    with pytest.raises(TalonError, match=rf"DataLoader with batch_size={batch_size} yields batches.*batch_size=None"):
        evaluate(mlp_graph(), torch.utils.data.DataLoader(ds, batch_size=batch_size), progress=False)


def test_encode_with_event_data_is_refused_not_ignored(tmp_path):
    from talon.io.synthetic import write_gesture_dataset
    from talon import ir

    write_gesture_dataset(tmp_path / "g", 1, format="hdf5", size=8, duration_us=20_000)
    g = ir.Graph()
    g.add_node("input", ir.Input(shape=(2, 8, 8)))
    g.add_node("flat", ir.Flatten(start_dim=0))
    g.add_node("fc", ir.Affine(weight=np.ones((4, 128), np.float32), bias=np.zeros(4, np.float32)))
    g.add_node("output", ir.Output(shape=(4,)))
    g.chain("input", "flat", "fc", "output")
    with pytest.raises(TalonError, match=r"event recording, and encode='rate'.*leave out encode"):
        evaluate(g, str(tmp_path / "g"), steps=4, dt=5000, encode="rate", progress=False)
    assert evaluate(g, str(tmp_path / "g"), steps=4, dt=5000, progress=False).n_samples == 4


@pytest.mark.parametrize("kw, match", [
    ({"steps": 3.0}, r"steps must be a positive integer, got 3\.0"),
    ({"encode": "rate", "steps": 3, "seed": -1}, r"seed must be a whole number >= 0 .*got -1"),
    ({"encode": "rate", "steps": 3, "threshold": 0.5}, r"threshold sets the 'latency' and 'delta' encoders; with encode='rate'"),
    ({"threshold": 0.5}, r"threshold sets .* with encode=None"),
    ({"max_samples": -1}, r"max_samples must be a positive whole number"),
    ({"readout": lambda out: out.sum(0).argmax(1) + 0.5}, r"readout returned \[.*0\.5.*whole class numbers"),
])
def test_options_that_would_be_ignored_or_truncated_are_refused(data, kw, match):
    x, y = data
    xs = x[:, 0] if "encode" in kw else x
    with pytest.raises(TalonError, match=match):
        evaluate(mlp_graph(), (xs, y), progress=False, **kw)


def test_one_hot_labels_say_how_to_convert():
    x = np.zeros((5, 6, 8), np.float32)
    with pytest.raises(TalonError, match=r"y has shape \(5, 4\).*y\.argmax\(axis=1\)"):
        evaluate(mlp_graph(), (x, np.eye(4)[[0, 1, 2, 3, 0]]), progress=False)
