"""talon.eval.evaluate: the numbers a user would compute by hand from the backend (or snnTorch itself),
for every data form; the fixed-point run calibrated once; bad data refused with the file named."""

import numpy as np
import pytest
import torch

from eval_models import conv_snn, mlp_graph, snntorch_counts
from talon import io
from talon.backend import get_backend
from talon.errors import TalonError
from talon.eval import evaluate
from talon.io.synthetic import write_gesture_dataset


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.random((23, 12, 8)).astype(np.float32)  # (N, T, *S) sequences
    y = rng.integers(0, 4, 23)
    return x, y


def by_hand(g, x, y, mode="float", cal=None):
    """Predictions, confusion matrix from one backend simulation of the whole set."""
    kw = {"calibration_inputs": cal, "compare": False} if mode == "fixed" else {}
    sim = get_backend("cpu").simulate(g, torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2))), mode=mode, **kw)
    pred = sim.output.sum(0).argmax(1).numpy()
    conf = np.zeros((4, 4), int)
    for a, b in zip(y, pred):
        conf[a, b] += 1
    return pred, conf, sim


def test_float_numbers_equal_a_hand_computation(data):
    x, y = data
    g = mlp_graph()
    res = evaluate(g, (x, y), batch_size=5, progress=False)
    pred, conf, sim = by_hand(g, x, y)
    s = res.scores["float"]
    np.testing.assert_array_equal(s.predictions, pred)
    np.testing.assert_array_equal(s.confusion, conf)
    assert res.accuracy == pytest.approx(np.mean(pred == y)) and res.n_samples == 23 and res.steps == 12
    for k in range(4):
        assert s.per_class_accuracy[k] == pytest.approx(conf[k, k] / conf[k].sum())
    assert s.spikes_per_sample == pytest.approx(sim.total_spikes / 23)
    prof = get_backend("cpu").profile(g, torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2))), simulation=sim)
    assert s.energy_per_sample_uj == prof.energy_estimate_uj
    assert res.agreement is None and "fixed" not in res.scores


def test_plotting_a_mode_that_was_not_evaluated_says_so(data):
    x, y = data
    res = evaluate(mlp_graph(), (x, y))
    with pytest.raises(TalonError, match="no 'fixed' results in this evaluation"):
        res.plot_confusion(mode="fixed")


def test_fixed_calibrated_once_so_batching_changes_nothing(data):
    x, y = data
    g = mlp_graph()
    cal = np.ascontiguousarray(x[:6].transpose(1, 0, 2))
    a = evaluate(g, (x, y), mode="fixed", batch_size=4, calibration=cal, progress=False)
    b = evaluate(g, (x, y), mode="fixed", batch_size=23, calibration=cal, progress=False)
    pred, conf, _ = by_hand(g, x, y, "fixed", torch.from_numpy(cal))
    np.testing.assert_array_equal(a.scores["fixed"].predictions, pred)
    np.testing.assert_array_equal(b.scores["fixed"].predictions, pred)
    np.testing.assert_array_equal(a.confusion, conf)
    assert a.agreement == pytest.approx(np.mean(pred == by_hand(g, x, y)[0]))
    assert a.scores["float"].accuracy == evaluate(g, (x, y), progress=False).accuracy
    # default calibration: the first batch
    c = evaluate(g, (x, y), mode="fixed", batch_size=6, progress=False)
    np.testing.assert_array_equal(c.scores["fixed"].predictions, pred)
    assert c.calibration == "the first batch"


def test_every_data_form_gives_the_same_result(tmp_path, data):
    x, y = data
    g = mlp_graph()
    ref = evaluate(g, (x, y), progress=False).scores["float"].predictions
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ir_path = tmp_path / "m.t1c"
    from talon import ir

    ir.write(ir_path, g)
    forms = [str(tmp_path / "d.npz"), {"x": x, "y": y}, list(zip(x, y)), (pair for pair in zip(x, y.tolist()))]

    class Dataset:  # torch-style: len and [i]
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return torch.from_numpy(x[i]), torch.tensor(y[i])

    forms.append(Dataset())
    for form in forms:
        np.testing.assert_array_equal(evaluate(str(ir_path), form, progress=False).scores["float"].predictions, ref)


