"""analyze / profile / lint / convert, and the error policy."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from talon import ir

BIN = Path(sys.executable).parent


def _json(out):
    return json.loads(out)


def test_analyze(run_cli, snn_file):
    code, out, _ = run_cli("analyze", snn_file, "--json")
    doc = _json(out)
    assert code == 0 and doc["schema"] == "talon.analyze/1"
    t = doc["totals"]
    assert t["params"] == 16 * 8 + 16 + 4 * 16 + 4 + 4 * 2
    # the LIFs' four constants, equal over their neurons (one value each): what torch's parameters() leaves out
    assert t["neuron_params"] == 4 * 2
    assert t["macs"] == 16 * 8 + 4 * 16 and t["neurons"] == 20 and t["depth"] == 5
    assert [layer["name"] for layer in doc["layers"]][:2] == ["inp", "fc1"]
    code, out, _ = run_cli("analyze", snn_file)
    assert code == 0 and "fc1" in out and "total:" in out and "8 of them neuron constants" in out


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
    # the library's advice names Python transforms; the command line names its own commands
    assert "('talon convert quantize')" in out and "(quantize_weights)" not in out
    assert "(quantize_weights)" in " ".join(doc["recommendations"])  # the JSON keeps the library's text


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


# What `talon analyze` / `talon lint` must leave unimported: models and plots (torch, matplotlib), what
# no static pass needs (scipy, pandas), installed-version scans (importlib.metadata, via talon.sdk.stamp),
# and the sdk modules of other commands (talon.sdk resolves its names lazily); docs/performance.md.
_NOT_FOR_STATIC_COMMANDS = ("torch", "snntorch", "matplotlib", "scipy", "pandas", "importlib.metadata",
                            "talon.bridge", "talon.mapping", "talon.viz", "talon.backend",
                            "talon.sdk.stamp", "talon.sdk.compare", "talon.sdk.query")
_MODULES_AFTER = """
import json, sys
from talon.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _modules_after(*args):
    res = subprocess.run([sys.executable, "-c", _MODULES_AFTER, *args], capture_output=True, text=True, timeout=120)
    doc = json.loads(res.stderr.strip().splitlines()[-1])
    assert doc["code"] == 0, res.stderr
    return set(doc["modules"])


def _within(modules, prefixes):
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("command", ["analyze", "lint"])
def test_static_commands_leave_heavy_modules_unimported(snn_file, command):
    """A fresh interpreter that ran `talon analyze` / `talon lint` holds none of the heavy modules; with
    --json it does not even import rich (nothing is laid out)."""
    text = _modules_after(command, snn_file)
    assert f"talon.sdk.{command}" in text and "h5py" in text and "rich.console" in text  # the run was real
    assert not _within(text, _NOT_FOR_STATIC_COMMANDS)
    as_json = _modules_after(command, snn_file, "--json")
    assert not _within(as_json, (*_NOT_FOR_STATIC_COMMANDS, "rich"))


def test_profile_budget_sizes_and_exit_status(run_cli, snn_file):
    """--budget takes sizes (1e6, 1KB, 64KiB, 1MB); the result says whether the model fits and exits 1 when not."""
    total = _json(run_cli("profile", snn_file, "--json")[1])["memory"]["total"]
    assert _json(run_cli("profile", snn_file, "--json")[1])["budget"] is None
    for text, expected in (("1e6", 10**6), ("1KB", 1000), ("64KiB", 65536), ("1MB", 10**6), ("2 KiB", 2048), ("1500", 1500)):
        code, out, err = run_cli("profile", snn_file, "--budget", text, "--json")
        b = _json(out)["budget"]
        assert b["bytes"] == expected and b["total"] == total, text
        assert b["fits"] is (total <= expected) and code == (0 if b["fits"] else 1), (text, err)
    code, out, _ = run_cli("profile", snn_file, "--budget", "1KB", "--json")  # total is 1,376 bytes
    b = _json(out)["budget"]
    assert code == 1 and not b["fits"] and b["over_by"] == total - 1000 and b["fits_with_quantized_weights"] == [8, 4]
    code, out, _ = run_cli("profile", snn_file, "--budget", "1KB")
    assert code == 1 and "does not fit the budget" in out and f"by {total - 1000:,}" in out
    code, out, _ = run_cli("profile", snn_file, "--budget", "1MB")
    assert code == 0 and "fits the budget" in out and "does not fit" not in out
    for bad in ("0", "1.5B", "12XB", "-5", "lots"):
        code, out, err = run_cli("profile", snn_file, "--budget", bad)
        assert code == 2 and out == "" and err.count("\n") == 1 and "--budget" in err, bad


def test_parse_size():
    import pytest

    from talon.cli._common import parse_size

    assert parse_size("1e6") == 1_000_000 and parse_size("1.5KB") == 1500 and parse_size("1GiB") == 2**30 and parse_size("3kib") == 3072
    with pytest.raises(ValueError):
        parse_size("0.5")


