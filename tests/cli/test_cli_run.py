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
    energy = json.loads((out_dir / "energy.json").read_text())
    assert energy["noc"]["exact"] is True  # each neuron's own spikes routed, as `talon energy` does


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
    # a .nir that does not say its timestep: outside convert, the advice is to convert it with --dt
    import nir

    ng = nir.read(str(tmp_path / "m.nir"))
    ng.metadata = {}
    nir.write(str(tmp_path / "plain.nir"), ng)
    code, _, err = run_cli("analyze", tmp_path / "plain.nir")
    assert code == 0 and "talon: warning:" in err and "talon convert MODEL.nir -o MODEL.t1c --dt DT" in err and "pass dt=" not in err
    # writing for a reader's time unit: the file says dt = 1e-4 and its time constants are scaled to it
    code, _, err = run_cli("convert", tmp_path / "m.t1c", "-o", tmp_path / "m4.nir", "--dt", "1e-4")
    assert code == 0, err
    assert float(nir.read(str(tmp_path / "m4.nir")).metadata["dt"]) == 1e-4 and ir.read(tmp_path / "m4.nir").dt == 1e-4
    code, _, err = run_cli("convert", tmp_path / "m.t1c", "-o", tmp_path / "m2.t1c", "--dt", "1e-4")
    assert code == 2 and "--dt applies to .nir files" in err


# -- backends and what they can do ---------------------------------------------------------------------------

def test_simulate_and_energy_refuse_a_backend_that_cannot(run_cli, snn_file):
    """The fpga backend compiles but neither simulates nor profiles: refused up front, naming the
    backend and the command that can, in one line (not a TypeError)."""
    code, out, err = run_cli("simulate", snn_file, "--backend", "fpga")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "backend 'fpga' cannot simulate" in err and "talon verify" in err and "TypeError" not in err
    code, out, err = run_cli("energy", snn_file, "--backend", "fpga", "--json")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "backend 'fpga' cannot profile" in err and "talon compile" in err and "--target fpga" in err
    code, _, err = run_cli("simulate", snn_file, "--backend", "no-such-backend")
    assert code == 2 and "no-such-backend" in err and "cpu" in err and "fpga" in err


@pytest.fixture
def fixed_only_backend(monkeypatch):
    """A backend registered for one test: simulates and profiles through the cpu backend, fixed point only,
    with the base class's signatures (mode and the rest by keyword); records every call."""
    from talon.backend import registry
    from talon.backend.base import Backend, Capabilities

    calls = []

    class FixedOnly(Backend):
        name = "fixed-only"
        capabilities = Capabilities(simulate=True, profile=True, modes=("fixed",))

        def simulate(self, graph, inputs=None, n_steps=None, **kw):
            calls.append(("simulate", kw))
            return registry.get_backend("cpu").simulate(graph, inputs, n_steps, **kw)

        def profile(self, graph, inputs=None, n_steps=None, **kw):
            calls.append(("profile", kw))
            return registry.get_backend("cpu").profile(graph, inputs, n_steps, **kw)

    monkeypatch.setitem(registry._REGISTRY, "fixed-only", FixedOnly)
    monkeypatch.delitem(registry._INSTANCES, "fixed-only", raising=False)
    yield calls
    registry._INSTANCES.pop("fixed-only", None)


def test_simulate_and_energy_call_any_backend_by_keyword(run_cli, snn_file, fixed_only_backend):
    code, out, err = run_cli("simulate", snn_file, "--backend", "fixed-only", "--mode", "fixed", "--steps", "4", "--json")
    assert code == 0, err
    assert _json(out)["mode"] == "fixed" and fixed_only_backend[0] == ("simulate", {"mode": "fixed", "record": None})
    code, out, err = run_cli("energy", snn_file, "--backend", "fixed-only", "--mode", "fixed", "--steps", "4", "--json")
    assert code == 0, err
    assert _json(out)["mode"] == "fixed" and fixed_only_backend[-1] == ("profile", {"energy_preset": "45nm_cmos", "mode": "fixed"})
    n = len(fixed_only_backend)
    code, _, err = run_cli("simulate", snn_file, "--backend", "fixed-only")  # --mode float by default
    assert code == 2 and "backend 'fixed-only' has no --mode float" in err and len(fixed_only_backend) == n


def test_verify_steps_default_is_100_in_help(run_cli):
    code, out, _ = run_cli("verify", "--help")
    assert code == 0 and "else 100" in " ".join(out.split()) and "else 10)" not in " ".join(out.split())


