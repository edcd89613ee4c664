"""Commands that run models or map them: simulate, energy, compile, map, pipeline, export-html, visualize."""

import json

import numpy as np
import pytest

from talon import ir


def _json(out):
    return json.loads(out)


def test_simulate(run_cli, snn_file, tmp_path):
    code, out, _ = run_cli("simulate", snn_file, "--steps", "12", "--json", "--plot", tmp_path / "raster.png", "--rates-plot", tmp_path / "rates.png", "--save-outputs", tmp_path / "o.npz")
    doc = _json(out)
    assert code == 0 and doc["schema"] == "talon.simulate/1" and doc["steps"] == 12 and doc["mode"] == "float"
    assert [layer["name"] for layer in doc["layers"]] == ["lif1", "lif2"] and doc["outputs_valid"]
    assert doc["outputs"]["out"]["shape"] == [12, 1, 4]
    assert (tmp_path / "raster.png").stat().st_size > 2000 and (tmp_path / "rates.png").exists()
    assert np.load(tmp_path / "o.npz")["out"].shape == (12, 1, 4)
    code, out, _ = run_cli("simulate", snn_file, "--mode", "fixed", "--json")
    doc = _json(out)
    assert all(0.0 <= layer["agreement"] <= 1.0 for layer in doc["layers"])
    code, out, _ = run_cli("simulate", snn_file)
    assert code == 0 and "lif1" in out and "spikes" in out


def test_simulate_inputs(run_cli, snn_file, tmp_path):
    x = np.random.default_rng(0).random((7, 3, 8)).astype(np.float32)  # (T, B, *S)
    np.save(tmp_path / "x.npy", x)
    code, out, _ = run_cli("simulate", snn_file, "--input", tmp_path / "x.npy", "--json")
    doc = _json(out)
    assert code == 0 and doc["steps"] == 7 and doc["batch_size"] == 3 and len(doc["outputs"]["out"]["argmax"]) == 3
    np.save(tmp_path / "p.npy", x[0])
    code, out, _ = run_cli("simulate", snn_file, "--input", tmp_path / "p.npy", "--rate-encode", "--steps", "5", "--json")
    assert code == 0 and _json(out)["steps"] == 5
    np.save(tmp_path / "bad.npy", np.zeros((2, 5)))
    code, _, err = run_cli("simulate", snn_file, "--input", tmp_path / "bad.npy")
    assert code == 2 and err.count("\n") == 1


def test_energy(run_cli, snn_file, tmp_path):
    code, out, _ = run_cli("energy", snn_file, "--steps", "10", "--json", "--plot", tmp_path / "e.png")
    doc = _json(out)
    assert code == 0 and doc["schema"] == "talon.energy/1" and doc["timesteps"] == 10
    e = doc["energy_uj"]
    assert e["total"] == pytest.approx(e["mac"] + e["spike"] + e["neuron"] + e["elementwise"] + e["sram"], rel=1e-9)
    assert [layer["name"] for layer in doc["layers"]][:2] == ["inp", "fc1"] and doc["latency_us"] > 0
    assert (tmp_path / "e.png").exists()
    code, _, err = run_cli("energy", snn_file, "--preset", "no-such-preset")
    assert code == 2 and "no-such-preset" in err


def test_compile(run_cli, snn_file, tmp_path):
    from talon.backend import HardwareDescriptor

    code, out, _ = run_cli("compile", snn_file, "-o", tmp_path / "hw.json", "--json")
    doc = _json(out)
    assert code == 0 and doc["format"] == "json" and [layer["name"] for layer in doc["layers"]] == list(ir.read(snn_file).nodes)
    code, out, _ = run_cli("compile", snn_file, "-o", tmp_path / "hw.thd")
    assert code == 0 and HardwareDescriptor.load(tmp_path / "hw.thd") == HardwareDescriptor.load(tmp_path / "hw.json")


@pytest.mark.skipif(__import__("shutil").which("g++") is None, reason="g++ not found: the FPGA C simulation cannot run")
def test_compile_and_verify_fpga(run_cli, snn_file, tmp_path):
    code, out, _ = run_cli("compile", snn_file, "--target", "fpga", "-o", tmp_path / "prj", "--json")
    doc = _json(out)
    assert code == 0 and doc["schema"] == "talon.compile/1" and doc["target"] == "fpga"
    assert (tmp_path / "prj" / "build_prj.tcl").exists() and doc["estimates"]["label"] == "estimate"
    code, out, _ = run_cli("verify", snn_file, "--steps", "100", "--json")
    doc = _json(out)
    assert code == 0 and doc["ok"] and doc["n_steps"] == 100 and set(doc["mismatches"].values()) == {0}


