"""analyze / profile / lint / convert, and the error policy."""

import json
import os
import subprocess
import sys
from pathlib import Path

from talon import ir

BIN = Path(sys.executable).parent


def _json(out):
    return json.loads(out)


def test_analyze(run_cli, snn_file):
    code, out, _ = run_cli("analyze", snn_file, "--json")
    doc = _json(out)
    assert code == 0 and doc["schema"] == "talon.analyze/1"
    t = doc["totals"]
    assert t["params"] == 16 * 8 + 16 + 4 * 16 + 4 + 4 * (16 + 4)
    assert t["macs"] == 16 * 8 + 4 * 16 and t["neurons"] == 20 and t["depth"] == 5
    assert [layer["name"] for layer in doc["layers"]][:2] == ["inp", "fc1"]
    code, out, _ = run_cli("analyze", snn_file)
    assert code == 0 and "fc1" in out and "total:" in out


def test_profile(run_cli, snn_file):
    code, out, _ = run_cli("profile", snn_file, "--json", "--budget", "100")
    doc = _json(out)
    assert doc["schema"] == "talon.profile/1"
    m = doc["memory"]
    assert m["total"] == m["weights"] + m["activations"] + m["state"]
    assert set(m["quantized_weights"]) == {"8", "4"}
    assert any("budget" in r for r in doc["recommendations"])
    code, out, _ = run_cli("profile", snn_file)
    assert code == 0 and "weight memory" in out


def test_lint_exit_codes(run_cli, snn_file, bad_file, foldable_file):
    code, out, _ = run_cli("lint", bad_file, "--json")
    doc = _json(out)
    assert code == 0 and not doc["valid"] and doc["counts"]["error"] >= 1
    assert any(i["code"] == "SHAPE_MISMATCH" and i["node"] == "fc" for i in doc["issues"])
    assert run_cli("lint", bad_file, "--strict")[0] == 1
    assert run_cli("lint", snn_file, "--strict")[0] == 0
    code, out, _ = run_cli("lint", foldable_file, "--json")
    codes = {i["code"] for i in _json(out)["issues"]}
    assert {"FOLDABLE_BATCHNORM", "DEAD_END_NODE"} <= codes
    assert run_cli("lint", foldable_file, "--strict")[0] == 0
    assert run_cli("lint", foldable_file, "--strict", "--warnings-as-errors")[0] == 1
    code, out, _ = run_cli("lint", foldable_file, "--ignore", "DEAD_END_NODE", "--json")
    assert "DEAD_END_NODE" not in {i["code"] for i in _json(out)["issues"]}
    code, _, err = run_cli("lint", foldable_file, "--ignore", "NOT_A_CODE")
    assert code == 2 and "NOT_A_CODE" in err


def test_convert_transforms(run_cli, foldable_file, snn_file, tmp_path):
    out1 = tmp_path / "folded.t1c"
    code, out, _ = run_cli("convert", "fold-batchnorm", foldable_file, "-o", out1, "--json")
    doc = _json(out)
    assert code == 0 and doc["schema"] == "talon.convert/1" and doc["nodes_removed"] == ["bn"]
    assert "bn" not in ir.read(out1).nodes
    out2 = tmp_path / "pruned.t1c"
    assert run_cli("convert", "prune", out1, "-o", out2)[0] == 0
    assert "dead" not in ir.read(out2).nodes
    out3 = tmp_path / "nodrop.t1c"
    assert run_cli("convert", "remove-dropout", out2, "-o", out3)[0] == 0
    assert [n.type_name for n in ir.read(out3).nodes.values()] == ["Input", "Affine", "LIF", "Output"]

    out4 = tmp_path / "spiking.t1c"
    code, out, _ = run_cli("convert", "spiking", snn_file, "-o", out4, "--quantize", "--json")
    doc = _json(out)
    assert doc["nodes_modified"]["fc1"]["type_after"] == "SpikingAffine" and doc["report"]["bits"] == 8
    g = ir.read(out4)
    assert g.nodes["fc1"].type_name == "SpikingAffine" and g.nodes["fc1"].weight_bits == 8
    out5 = tmp_path / "q4.t1c"
    code, out, _ = run_cli("convert", "quantize", snn_file, "-o", out5, "--bits", "4", "--per-channel", "--json")
    rep = _json(out)["report"]
    assert rep["bits"] == 4 and rep["per_channel"] and len(rep["tensors"]) == 2


def test_errors_are_one_line_exit_2(run_cli, tmp_path, snn_file):
    code, out, err = run_cli("analyze", tmp_path / "missing.t1c")
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("talon: error:") and "missing.t1c" in err
    junk = tmp_path / "junk.t1c"
    junk.write_bytes(b"not an hdf5 file at all")
    code, out, err = run_cli("lint", junk)
    assert code == 2 and err.count("\n") == 1 and "junk.t1c" in err and "Traceback" not in err
    code, out, err = run_cli("-v", "analyze", junk)
    assert code == 2 and "Traceback" in err
    code, out, err = run_cli("analyze", junk, "-v")
    assert code == 2 and "Traceback" in err
    code, _, err = run_cli("analyze")
    assert code == 2 and err.count("\n") == 1 and "Missing argument" in err
    code, _, err = run_cli("no-such-command")
    assert code == 2 and "no-such-command" in err


def _run_script(args, **kw):
    exe = BIN / "talon"
    cmd = [str(exe), *args] if exe.exists() else [sys.executable, "-c", "import sys; from talon.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)


def test_analyze_and_lint_never_import_torch(snn_file):
    """A cold `talon analyze` / `talon lint` must not import torch (or snntorch, or matplotlib)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    for command in ("analyze", "lint"):
        res = _run_script([command, snn_file], env=env)
        assert res.returncode == 0, res.stderr
        imported = {line.split("|")[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")}
        assert "talon.sdk" in imported  # the import log is real
        heavy = {m for m in imported if m.split(".")[0] in ("torch", "snntorch", "matplotlib")}
        assert not heavy, f"talon {command} imported {sorted(heavy)[:5]}"


def test_analyze_starts_fast(snn_file):
    """CPU time, not wall time: robust to a loaded machine. ~0.25 s on a 2-core box."""
    import resource

    _run_script(["analyze", snn_file])  # warm the OS file cache
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = _run_script(["analyze", snn_file, "--json"])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert res.returncode == 0
    assert cpu < 1.0, f"talon analyze used {cpu:.2f} s of CPU"
