"""`talon eval MODEL DATA`: text, --json, -o and --plot; bad input is one line naming the file (exit 2)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from eval_models import mlp_graph
from talon import ir
from talon.cli import cli
from talon.eval import evaluate


def run(*args):
    r = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return r.exit_code, r.stdout, r.stderr


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.random((10, 6, 8)).astype(np.float32), rng.integers(0, 4, 10)
    np.savez(tmp_path / "seq.npz", x=x, y=y)
    np.savez(tmp_path / "img.npz", x=x[:, 0], y=y)
    ir.write(tmp_path / "m.t1c", mlp_graph())
    return tmp_path, x, y


def test_eval_json_is_the_library_result(files):
    tmp, x, y = files
    code, out, err = run("eval", tmp / "m.t1c", tmp / "seq.npz", "--mode", "fixed", "--json", "-o", tmp / "r" / "eval.json", "--plot", tmp / "c.png", "--plot-steps", tmp / "s.svg")
    assert code == 0, err
    doc = json.loads(out)
    ref = evaluate(str(tmp / "m.t1c"), str(tmp / "seq.npz"), mode="fixed", progress=False)
    assert doc["schema"] == "talon.eval/1" and doc["mode"] == "fixed" and doc["samples"] == 10 and doc["steps"] == 6
    assert doc["accuracy"] == pytest.approx(ref.accuracy) and doc["fixed"]["confusion"] == ref.confusion.tolist()
    assert doc["agreement"] == pytest.approx(ref.agreement)
    assert json.loads((tmp / "r" / "eval.json").read_text())["accuracy"] == doc["accuracy"]
    assert (tmp / "c.png").stat().st_size > 0 and doc["plot"] == str(tmp / "c.png")
    assert doc["plot_steps"] == str(tmp / "s.svg") and "accuracy (%)" in (tmp / "s.svg").read_text()
    assert doc["fixed"]["accuracy_by_step"] == ref.scores["fixed"].accuracy_by_step.tolist()


def test_eval_text_with_encoding(files):
    tmp, x, y = files
    code, out, err = run("eval", tmp / "m.t1c", tmp / "img.npz", "--encode", "rate", "--steps", "7", "--seed", "3")
    assert code == 0, err
    ref = evaluate(str(tmp / "m.t1c"), str(tmp / "img.npz"), steps=7, encode="rate", seed=3, progress=False)
    assert f"float accuracy {ref.accuracy:7.2%}" in out and "confusion matrix (rows: label, columns: predicted)" in out


def test_eval_errors_are_one_line(files):
    tmp, x, y = files
    code, out, err = run("eval", tmp / "m.t1c", tmp / "img.npz")
    assert code == 2 and err.count("\n") == 1 and "img.npz, sample 0: a single (8,) sample" in err and "--encode" in err
    np.savez(tmp / "wrong.npz", x=x, y=y + 10)
    code, out, err = run("eval", tmp / "m.t1c", tmp / "wrong.npz")
    assert code == 2 and "wrong.npz, sample 0: label" in err and "does not match the model" in err
    code, out, err = run("eval", tmp / "m.t1c", tmp / "seq.npz", "-o", tmp / "out.txt")
    assert code == 2 and "--output" in err and ".json" in err


def test_eval_calibrate_option_is_the_library_calibration(files):
    tmp, x, y = files
    cal = np.ascontiguousarray(x[:3].transpose(1, 0, 2))
    np.save(tmp / "cal.npy", cal)
    code, out, err = run("eval", tmp / "m.t1c", tmp / "seq.npz", "--mode", "fixed", "--calibrate", tmp / "cal.npy", "--batch-size", "4", "--json")
    assert code == 0, err
    ref = evaluate(str(tmp / "m.t1c"), str(tmp / "seq.npz"), mode="fixed", calibration=cal, progress=False)
    assert json.loads(out)["fixed"]["confusion"] == ref.confusion.tolist()
    assert json.loads(out)["calibration"] == "the given calibration inputs"
