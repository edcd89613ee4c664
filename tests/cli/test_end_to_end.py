"""A shortened run of examples/end_to_end.py (the README's first command), in a fresh interpreter as a
user runs it: the main job must not lean on anything the test process has already imported or set."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_end_to_end_short(tmp_path):
    out = tmp_path / "report"
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "end_to_end.py"), "--epochs", "2", "--steps", "8", "--hidden", "64", "--test-samples", "90", "--out", str(out)],
        capture_output=True, text=True, timeout=170, cwd=str(tmp_path),
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    text = res.stdout
    assert "accuracy on 90 test images: float" in text and "fixed point" in text
    assert f"report: {out}" in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"]["float"] > 0.4 and summary["accuracy"]["fixed"] > 0.4  # two short epochs learn (~73%)
    assert abs(summary["accuracy"]["float"] - summary["accuracy"]["fixed"]) < 0.15
    for name in ("digits_snn.t1c", "digits_snn_int8.t1c", "hardware.json", "model.html", "lint.json", "analyze.json", "mapping.json",
                 "energy.json", "raster.png", "firing_rates.png", "energy.png", "memory.png", "cores.png"):
        assert (out / name).exists(), name
    assert summary["energy"]["energy_per_sample_uj"] > 0 and summary["mapping"]["cores_used"] >= 1
    # the demo declares its Bernoulli input: the first layer is priced per input spike
    assert summary["energy"]["spike_inputs"] == {"input": "declared (Input.spikes)"}
    fc1 = next(layer for layer in json.loads((out / "energy.json").read_text())["layers"] if layer["name"] == "fc1")
    assert fc1["event_driven"] and fc1["macs"] == 0 and fc1["accumulates"] > 0
    assert "input 'input' priced as spikes" in text
