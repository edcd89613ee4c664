"""talon.eval's and talon.io's refusals name the bad sample plainly: numbers as Python writes them (2.5,
never np.float64(2.5)), non-finite inputs by sample and element, text inputs, (N, 1) labels, --dt on arrays."""

import re

import numpy as np
import pytest
from click.testing import CliRunner

from lif_mlp import mlp_graph
from talon import io, ir
from talon._text import plain
from talon.cli import cli
from talon.errors import TalonError
from talon.eval import evaluate

G = mlp_graph(hidden=12)
RNG = np.random.default_rng(0)
X = RNG.random((6, 8)).astype(np.float32)
Y = RNG.integers(0, 4, 6)


def refused(data, **kw) -> str:
    with pytest.raises(TalonError) as info:
        evaluate(G, data, progress=False, **{"steps": 3, "encode": "rate", **kw})
    text = str(info.value)
    assert not re.search(r"np\.[a-z0-9_]+\(|array\(", text), text
    return text


def test_plain_writes_numpy_values_as_python_does():
    assert plain(np.float64(2.5)) == "2.5" and plain(np.int64(7)) == "7" and plain((np.int32(64), np.int64(48))) == "(64, 48)"
    assert plain(np.array([1, 2])) == "[1, 2]" and plain("a") == "'a'" and plain(np.bool_(True)) == "True" and plain(None) == "None"


def test_a_fractional_label_is_written_plainly():
    assert "sample 2: label 2.5 is not a whole class number" in refused((X, np.array([0, 1, 2.5, 1, 0, 1])))
    assert "label 2.5 is not" in refused([(X[0], np.float64(2.5))])


@pytest.mark.parametrize("value, name", [(np.nan, "NaN"), (np.inf, "+inf"), (-np.inf, "-inf")])
@pytest.mark.parametrize("form", ["samples", "sequences"])
def test_non_finite_inputs_name_the_sample(value, name, form):
    x = X.copy() if form == "samples" else np.repeat(X[:, None], 3, axis=1)
    x[4, ..., 5] = value
    text = refused((x, Y), **({} if form == "samples" else {"encode": None}))
    assert f"x contains {name} at sample 4" in text and "lie in" not in text


def test_text_inputs_are_refused_clearly():
    assert "sample 0: x holds text (<U32) values; inputs must be numbers" in refused((X.astype(str), Y))
    assert "x holds Python object" in refused({"x": X.astype(object), "y": Y})


@pytest.mark.parametrize("form", ["pair", "dict", "npz"])
def test_labels_as_a_column_say_to_pass_n_labels(form, tmp_path):
    col = Y[:, None]
    data = {"pair": (X, col), "dict": {"x": X, "y": col}, "npz": str(tmp_path / "d.npz")}[form]
    np.savez(tmp_path / "d.npz", x=X, y=col)
    assert re.search(r"y has shape \(6, 1\), a column; pass \(N,\) labels, one per sample: y\.reshape\(-1\)", refused(data))


def test_dt_on_arrays_is_refused(tmp_path):
    assert "dt (--dt, microseconds per step) frames event data, and this sample is an array of shape (8,)" in refused((X, Y), dt=100.0)
    ir.write(str(tmp_path / "m.t1c"), G)
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    r = CliRunner().invoke(cli, ["eval", str(tmp_path / "m.t1c"), str(tmp_path / "d.npz"), "--steps", "3", "--encode", "rate", "--dt", "100"])
    assert r.exit_code != 0 and "frames event data" in r.stderr and "Traceback" not in r.stderr


def test_numpy_arguments_are_written_plainly():
    assert "batch_size must be a positive integer, got 2.5" in refused((X, Y), batch_size=np.float64(2.5))
    assert "steps must be a positive integer, got 2.5" in refused((X, Y), steps=np.float64(2.5))
    ev = io.make_events(x=[1, 2], y=[1, 1], t=[0, 5], p=[0, 1])
    with pytest.raises(TalonError, match=re.escape("got (64.5, 48)")):
        io.events_to_frames(ev, (np.float64(64.5), np.int64(48)), dt=10.0, steps=2)


@pytest.mark.parametrize("field, value, words", [("x", np.nan, "x contains NaN at event 1"), ("t", np.inf, "t contains inf at event 1"),
                                                 ("y", 2.5, "y holds the fractional value 2.5 at event 1; coordinates are whole pixels")])
def test_events_with_non_finite_or_fractional_fields_are_refused(field, value, words):
    arr = np.zeros(3, dtype=[("x", np.float64), ("y", np.float64), ("t", np.float64), ("p", np.uint8)])
    arr["t"] = [0, 1, 2]
    arr[field][1] = value
    with pytest.raises(TalonError, match=re.escape(words)):
        io.as_events(arr)
