"""The command line says when an input is priced as spikes: declared (analyze, profile, energy) or fed a
binary stimulus file (simulate, energy); a non-binary file for a spiking input is refused."""

from __future__ import annotations

import json

import numpy as np

from cli_graphs import build_snn
from talon import ir


def _marked(tmp_path):
    path = tmp_path / "spiking.t1c"
    ir.write(path, ir.with_spike_inputs(build_snn()))
    return str(path)


def test_analyze_and_profile_say_the_input_carries_spikes(run_cli, snn_file, tmp_path):
    spiking = _marked(tmp_path)
    code, out, _ = run_cli("analyze", spiking)
    assert code == 0 and "input 'inp' carries spikes" in out
    code, out, _ = run_cli("analyze", snn_file)
    assert code == 0 and "carries spikes" not in out
    code, out, _ = run_cli("analyze", spiking, "--json")
    assert json.loads(out)["spike_inputs"] == ["inp"]
    code, out, _ = run_cli("profile", spiking, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["spike_inputs"] == ["inp"] and doc["spike_driven_layers"] == ["fc1", "fc2"]
    assert doc["ops"]["spike_ops"] == doc["ops"]["macs"] == 8 * 16 + 16 * 4
    code, out, _ = run_cli("profile", snn_file, "--json")
    assert json.loads(out)["spike_driven_layers"] == ["fc2"]


def test_binary_stimulus_file_is_priced_as_spikes_and_said_so(run_cli, snn_file, tmp_path):
    x = (np.random.default_rng(0).random((6, 2, 8)) < 0.3).astype(np.float32)  # (T, B, *S), 0 or 1
    np.save(tmp_path / "spikes.npy", x)
    code, out, _ = run_cli("energy", snn_file, "--input", tmp_path / "spikes.npy")
    assert code == 0 and "input 'inp' priced as spikes (binary stimulus (every value 0 or 1))" in out
    code, out, _ = run_cli("energy", snn_file, "--input", tmp_path / "spikes.npy", "--json")
    doc = json.loads(out)
    fc1 = next(layer for layer in doc["layers"] if layer["name"] == "fc1")
    assert doc["spike_inputs"] == {"inp": "binary stimulus (every value 0 or 1)"}
    assert fc1["event_driven"] and fc1["macs"] == 0 and fc1["input_events"] * 2 == int(x.sum()) and fc1["accumulates"] * 2 == int(x.sum()) * 16
    code, out, _ = run_cli("simulate", snn_file, "--input", tmp_path / "spikes.npy", "--json")
    assert code == 0 and json.loads(out)["spike_inputs"] == {"inp": "binary stimulus (every value 0 or 1)"}
    code, out, _ = run_cli("simulate", snn_file, "--input", tmp_path / "spikes.npy")
    assert "input 'inp' priced as spikes" in out
    # a real-valued file keeps the first layer dense
    np.save(tmp_path / "real.npy", x * 0.5 + 0.25)
    code, out, _ = run_cli("energy", snn_file, "--input", tmp_path / "real.npy", "--json")
    doc = json.loads(out)
    assert doc["spike_inputs"] == {} and not next(la for la in doc["layers"] if la["name"] == "fc1")["event_driven"]


def test_non_binary_file_for_a_spiking_input_is_refused(run_cli, tmp_path):
    spiking = _marked(tmp_path)
    np.save(tmp_path / "real.npy", np.full((4, 1, 8), 0.5, np.float32))
    code, out, err = run_cli("energy", spiking, "--input", tmp_path / "real.npy")
    assert code == 2 and out == "" and "Input 'inp' declares spikes" in err and "--rate-encode" in err
    np.save(tmp_path / "rates.npy", np.full((1, 8), 0.5, np.float32))  # firing probabilities, rate-coded
    code, out, _ = run_cli("energy", spiking, "--input", tmp_path / "rates.npy", "--rate-encode", "--steps", "4", "--json")
    assert code == 0 and json.loads(out)["spike_inputs"] == {"inp": "declared (Input.spikes)"}
