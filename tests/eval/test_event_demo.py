"""A shortened run of examples/event_gestures.py: event files -> snnTorch conv SNN -> talon eval."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_event_gestures_demo_short(tmp_path):
    out = tmp_path / "demo"
    args = ["--train-per-class", "6", "--test-per-class", "2", "--epochs", "1", "--steps", "8", "--dt", "12500", "--out", str(out)]
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "event_gestures.py"), *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "fixed accuracy" in r.stdout and "float/fixed agreement" in r.stdout
    doc = json.loads((out / "eval.json").read_text())
    assert doc["schema"] == "talon.eval/1" and doc["mode"] == "fixed" and doc["samples"] == 8 and doc["steps"] == 8
    assert sum(map(sum, doc["fixed"]["confusion"])) == 8 and 0.0 <= doc["agreement"] <= 1.0
    assert len(list((out / "test").rglob("*.raw"))) == 8 and (out / "confusion.png").stat().st_size > 0
