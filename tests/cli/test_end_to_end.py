"""A shortened run of examples/end_to_end.py (the README's first command), in the test process
(tests/example_script.py: the script runs whole, without a second interpreter's imports)."""

import json

from example_script import run_example


def test_end_to_end_short(tmp_path, monkeypatch, capsys):
    out = tmp_path / "report"
    monkeypatch.chdir(tmp_path)
    code = run_example("end_to_end.py", ["--epochs", "2", "--steps", "8", "--hidden", "64", "--test-samples", "90", "--out", str(out)], monkeypatch)
    text = capsys.readouterr().out
    assert code == 0, text[-3000:]
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
