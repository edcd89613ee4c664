"""A shortened run of examples/event_gestures.py: event files -> snnTorch conv SNN -> talon eval; in the
test process (tests/example_script.py: the script runs whole, without a second interpreter's imports)."""

import json

from example_script import run_example


def test_event_gestures_demo_short(tmp_path, monkeypatch, capsys):
    out = tmp_path / "demo"
    args = ["--train-per-class", "6", "--test-per-class", "2", "--epochs", "1", "--steps", "8", "--dt", "12500", "--out", str(out)]
    code = run_example("event_gestures.py", args, monkeypatch)
    stdout = capsys.readouterr().out
    assert code == 0, stdout[-3000:]
    assert "fixed accuracy" in stdout and "float/fixed agreement" in stdout
    doc = json.loads((out / "eval.json").read_text())
    assert doc["schema"] == "talon.eval/1" and doc["mode"] == "fixed" and doc["samples"] == 8 and doc["steps"] == 8
    assert sum(map(sum, doc["fixed"]["confusion"])) == 8 and 0.0 <= doc["agreement"] <= 1.0
    assert len(list((out / "test").rglob("*.raw"))) == 8 and (out / "confusion.png").stat().st_size > 0