@pytest.mark.skipif(__import__("shutil").which("g++") is None, reason="g++ not found: the FPGA C simulation cannot run")
def test_verify_runs_100_steps_by_default(run_cli, snn_file):
    code, out, _ = run_cli("verify", snn_file, "--json")
    doc = _json(out)
    assert code == 0 and doc["ok"] and doc["n_steps"] == 100


# -- output files ----------------------------------------------------------------------------------------------

@pytest.fixture
def no_simulation(monkeypatch):
    """Records every simulation the cpu backend is asked for (the test expects none)."""
    from talon.backend.cpu import CPUBackend

    calls = []
    real = CPUBackend.simulate

    def simulate(self, *a, **kw):
        calls.append(a)
        return real(self, *a, **kw)

    monkeypatch.setattr(CPUBackend, "simulate", simulate)
    yield calls
    assert calls == [], "simulated although the command should have stopped first"


def test_save_outputs_reports_the_file_it_writes(run_cli, snn_file, tmp_path):
    code, out, _ = run_cli("simulate", snn_file, "--steps", "3", "--save-outputs", tmp_path / "o3.txt", "--json")
    assert code == 0 and _json(out)["saved_outputs"] == f"{tmp_path / 'o3.txt.npz'}"
    assert np.load(tmp_path / "o3.txt.npz")["out"].shape == (3, 1, 4) and not (tmp_path / "o3.txt").exists()
    code, out, _ = run_cli("simulate", snn_file, "--steps", "3", "--save-outputs", tmp_path / "new" / "deeper" / "o.npz")
    assert code == 0 and f"saved outputs: {tmp_path / 'new' / 'deeper' / 'o.npz'}" in out
    assert np.load(tmp_path / "new" / "deeper" / "o.npz")["out"].shape == (3, 1, 4)


def test_output_paths_are_checked_before_simulating(run_cli, snn_file, tmp_path, no_simulation):
    (tmp_path / "afile").write_text("x")
    code, out, err = run_cli("simulate", snn_file, "--save-outputs", tmp_path / "afile" / "o.npz")
    assert code == 2 and out == "" and err.count("\n") == 1 and "--save-outputs" in err
    code, _, err = run_cli("simulate", snn_file, "--plot", tmp_path / "raster.txt")
    assert code == 2 and "--plot" in err and ".png" in err
    code, _, err = run_cli("simulate", snn_file, "--rates-plot", tmp_path / "afile" / "r.png")
    assert code == 2 and "--rates-plot" in err
    code, _, err = run_cli("energy", snn_file, "--plot", tmp_path / "e.csv")
    assert code == 2 and "--plot" in err


def test_stimulus_that_is_not_an_array_file(run_cli, snn_file, tmp_path):
    (tmp_path / "text.t1c").write_text("just some text\n")
    code, out, err = run_cli("simulate", snn_file, "--input", tmp_path / "text.t1c")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "not a .npy/.npz array file" in err and "text.t1c" in err and "pickle" not in err
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = run_cli("simulate", snn_file, "--input", tmp_path / "obj.npy")
    assert code == 2 and "obj.npy" in err and "allow_pickle" not in err


# -- map counts -------------------------------------------------------------------------------------------------

def test_map_says_what_it_counts(run_cli, snn_file):
    """The mapping places the 8 input elements beside the 20 neurons: the output says 28 = 8 + 20."""
    neurons = _json(run_cli("analyze", snn_file, "--json")[1])["totals"]["neurons"]
    code, out, _ = run_cli("map", snn_file, "--json")
    doc = _json(out)
    assert code == 0 and doc["placed"] == {"total": 28, "inputs": 8, "neurons": neurons} and doc["metrics"]["neurons"] == 28
    code, out, _ = run_cli("map", snn_file)
    assert code == 0 and "mapping of 28 placed elements (8 input elements + 20 neurons)" in out
    assert "mapping of 28 neurons" not in out


def test_map_weight_memory_takes_units(run_cli, snn_file):
    code, out, _ = run_cli("map", snn_file, "--weight-memory", "64KiB", "--json")
    assert code == 0 and _json(out)["hardware"]["weight_memory_bytes_per_core"] == 65536
    code, _, err = run_cli("map", snn_file, "--weight-memory", "lots")
    assert code == 2 and "not a size" in err


# -- pipeline: checks first, failures marked ---------------------------------------------------------------------

