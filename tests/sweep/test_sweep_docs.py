"""docs/sweep.md's code block runs; the command line it shows gives the same points."""

import json
import re
from pathlib import Path

from click.testing import CliRunner

from talon import ir
from talon.cli import cli

DOC = Path(__file__).resolve().parents[2] / "docs" / "sweep.md"


def test_sweep_doc_code_runs_and_the_cli_agrees(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    ns: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), ns)
    res = ns["res"]
    assert [p["status"] for p in res.points].count("does-not-fit") == 4 and len(res.points) == 8
    ir.write("model.t1c", ns["g"])
    command = re.search(r"^talon sweep (.*)$", text, re.M).group(1).split()
    command[command.index("--out") + 1] = "cli_out"
    # every option the Python block passes, the command line passes with the same value
    for key, value in re.findall(r"\b(steps|encode|batch_size|shard_size|seed)=\"?(\w+)\"?", blocks[0]):
        flag = "--" + key.replace("_", "-")
        assert flag in command and command[command.index(flag) + 1] == value, (flag, value)
    r = CliRunner().invoke(cli, ["sweep", *command, "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "talon.sweep/1" and doc["pareto"] == [p["id"] for p in res.pareto]
    # the file's graph is the same model: every number is the same, to the last bit
    for a, b in zip(doc["points"], res.points, strict=True):
        assert (a["id"], a["status"], a["reason"], a["mapping"]) == (b["id"], b["status"], b["reason"], b["mapping"])
        for k, v in b["metrics"].items():
            assert a["metrics"][k] == v, (k, a["metrics"][k], v)
    r = CliRunner().invoke(cli, ["sweep", "model.t1c", "--data", "data.npz", "--grid", "weight_bits=1", "--out", "x"])
    assert r.exit_code == 2 and r.stderr.strip().splitlines()[-1].startswith("talon: error:") and "weight_bits='1'" in r.stderr
    assert not (tmp_path / "x").exists()