def test_map(run_cli, snn_file, tmp_path):
    code, out, _ = run_cli("map", snn_file, "--mesh", "2x2", "--neurons-per-core", "8", "--json", "-o", tmp_path / "mapped.t1c", "--plot", tmp_path / "cores.png")
    doc = _json(out)
    assert code == 0 and doc["schema"] == "talon.map/1" and doc["hardware"]["mesh"] == [2, 2]
    assert sum(c["neurons"] for c in doc["cores"]) == doc["metrics"]["neurons"]
    assert all(c["neurons"] <= 8 for c in doc["cores"])
    assert "talon_mapping" in ir.read(tmp_path / "mapped.t1c").metadata and (tmp_path / "cores.png").exists()
    from talon.mapping import MappingResult

    stored = MappingResult.from_graph(ir.read(tmp_path / "mapped.t1c"))  # per-core use: the result's own
    assert [c["neuron_utilisation"] for c in doc["cores"]] == stored.neuron_utilisation.tolist()
    assert [c["memory_utilisation"] for c in doc["cores"]] == stored.memory_utilisation.tolist()
    code, out, _ = run_cli("map", snn_file, "--hw-preset", "small")
    assert code == 0 and "cores" in out
    code, _, err = run_cli("map", snn_file, "--mesh", "1x1", "--neurons-per-core", "4")
    assert code == 2 and "does not fit" in err and err.count("\n") == 1
    code, _, err = run_cli("map", snn_file, "--mesh", "four")
    assert code == 2 and "ROWSxCOLS" in err


def test_pipeline(run_cli, snn_file, tmp_path):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", (rng.random((10, 6, 8)) < 0.5).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 4, 6))
    out_dir = tmp_path / "report"
    code, out, err = run_cli("pipeline", snn_file, "-o", out_dir, "--input", tmp_path / "x.npy", "--labels", tmp_path / "y.npy", "--neurons-per-core", "8", "--json")
    assert code == 0, err
    doc = _json(out)
    assert doc["schema"] == "talon.pipeline/1" and set(doc["accuracy"]) == {"float", "fixed"}
    for key in ("graph", "hardware_graph", "descriptor", "lint", "analyze", "mapping", "simulate_float", "simulate_fixed", "energy", "html", "summary",
                "memory_plot", "cores_plot", "raster_plot", "rates_plot", "energy_plot"):
        assert (tmp_path / "report" / doc["files"][key].split("/")[-1]).exists(), key
    assert json.loads((out_dir / "summary.json").read_text())["accuracy"] == doc["accuracy"]
    hw = ir.read(doc["files"]["hardware_graph"])
    assert hw.nodes["fc1"].type_name == "SpikingAffine" and "talon_mapping" in hw.metadata
    assert "lint:" in err and "profile:" in err  # with --json the stage lines go to stderr


def test_pipeline_command_wraps_the_library_call(run_cli, snn_file, tmp_path, monkeypatch):
    """`talon pipeline` parses options and hands over to talon.pipeline.run_pipeline; the library flow
    lives outside the CLI package (examples/end_to_end.py imports it from there)."""
    import importlib.util

    import talon.pipeline

    seen = {}

    def fake_run_pipeline(model, out_dir, **kw):
        seen.update(model=model, out_dir=out_dir, **kw)
        return {"model": kw["name"], "out_dir": str(out_dir)}

    monkeypatch.setattr(talon.pipeline, "run_pipeline", fake_run_pipeline)
    code, out, err = run_cli("pipeline", snn_file, "-o", tmp_path / "r", "--bits", "6", "--mesh", "2x2", "--no-plots", "--json")
    assert code == 0, err
    assert _json(out)["model"] == "snn" and isinstance(seen["model"], ir.Graph)
    assert seen["weight_bits"] == 6 and seen["hardware"].mesh == (2, 2) and seen["plots"] is False and seen["strict"] is True
    assert importlib.util.find_spec("talon.cli.pipeline") is None


def test_pipeline_library_does_not_import_the_cli():
    import subprocess
    import sys

    code = "import sys, talon.pipeline; bad = [m for m in ('talon.cli', 'click', 'torch') if m in sys.modules]; assert not bad, bad"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr


def test_export_html_and_visualize(run_cli, snn_file, tmp_path):
    code, out, _ = run_cli("export-html", snn_file, "-o", tmp_path / "m.html", "--map", "--neurons-per-core", "8", "--json")
    doc = _json(out)
    assert code == 0 and doc["mapping"] and doc["nodes"] == 6
    page = (tmp_path / "m.html").read_text()
    assert "talon-data" in page and '"mapping":{' in page
    code, out, _ = run_cli("visualize", snn_file, "--no-open", "-o", tmp_path / "v.html", "--json")
    assert code == 0 and _json(out)["opened"] is False and (tmp_path / "v.html").exists()


def test_convert_between_t1c_and_nir(run_cli, tmp_path):
    pytest.importorskip("nir")
    g = ir.Graph()
    g.add_node("input", ir.Input(shape=(3,)))
    g.add_node("fc", ir.Affine(weight=np.arange(6, dtype=np.float32).reshape(2, 3), bias=np.ones(2, np.float32)))
    tau = np.full(2, 4.0)
    g.add_node("lif", ir.LIF(tau=tau, r=tau, v_leak=np.zeros(2), v_threshold=np.ones(2)))  # NIR's reset: mode "zero"
    g.add_node("output", ir.Output())
    g.chain("input", "fc", "lif", "output")
    ir.write(tmp_path / "m.t1c", g)
    code, out, _ = run_cli("convert", tmp_path / "m.t1c", "-o", tmp_path / "m.nir")
    assert code == 0 and "converted" in out
    code, out, _ = run_cli("convert", tmp_path / "m.nir", "-o", tmp_path / "back.t1c", "--json")
    assert code == 0 and _json(out)["schema"] == "talon.convert.format/1"
    assert ir.read(tmp_path / "back.t1c") == g