def _stimulus(tmp_path, batch=6, labels=6):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "x.npy", (rng.random((10, batch, 8)) < 0.5).astype(np.float32))
    np.save(tmp_path / "y.npy", rng.integers(0, 4, labels))
    return tmp_path / "x.npy", tmp_path / "y.npy"


def test_pipeline_checks_inputs_before_the_first_stage(run_cli, snn_file, foldable_file, tmp_path, monkeypatch):
    import talon.sdk

    linted = []
    real_lint = talon.sdk.lint_graph
    monkeypatch.setattr(talon.sdk, "lint_graph", lambda *a, **kw: linted.append(a) or real_lint(*a, **kw))
    x, y = _stimulus(tmp_path, batch=6, labels=5)
    out_dir = tmp_path / "report"
    code, out, err = run_cli("pipeline", snn_file, "-o", out_dir, "--input", x, "--labels", y)
    assert code == 2 and err.count("\n") == 1 and "--labels" in err and "5 labels" in err and "6 sample" in err
    assert not out_dir.exists()
    code, _, err = run_cli("pipeline", snn_file, "-o", out_dir, "--input", x, "--steps", "12")
    assert code == 2 and "--steps" in err and not out_dir.exists()
    code, _, err = run_cli("pipeline", snn_file, "-o", out_dir, "--preset", "no-such-preset")
    assert code == 2 and "no-such-preset" in err and not out_dir.exists()
    code, _, err = run_cli("pipeline", snn_file, "-o", out_dir, "--backend", "no-such-backend")
    assert code == 2 and "no-such-backend" in err and not out_dir.exists()
    code, _, err = run_cli("pipeline", snn_file, "-o", out_dir, "--part", "zu9eg")
    assert code == 2 and "--part" in err and not out_dir.exists()
    code, _, err = run_cli("pipeline", snn_file, "-o", out_dir, "--backend", "fpga", "--part", "no-such-part")
    assert code == 2 and "no-such-part" in err and not out_dir.exists()
    code, _, err = run_cli("pipeline", snn_file, "-o", out_dir, "--labels", tmp_path / "missing.npy")
    assert code == 2 and "missing.npy" in err and not out_dir.exists()
    np.save(tmp_path / "bad.npy", np.zeros((2, 5), np.float32))  # the Input takes 8 values
    code, _, err = run_cli("pipeline", snn_file, "-o", out_dir, "--input", tmp_path / "bad.npy")
    assert code == 2 and "(8,)" in err and not out_dir.exists()
    unfoldable = tmp_path / "bn_first.t1c"  # a batch norm on the input: nothing to fold it into, no fixed-point rule
    g = ir.read(foldable_file)
    ir.write(unfoldable, ir.Graph({"inp": g.nodes["inp"], "bn": g.nodes["bn"].replace(num_features=6, weight=np.ones(6), bias=np.zeros(6),
                                                                                          running_mean=np.zeros(6), running_var=np.ones(6)),
                                   "fc": g.nodes["fc"], "lif": g.nodes["lif"], "out": g.nodes["out"]},
                                  [("inp", "bn"), ("bn", "fc"), ("fc", "lif"), ("lif", "out")]))  # fmt: skip
    code, _, err = run_cli("pipeline", unfoldable, "-o", out_dir)
    assert code == 2 and "fold-batchnorm" in err and not out_dir.exists()
    assert linted == []  # no stage ran
    code, _, err = run_cli("pipeline", snn_file, "-o", out_dir, "--no-plots")
    assert code == 0 and len(linted) == 1  # the spy sees the lint stage when it does run


def test_pipeline_folds_a_batch_norm_and_reports_agreement_and_calibration(run_cli, foldable_file, tmp_path):
    """Fixed point has no batch-norm rule: the convert stage folds it (issue 15) and says so; the stage lines
    give the per-layer fixed/float agreement, and --calibrate is what the formats were calibrated on."""
    rng = np.random.default_rng(3)
    np.save(tmp_path / "x.npy", rng.random((8, 2, 6)).astype(np.float32))
    np.save(tmp_path / "cal.npy", rng.random((8, 5, 6)).astype(np.float32))
    out_dir = tmp_path / "report"
    code, out, err = run_cli("pipeline", foldable_file, "-o", out_dir, "--input", tmp_path / "x.npy", "--calibrate", tmp_path / "cal.npy",
                             "--no-plots", "--json")  # fmt: skip
    assert code == 0, err
    doc = _json(out)
    assert doc["folded_batchnorms"] == {"bn": "fc"} and "convert: folded 'bn' into 'fc'" in err
    assert "bn" not in ir.read(doc["files"]["hardware_graph"]).nodes
    assert set(doc["simulation"]["fixed_float_agreement"]) == {"lif"} and "fixed/float spike agreement per layer: lif " in err
    assert doc["simulation"]["calibration"] == "float run, 8 steps: inp: sequence (8, 5, 6)"


