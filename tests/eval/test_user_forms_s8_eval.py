"""`talon eval` on data sets laid out the way tonic lays them out (trust audit, s8): the reference is
tonic's own reader and framing, and snnTorch running the model."""

import json

import numpy as np
import torch
from click.testing import CliRunner

from atis_files import atis_bytes
from eval_models import conv_snn, snntorch_counts
from talon import ir
from talon.cli import cli
from talon.eval import evaluate


def test_talon_eval_on_an_nmnist_folder_as_tonic_extracts_it(tmp_path):
    import tonic
    import tonic.transforms as T
    from talon.bridge import to_ir

    rng = np.random.default_rng(0)
    root = tmp_path / "NMNIST" / "Train"  # tonic.datasets.NMNIST: Train/<digit>/<id>.bin, 34x34 sensor
    for digit in range(4):
        (root / str(digit)).mkdir(parents=True)
        for k in range(2):
            n = 6000
            t = np.concatenate([[0], np.sort(rng.integers(0, 100_000, n - 2)), [99_999]])  # spans the 5 bins of 20 ms
            ev = list(zip(rng.integers(0, 34, n).tolist(), rng.integers(0, 34, n).tolist(), t.tolist(), rng.integers(0, 2, n).tolist()))
            (root / str(digit) / f"{1000 * digit + k:05d}.bin").write_bytes(atis_bytes(ev))
    model = conv_snn(34)
    with torch.no_grad():  # trained-like weights: the output layer spikes on these frames
        model.conv.weight.mul_(2)
        model.fc.weight.mul_(10)
    g = to_ir(model, torch.zeros(1, 2, 34, 34))
    ir.write(tmp_path / "m.t1c", g)
    res = evaluate(g, str(root), steps=5, dt=20_000, progress=False)
    # the reference: tonic reads every file and frames it (ToFrame, 20 ms windows), snnTorch runs the model
    to_frame = T.ToFrame(sensor_size=(34, 34, 2), time_window=20_000, include_incomplete=True)
    files = sorted(root.glob("*/*.bin"))
    frames = np.stack([to_frame(tonic.io.read_mnist_file(str(f), dtype=tonic.io.events_struct)) for f in files], axis=1).astype(np.float32)
    assert frames.shape == (5, 8, 2, 34, 34)
    counts = snntorch_counts(model, frames)
    assert counts.sum() > 0  # the model spikes: the comparison is not of empty outputs
    np.testing.assert_array_equal(res.scores["float"].predictions, counts.argmax(1))
    assert res.labels.tolist() == [int(f.parent.name) for f in files]
    r = CliRunner().invoke(cli, ["eval", str(tmp_path / "m.t1c"), str(root), "--steps", "5", "--dt", "20000", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["samples"] == 8 and doc["accuracy"] == res.accuracy