def test_encoders_and_readouts(data):
    x, y = data
    g = mlp_graph()
    static = x[:, 0]
    res = evaluate(g, (static, y), steps=9, encode="rate", seed=2, progress=False)
    seqs = np.stack([io.rate_encode(s, 9, seed=[2, i]) for i, s in enumerate(static)])
    np.testing.assert_array_equal(res.scores["float"].predictions, evaluate(g, (seqs, y), progress=False).scores["float"].predictions)
    lat = evaluate(g, (static, y), steps=9, encode="latency", progress=False)
    seqs = np.stack([io.latency_encode(s, 9) for s in static])
    np.testing.assert_array_equal(lat.scores["float"].predictions, evaluate(g, (seqs, y), progress=False).scores["float"].predictions)
    last = evaluate(g, (x, y), readout="last", progress=False)
    _, _, sim = by_hand(g, x, y)
    np.testing.assert_array_equal(last.scores["float"].predictions, sim.output[-1].argmax(1).numpy())
    custom = evaluate(g, (x, y), readout=lambda out: np.zeros(out.shape[1], int), progress=False)
    assert custom.accuracy == pytest.approx(np.mean(y == 0))
    with pytest.raises(TalonError, match=r"the readout returned classes in \[7, 7\]; the Output has 4 values"):
        evaluate(g, (x, y), readout=lambda out: np.full(out.shape[1], 7), progress=False)
    with pytest.raises(TalonError, match="returned 1 classes for a batch of 23 samples"):
        evaluate(g, (x, y), readout=lambda out: [0], progress=False)
    cut = evaluate(g, (x, y), steps=5, progress=False)
    assert cut.steps == 5


def test_event_folder_matches_snntorch_itself(tmp_path):
    """User flow: event files in tonic's layout, an snnTorch conv SNN exported to TALON; evaluate's classes
    are exactly the snnTorch model's own (spike counts over the same frames)."""
    from talon.bridge import to_ir

    write_gesture_dataset(tmp_path, 2, format="evt2", size=16, duration_us=40_000)
    model = conv_snn(16)
    g = to_ir(model, torch.zeros(1, 2, 16, 16))
    res = evaluate(g, str(tmp_path), steps=8, dt=5000, progress=False)
    ds = io.EventFolder(tmp_path)
    frames = np.stack([io.events_to_frames(ev, (16, 16), dt=5000, steps=8) for ev, _ in ds], axis=1)
    np.testing.assert_array_equal(res.scores["float"].predictions, snntorch_counts(model, frames).argmax(1))
    assert res.labels.tolist() == ds.targets
    # a tonic data set (ToFrame transform) is an indexable of (frames, label): the same result
    import tonic.transforms as T

    tds = io.EventFolder(tmp_path, transform=T.ToFrame(sensor_size=(16, 16, 2), time_window=5000, include_incomplete=True))
    res2 = evaluate(g, tds, steps=8, progress=False)
    assert res2.n_samples == 8 and res2.steps == 8