def test_energy_prices_a_hardware_graph_in_fixed_point_by_default(run_cli, snn_file, tmp_path):
    from talon.sdk import convert_to_spiking

    hw = tmp_path / "hw.t1c"
    ir.write(hw, convert_to_spiking(ir.read(snn_file), 8))
    code, out, _ = run_cli("energy", hw, "--steps", "5", "--json")
    doc = _json(out)
    assert code == 0 and doc["mode"] == "fixed" and "SpikingAffine" in doc["mode_reason"]
    code, out, _ = run_cli("energy", hw, "--steps", "5")
    assert code == 0 and out.startswith("mode: fixed (") and "profile (fixed" in out
    code, out, _ = run_cli("energy", hw, "--steps", "5", "--mode", "float", "--json")
    assert _json(out)["mode"] == "float"
    code, out, _ = run_cli("energy", snn_file, "--steps", "5", "--json")  # a float graph: float, and it says why
    assert _json(out)["mode"] == "float" and "not quantized" in _json(out)["mode_reason"]
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).random((5, 3, 8)).astype(np.float32))
    code, out, _ = run_cli("energy", hw, "--steps", "5", "--calibrate", tmp_path / "cal.npy", "--json")
    assert code == 0 and _json(out)["mode"] == "fixed"
    code, _, err = run_cli("energy", snn_file, "--calibrate", tmp_path / "cal.npy")
    assert code == 2 and "--calibrate" in err


def test_simulate_calibrates_on_the_given_stimulus(run_cli, snn_file, tmp_path):
    rng = np.random.default_rng(4)
    np.save(tmp_path / "x.npy", rng.random((6, 2, 8)).astype(np.float32))
    np.save(tmp_path / "cal.npy", (rng.random((6, 7, 8)) * 3).astype(np.float32))
    code, out, err = run_cli("simulate", snn_file, "--mode", "fixed", "--input", tmp_path / "x.npy", "--calibrate", tmp_path / "cal.npy", "--json")
    assert code == 0, err
    doc = _json(out)
    assert doc["calibration"] == "float run, 6 steps: inp: sequence (6, 7, 8)" and all(layer["agreement"] is not None for layer in doc["layers"])
    code, out, _ = run_cli("simulate", snn_file, "--mode", "fixed", "--input", tmp_path / "x.npy", "--calibrate", tmp_path / "cal.npy")
    assert code == 0 and "fixed-point formats calibrated on: " in out and "agreement" in out
    code, _, err = run_cli("simulate", snn_file, "--calibrate", tmp_path / "cal.npy")
    assert code == 2 and "--mode fixed" in err


def test_run_pipeline_checks_labels_before_the_first_stage(snn_file, tmp_path):
    from talon.errors import TalonUsageError
    from talon.pipeline import run_pipeline

    x = (np.random.default_rng(0).random((5, 3, 8)) < 0.5).astype(np.float32)
    with pytest.raises(TalonUsageError, match="2 labels for a stimulus of 3 sample"):
        run_pipeline(snn_file, tmp_path / "r", inputs=x, labels=np.array([0, 1]))
    assert not (tmp_path / "r").exists()


def test_pipeline_failure_marks_the_report_failed(run_cli, snn_file, tmp_path, monkeypatch):
    """A stage that fails leaves summary.json with status "failed", the stage and the error; a
    summary of an earlier complete run in the same folder does not survive."""
    from talon.backend.cpu import CPUBackend
    from talon.errors import BackendError

    out_dir = tmp_path / "report"
    code, out, err = run_cli("pipeline", snn_file, "-o", out_dir, "--no-plots", "--json")
    assert code == 0 and _json(out)["status"] == "complete"
    assert json.loads((out_dir / "summary.json").read_text())["status"] == "complete"

    def broken(self, *a, **kw):
        raise BackendError("the simulator broke")

    monkeypatch.setattr(CPUBackend, "simulate", broken)
    code, out, err = run_cli("pipeline", snn_file, "-o", out_dir, "--no-plots")
    assert code == 2 and err.strip() == "talon: error: the simulator broke"
    assert "simulate: failed" in out and "summary.json marks the report as failed" in out
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["failed_stage"] == "simulate" and "the simulator broke" in summary["error"]
    assert "simulate_float" not in summary["files"] and "mapping" in summary["files"] and "energy" not in summary