def test_lint_warnings_as_errors_alone_fails_on_warnings(run_cli, snn_file, foldable_file):
    """--warnings-as-errors implies --strict: warnings make the exit status 1 without --strict too."""
    assert run_cli("lint", foldable_file)[0] == 0  # warnings only, no flag: 0
    code, out, _ = run_cli("lint", foldable_file, "--warnings-as-errors")
    assert code == 1 and "warning" in out
    assert run_cli("lint", foldable_file, "--warnings-as-errors", "--ignore", "DEAD_END_NODE", "--ignore", "FOLDABLE_BATCHNORM",
                   "--ignore", "DROPOUT_IN_INFERENCE", "--ignore", "NEURON_NEVER_FIRES")[0] == 0
    code, out, _ = run_cli("lint", snn_file, "--json", "--warnings-as-errors")
    assert code == (1 if _json(out)["counts"]["warning"] else 0)


def test_lint_ignore_unknown_code_lists_valid_codes(run_cli, foldable_file):
    from talon.sdk import CODES

    code, out, err = run_cli("lint", foldable_file, "--ignore", "FOO")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "FOO" in err and all(c in err for c in CODES)
    code, _, err = run_cli("lint", foldable_file, "--ignore", "dead_end_node")
    assert code == 2 and "did you mean DEAD_END_NODE?" in err


def test_warnings_are_one_line(run_cli, snn_file, monkeypatch):
    """A Python warning raised while a command runs is one line on stderr: `talon: warning: <message>`,
    with no source path or source line (the CLI's policy, docs/cli.md)."""
    import warnings

    import talon.ir
    from talon.ir.format import TalonFormatWarning

    real_read = talon.ir.read

    def read_with_warning(path, *a, **kw):
        warnings.warn("snn.t1c: node 'fc1' (Affine) has unknown field 'bogus',\n  ignored", TalonFormatWarning, stacklevel=2)
        return real_read(path, *a, **kw)

    monkeypatch.setattr(talon.ir, "read", read_with_warning)
    for _ in range(2):  # every run shows it, not only the first in a process
        code, out, err = run_cli("validate", snn_file)
        assert code == 0 and "valid" in out
        assert err == "talon: warning: snn.t1c: node 'fc1' (Affine) has unknown field 'bogus', ignored\n"
    code, _, err = run_cli("-v", "validate", snn_file)
    assert err.count("\n") == 1 and err.startswith("talon: warning:") and "TalonFormatWarning" in err


EXTRA_FIELD = Path(__file__).resolve().parents[2].parent / "shared" / "compat" / "corrupt" / "extra_field.t1c"


def test_format_warning_of_a_real_file_is_one_line(run_cli):
    import pytest

    if not EXTRA_FIELD.exists():
        pytest.skip(f"sample file not found: {EXTRA_FIELD}")
    code, out, err = run_cli("validate", EXTRA_FIELD)
    assert code == 0 and err.count("\n") == 1 and err.startswith("talon: warning: ") and "bogus" in err
    assert "_common.py" not in err and "return read" not in err


def test_error_messages_use_cli_options(run_cli, foldable_file, snn_file, tmp_path):
    """Library advice worded for Python ("mode='float'", "sdk fold_batchnorm", "n_steps=") is said
    as the command line's options."""
    code, out, err = run_cli("simulate", foldable_file, "--mode", "fixed")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "--mode float" in err and "'talon convert fold-batchnorm'" in err and "mode='float'" not in err and "sdk fold_batchnorm" not in err
    code, _, err = run_cli("compile", foldable_file, "-o", tmp_path / "hw.json")
    assert code == 2 and "'talon simulate --mode float'" in err
    import numpy as np

    np.save(tmp_path / "x5.npy", np.zeros((5, 1, 8), np.float32))
    code, _, err = run_cli("simulate", snn_file, "--input", tmp_path / "x5.npy", "--steps", "8")
    assert code == 2 and "holds 5 steps but --steps is 8" in err and "n_steps" not in err


def test_cli_wording():
    from talon.cli._common import cli_wording

    msg = "input 'x' holds 5 steps but n_steps=8"
    assert cli_wording(msg, "energy") == "input 'x' holds 5 steps but --steps is 8 (give --steps 5 or fewer)"
    assert cli_wording("simulate with mode='float'", "energy") == "simulate with --mode float"
    assert cli_wording("so pass dt= in that unit (e.g. dt=1e-3 for", "convert format") == "so give --dt in that unit (e.g. --dt 1e-3 for"
    assert cli_wording("nothing to change", "simulate") == "nothing to change"


def test_names_with_emoji_codes_are_shown_as_they_are(run_cli, tmp_path):
    """rich would turn ':smile:' in a node name into an emoji; the name must be printed unchanged."""
    g = ir.Graph()
    g.add_node("in:smile:", ir.Input(shape=(2,)))
    g.add_node("out", ir.Output())
    g.chain("in:smile:", "out")
    path = tmp_path / "emoji.t1c"
    ir.write(path, g)
    for command in ("analyze", "lint"):
        code, out, _ = run_cli(command, str(path))
        assert code == 0 and "in:smile:" in out and "\N{SMILING FACE WITH OPEN MOUTH AND SMILING EYES}" not in out