def test_bad_data_is_refused_with_its_name(tmp_path, data):
    x, y = data
    g = mlp_graph()
    with pytest.raises(TalonError, match=r"sample 3: label 9 does not match the model, whose Output has 4 values"):
        evaluate(g, (x, np.where(np.arange(23) == 3, 9, y)), progress=False)
    np.savez(tmp_path / "bad.npz", x=x, labels=y)
    with pytest.raises(TalonError, match=r"bad\.npz: lacks \['y'\]"):
        evaluate(g, str(tmp_path / "bad.npz"), progress=False)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(TalonError, match=r"junk\.npz: not a readable \.npz"):
        evaluate(g, str(tmp_path / "junk.npz"), progress=False)
    with pytest.raises(TalonError, match=r"sample 0: a single \(8,\) sample.*give encode="):
        evaluate(g, (x[:, 0], y), progress=False)
    with pytest.raises(TalonError, match=r"shape \(12, 3\) fits neither"):
        evaluate(g, (x[:, :, :3], y), progress=False)
    with pytest.raises(TalonError, match="holds 12 steps but steps=20"):
        evaluate(g, (x, y), steps=20, progress=False)
    with pytest.raises(TalonError, match="x has shape .* one per sample"):
        evaluate(g, {"x": x, "y": y[:5]}, progress=False)
    with pytest.raises(TalonError, match="not a whole class number"):
        evaluate(g, [(x[0], 1.5)], progress=False)
    with pytest.raises(TalonError, match="unknown energy preset 'nope'"):
        evaluate(g, (x, y), energy_preset="nope", progress=False)
    with pytest.raises(TalonError, match="not a whole class number.*target_transform"):
        evaluate(g, [(x[0], "cat")], progress=False)
    loader = torch.utils.data.DataLoader(list(zip(torch.from_numpy(x), torch.from_numpy(y))), batch_size=4)
    with pytest.raises(TalonError, match=r"DataLoader with batch_size=4 yields batches; evaluate takes one \(x, y\) sample per item"):
        evaluate(g, loader, progress=False)
    unbatched = torch.utils.data.DataLoader(list(zip(torch.from_numpy(x), torch.from_numpy(y))), batch_size=None)
    np.testing.assert_array_equal(evaluate(g, unbatched, progress=False).scores["float"].predictions, evaluate(g, (x, y), progress=False).scores["float"].predictions)
    with pytest.raises(TalonError, match="mode must be one of float, fixed"):
        evaluate(g, (x, y), mode="int8", progress=False)
    with pytest.raises(TalonError, match="event data need a model whose Input is \\(C, H, W\\)"):
        evaluate(g, [(io.make_events([1], [1], [0], [1]), 0)], steps=4, dt=100, progress=False)


def test_result_renders(data):
    x, y = data
    res = evaluate(mlp_graph(), (x, y), mode="fixed", progress=False)
    d = res.to_dict()
    assert d["accuracy"] == res.accuracy and d["fixed"]["confusion"] == res.confusion.tolist() and d["agreement"] == res.agreement
    html = res._repr_html_()
    assert "confusion matrix" in html and f"{res.accuracy:.2%}" in html
    assert "float/fixed agreement" in res.summary()
    fig = res.plot_confusion("float")
    assert fig.axes[0].get_title().startswith("float: accuracy")


def test_progress_bar_counts_samples(data, capsys):
    x, y = data
    res = evaluate(mlp_graph(), (x, y), batch_size=10, progress=True)
    assert res.n_samples == 23  # the bar ran (on stderr) and left the result unchanged
    np.testing.assert_array_equal(res.scores["float"].predictions, evaluate(mlp_graph(), (x, y), progress=False).scores["float"].predictions)


def test_accuracy_by_step_equals_the_readout_on_the_first_steps(data):
    """Per step t: the accuracy of the readout on steps 0..t, computed by hand from one simulation; the last
    step is the reported accuracy; a custom readout has no curve (and its plot says why)."""
    x, y = data
    g = mlp_graph()
    res = evaluate(g, (x, y), mode="fixed", batch_size=5, progress=False)
    _, _, sim = by_hand(g, x, y)
    out = sim.output.numpy()
    expected = np.array([np.mean(out[: t + 1].sum(0).argmax(1) == y) for t in range(out.shape[0])])
    curve = res.scores["float"].accuracy_by_step
    np.testing.assert_allclose(curve, expected, rtol=0, atol=1e-12)
    assert curve[-1] == pytest.approx(res.scores["float"].accuracy) and res.scores["fixed"].accuracy_by_step[-1] == pytest.approx(res.scores["fixed"].accuracy)
    assert res.to_dict()["float"]["accuracy_by_step"] == curve.tolist()
    last = evaluate(g, (x, y), readout="last", progress=False).scores["float"].accuracy_by_step
    np.testing.assert_allclose(last, [np.mean(out[t].argmax(1) == y) for t in range(out.shape[0])], rtol=0, atol=1e-12)
    fig = res.plot_accuracy_by_step()
    ax = fig.axes[0]
    assert [ln.get_label().split(" ")[0] for ln in ax.get_lines()] == ["float", "fixed"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), 100 * curve)
    assert ax.get_xlabel() == "steps run (timesteps)" and ax.get_ylabel() == "accuracy (%)"
    custom = evaluate(g, (x, y), readout=lambda o: np.zeros(o.shape[1], int), progress=False)
    assert custom.scores["float"].accuracy_by_step is None
    with pytest.raises(TalonError, match="custom readout"):
        custom.plot_accuracy_by_step()