def test_pipeline_with_the_fpga_backend(run_cli, snn_file, tmp_path):
    """--backend fpga: the compile stage writes the HLS project into the report folder; the simulations and
    the energy profile run on cpu (fpga cannot simulate), as the summary records."""
    x, y = _stimulus(tmp_path)
    out_dir = tmp_path / "report"
    code, out, err = run_cli("pipeline", snn_file, "-o", out_dir, "--backend", "fpga", "--part", "zu9eg", "--input", x, "--labels", y, "--no-plots", "--json")
    assert code == 0, err
    doc = _json(out)
    assert doc["status"] == "complete" and doc["backends"] == {"compile": "fpga", "simulate": "cpu", "profile": "cpu"}
    project = out_dir / "fpga_project"
    assert doc["files"]["project"] == str(project) and doc["compile"]["project"] == str(project)
    assert (project / "build_prj.tcl").exists() and (out_dir / "hardware.json").exists()
    assert json.loads((project / "talon_project.json").read_text())["part"]["part"].startswith("xczu9eg")
    assert doc["compile"]["estimates"]["label"] == "estimate" and set(doc["accuracy"]) == {"float", "fixed"}


def test_stimulus_errors_name_the_option_and_file(run_cli, snn_file, tmp_path):
    bad = np.zeros((2, 8), np.float32)
    bad[1, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    np.save(tmp_path / "big.npy", np.full((2, 8), 5.0, np.float32))
    code, _, err = run_cli("compile", snn_file, "-o", tmp_path / "hw.json", "--calibrate", tmp_path / "nan.npy")
    assert code == 2 and "--calibrate" in err and "nan.npy" in err and "1 non-finite" in err
    code, _, err = run_cli("simulate", snn_file, "--input", tmp_path / "big.npy", "--rate-encode")
    assert code == 2 and "--input" in err and "big.npy" in err and "--rate-encode" in err and "[5, 5]" in err


def test_output_paths_under_a_file_and_absurd_budgets_are_refused(run_cli, snn_file, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli("simulate", snn_file, "--plot", tmp_path / "afile" / "x.png")
    assert code == 2 and "is a file, not a folder" in err
    code, _, err = run_cli("profile", snn_file, "--budget", "1e100")
    assert code == 2 and "1 EiB" in err


class _RecordingStatus:
    def __init__(self, log: list) -> None:
        self.log = log

    def start(self) -> None:
        self.log.append("start")

    def update(self, text: str) -> None:
        self.log.append(text)

    def stop(self) -> None:
        self.log.append("stop")


def _terminal_console(log: list):
    """A console that says it is a terminal and records the status spinner's steps."""
    import io

    from rich.console import Console

    class Terminal(Console):
        def status(self, *args, **kwargs):
            log.append(("status", args[0]))
            return _RecordingStatus(log)

    return lambda stderr=False: Terminal(file=io.StringIO(), force_terminal=True, width=140)


def test_map_shows_its_steps_on_a_terminal_only(run_cli, snn_file, monkeypatch):
    import talon.cli.map_cmds as map_cmds

    log: list = []
    monkeypatch.setattr(map_cmds, "console", _terminal_console(log))
    code, _, _ = run_cli("map", snn_file, "--hw-preset", "small", "--algorithm", "greedy")
    assert code == 0
    assert log[:2] == [("status", "mapping"), "start"] and log[-1] == "stop"
    assert "mapping: greedy: partitioning" in log and "mapping: greedy: routing" in log
    assert any(str(x).startswith("mapping: greedy: placing") for x in log)
    log.clear()
    code, out, _ = run_cli("map", snn_file, "--hw-preset", "small", "--algorithm", "greedy", "--json")
    assert code == 0 and log == [] and out.lstrip().startswith("{")  # --json: no spinner, stdout is the document
    log.clear()
    monkeypatch.undo()
    code, out, _ = run_cli("map", snn_file, "--hw-preset", "small", "--algorithm", "greedy")  # not a terminal
    assert code == 0 and "mapping: greedy" not in out
