"""CLI commands over talon.ir and talon.sdk: output, --json schemas and exit codes."""

import json

import numpy as np

from talon import ir


def _json(out):
    doc = json.loads(out)
    assert doc["schema"].startswith("talon.") and doc["schema"].endswith("/1")
    return doc


def test_help_lists_every_command(run_cli):
    code, out, _ = run_cli("--help")
    assert code == 0
    for cmd in ("info", "primitives", "analyze", "profile", "lint", "validate", "hash", "stamp", "inspect", "node", "trace", "compare", "convert"):
        assert cmd in out


def test_version(run_cli):
    import talon

    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"talon {talon.__version__}"  # the one source of TALON's version


def test_info_and_stamps_ask_one_version_lookup(run_cli, monkeypatch):
    """`talon info` and stamp_graph read package versions through talon._versions.package_version."""
    import talon._versions
    from talon.sdk import stamp_graph

    monkeypatch.setattr(talon._versions, "package_version", lambda dist: f"{dist}-v9")
    code, out, _ = run_cli("info", "--json")
    packages = _json(out)["talon"]["packages"]
    assert code == 0 and packages["numpy"] == "numpy-v9" and packages["t1c-talon"] == "t1c-talon-v9"
    stamp = stamp_graph(ir.Graph({"x": ir.Input(shape=(2,)), "y": ir.Output()}, [("x", "y")]), git=False)
    versions = stamp.metadata["talon_stamp"]["versions"]
    assert versions["numpy"] == "numpy-v9" and versions["torch"] == "torch-v9"


def test_info_environment_and_model(run_cli, snn_file):
    code, out, _ = run_cli("info")
    assert code == 0 and "TALON" in out
    code, out, _ = run_cli("info", snn_file, "--json")
    doc = _json(out)
    assert doc["schema"] == "talon.info/1"
    assert doc["talon"]["packages"]["numpy"]
    m = doc["model"]
    assert m["num_nodes"] == 6 and m["inputs"] == {"inp": [8]} and len(m["fingerprint"]) == 64
    assert m["type_counts"] == {"Input": 1, "Affine": 2, "LIF": 2, "Output": 1}


def test_primitives(run_cli):
    code, out, _ = run_cli("primitives", "--json")
    doc = _json(out)
    names = [p["name"] for p in doc["primitives"]]
    assert "LIF" in names and "SpikingAffine" in names
    code, out, _ = run_cli("primitives", "LIF", "--json")
    (lif,) = _json(out)["primitives"]
    fields = {f["name"]: f for f in lif["fields"]}
    assert fields["tau"]["required"] and fields["reset_mode"]["choices"]
    assert lif["stateful"] and lif["spiking"]
    assert lif["nir"] == {"export": True, "refused": None, "imports_from": ["LIF", "NIRGraph"]}
    code, out, _ = run_cli("primitives", "LIF")
    assert code == 0 and "reset_mode" in out and "NIR: exported; read from NIR LIF, NIRGraph" in out
    code, out, _ = run_cli("primitives", "MaxPool2d")
    assert code == 0 and "NIR: refused (NIR has no max pooling" in out
    code, _, err = run_cli("primitives", "LIFF")
    assert code == 2 and "did you mean LIF" in err


def test_validate(run_cli, snn_file, bad_file):
    code, out, _ = run_cli("validate", snn_file)
    assert code == 0 and "valid" in out
    code, out, _ = run_cli("validate", bad_file, "--json")
    doc = _json(out)
    assert code == 1 and doc["valid"] is False and "fc" in doc["error"]


def test_hash_and_verify(run_cli, snn_file, tmp_path):
    code, out, _ = run_cli("hash", snn_file, "--json")
    doc = _json(out)
    fp = doc["fingerprint"]
    code, out, _ = run_cli("hash", snn_file)
    assert code == 0 and out.split()[0] == fp
    assert run_cli("hash", snn_file, "--verify", fp)[0] == 0
    code, out, _ = run_cli("hash", snn_file, "--verify", "0" * 64)
    assert code == 1 and "MISMATCH" in out
    code, _, err = run_cli("hash", snn_file, "--check-stamp")
    assert code == 2 and "no stamp" in err


def test_stamp_then_check(run_cli, snn_file, tmp_path):
    out_path = tmp_path / "stamped.t1c"
    code, out, _ = run_cli("stamp", snn_file, "-o", out_path, "--notes", "demo", "--meta", "epochs=3", "--no-git", "--json")
    doc = _json(out)
    assert code == 0 and doc["stamp"]["notes"] == "demo" and doc["stamp"]["metadata"] == {"epochs": 3}
    assert run_cli("hash", out_path, "--check-stamp")[0] == 0
    code, out, _ = run_cli("info", out_path, "--json")
    assert _json(out)["model"]["stamp"]["notes"] == "demo"


def test_inspect_and_pattern(run_cli, snn_file):
    code, out, _ = run_cli("inspect", snn_file, "--json")
    doc = _json(out)
    assert [n["name"] for n in doc["nodes"]] == ["inp", "fc1", "lif1", "fc2", "lif2", "out"]
    fc1 = doc["nodes"][1]
    assert fc1["fields"]["weight"] == {"dtype": "float32", "shape": [16, 8]} and fc1["output_shapes"] == [[16]]
    code, out, _ = run_cli("inspect", snn_file, "--pattern", "Affine->LIF", "--json")
    assert _json(out)["matches"] == [["fc1", "lif1"], ["fc2", "lif2"]]
    code, out, _ = run_cli("inspect", snn_file)
    assert code == 0 and "lif1" in out
    code, _, err = run_cli("inspect", snn_file, "--pattern", "Affine->Nope")
    assert code == 2 and "Nope" in err


def test_node(run_cli, snn_file):
    code, out, _ = run_cli("node", snn_file, "fc1", "--json")
    doc = _json(out)
    assert doc["type"] == "Affine" and doc["arrays"]["weight"]["shape"] == [16, 8]
    assert doc["cost"]["macs"] == 128 and doc["inputs"] == ["inp"]
    code, out, _ = run_cli("node", snn_file, "fc1", "--values", "bias")
    assert code == 0 and "bias =" in out
    code, _, err = run_cli("node", snn_file, "nope")
    assert code == 2 and "nope" in err and err.count("\n") == 1


def test_trace(run_cli, snn_file):
    code, out, _ = run_cli("trace", snn_file, "inp", "lif2", "--json")
    doc = _json(out)
    assert doc["found"] and doc["path"] == ["inp", "fc1", "lif1", "fc2", "lif2"]
    code, out, _ = run_cli("trace", snn_file, "lif2", "inp")
    assert code == 1 and "no path" in out


def test_compare(run_cli, snn_file, tmp_path):
    assert run_cli("compare", snn_file, snn_file)[0] == 0
    g = ir.read(snn_file)
    g.nodes["fc1"] = g.nodes["fc1"].replace(weight=g.nodes["fc1"].weight + np.float32(1e-3))
    other = tmp_path / "other.t1c"
    ir.write(other, g)
    code, out, _ = run_cli("compare", snn_file, other, "--json")
    doc = _json(out)
    assert code == 1 and not doc["identical"] and list(doc["nodes_modified"]) == ["fc1"]
    assert run_cli("compare", snn_file, other, "--tolerance", "0.01")[0] == 0
