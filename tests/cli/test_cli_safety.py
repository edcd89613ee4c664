"""The command line with untrusted models and paths: outputs never replace a device, FIFO or the command's
own input; inputs must be regular files; numbers have bounds; names cannot drive the terminal; `talon
stamp` runs no program named by the repository it looks at."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest

from talon import ir

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX FIFOs and symlinks")


@posix_only
def test_export_html_over_a_device_link_is_refused(run_cli, snn_file, tmp_path):
    link = tmp_path / "out.html"
    link.symlink_to("/dev/null")
    code, _, err = run_cli("export-html", snn_file, "-o", link)
    assert code == 2 and "character device" in err and "not a regular file" in err
    assert os.readlink(link) == "/dev/null"


def test_export_html_over_its_own_model_is_refused(run_cli, snn_file):
    before = open(snn_file, "rb").read()
    code, _, err = run_cli("export-html", snn_file, "-o", snn_file)
    assert code == 2 and "input file being read" in err
    assert open(snn_file, "rb").read() == before


def test_outputs_over_the_input_are_refused_for_every_writer(run_cli, snn_file, tmp_path):
    link = tmp_path / "alias.t1c"
    link.symlink_to(snn_file)
    png = tmp_path / "alias.png"  # a plot name that is the model under another name
    png.symlink_to(snn_file)
    npz = tmp_path / "alias.npz"
    npz.symlink_to(snn_file)
    for args in (("convert", "remove-dropout", snn_file, "-o", link), ("simulate", snn_file, "--steps", "2", "--plot", png),
                 ("profile", snn_file, "--plot", png), ("simulate", snn_file, "--steps", "2", "--save-outputs", npz)):
        code, _, err = run_cli(*args)
        assert code == 2 and "input file being read" in err, (args, err)
    assert ir.read(snn_file) is not None


def test_stamp_in_place_is_still_allowed(run_cli, snn_file):
    code, out, err = run_cli("stamp", snn_file, "--no-git")
    assert code == 0, err
    assert ir.read(snn_file).metadata


@posix_only
def test_a_fifo_input_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.t1c"
    os.mkfifo(fifo)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for args in (["analyze", str(fifo)], ["validate", str(fifo)], ["info", str(fifo)]):
        proc = subprocess.run([sys.executable, "-c", "import sys; from talon.cli import main; sys.exit(main())", *args],
                              capture_output=True, text=True, timeout=60, env=env)
        assert proc.returncode == 2 and "FIFO" in proc.stderr and "not a regular file" in proc.stderr, proc.stderr


@posix_only
def test_a_fifo_stimulus_or_hardware_file_is_refused(run_cli, snn_file, tmp_path):
    fifo = tmp_path / "in.npy"
    os.mkfifo(fifo)
    code, _, err = run_cli("simulate", snn_file, "--input", fifo)
    assert code == 2 and "FIFO" in err
    code, _, err = run_cli("map", snn_file, "--hardware", fifo)
    assert code == 2 and "FIFO" in err


def test_steps_and_seed_have_bounds(run_cli, snn_file):
    from talon.cli._common import MAX_STEPS

    code, _, err = run_cli("simulate", snn_file, "--steps", str(10**12))
    assert code == 2 and "--steps" in err and f"{MAX_STEPS}" in err
    code, _, err = run_cli("simulate", snn_file, "--seed", "9" * 40, "--steps", "2")
    assert code == 2 and "--seed" in err and "Traceback" not in err
    code, _, err = run_cli("map", snn_file, "--seed", "-1")
    assert code == 2 and "--seed" in err


def test_deep_or_wrong_hardware_json_is_a_clear_error(run_cli, snn_file, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    code, _, err = run_cli("map", snn_file, "--hardware", deep)
    assert code == 2 and "--hardware" in err and "nested too deeply" in err
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"mesh": "banana"}))
    code, _, err = run_cli("map", snn_file, "--hardware", wrong)
    assert code == 2 and "Traceback" not in err


def _ansi_graph() -> ir.Graph:
    name = "evil\x1b[2J\x1b[31m\rname\x07"
    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(3,)))
    g.add_node(name, ir.Linear(weight=np.ones((3, 3), np.float32)))
    g.add_node("out", ir.Output())
    g.chain("inp", name, "out")
    return g


@pytest.mark.parametrize("command", ["inspect", "analyze", "lint", "node", "info", "trace"])
def test_control_characters_in_names_never_reach_the_terminal(run_cli, tmp_path, command):
    path = tmp_path / "ansi.t1c"
    ir.write(path, _ansi_graph())
    name = "evil\x1b[2J\x1b[31m\rname\x07"
    extra = {"node": [name], "trace": ["inp", "out"]}.get(command, [])
    code, out, err = run_cli(command, path, *extra)
    assert code in (0, 1), err
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    if command in ("inspect", "analyze", "node"):
        assert "evil\\x1b[2J" in out


@pytest.mark.parametrize("command", ["inspect", "analyze"])
def test_large_tables_are_plain_text_with_the_same_escapes(run_cli, tmp_path, monkeypatch, command):
    """Past RICH_TABLE_ROWS rows a table is printed as aligned plain text (rich takes ~1 ms a row)."""
    import talon.cli._common as common

    monkeypatch.setattr(common, "RICH_TABLE_ROWS", 1)
    path = tmp_path / "ansi.t1c"
    ir.write(path, _ansi_graph())
    code, out, err = run_cli(command, path)
    assert code == 0, err
    assert "\x1b" not in out and "evil\\x1b[2J\\x1b[31m\\rname\\x07" in out
    lines = out.splitlines()
    assert lines[1].split()[:3] == (["#", "name", "type"] if command == "inspect" else ["name", "type", "output"])
    assert any(line.split()[:2] == (["0", "inp"] if command == "inspect" else ["inp", "Input"]) for line in lines)


def test_safe_text_escapes_only_what_cannot_be_printed():
    from talon.cli._common import safe_text

    assert safe_text("café Δt 模型") == "café Δt 模型"
    assert safe_text("a\x1b[31mb\r\n\t\u202e\x7f") == "a\\x1b[31mb\\r\\n\\t\\u202e\\x7f"


def test_summaries_print_as_lines_with_names_still_escaped(run_cli, tmp_path):
    """A multi-line summary (simulate, energy, eval, ...) keeps its line breaks; names in it stay escaped."""
    from talon.cli._common import safe_lines

    assert safe_lines("a\x1b[31m\nb\r") == "a\\x1b[31m\nb\\r"
    path = tmp_path / "ansi.t1c"
    ir.write(path, _ansi_graph())
    code, out, err = run_cli("simulate", path, "--steps", "3")
    assert code == 0, err
    assert "\\n" not in out and len(out.splitlines()) > 2 and "\x1b" not in out


def test_lint_survives_an_absurd_padding(run_cli, tmp_path):
    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(1, 4, 4)))
    g.add_node("conv", ir.Conv2d(weight=np.ones((1, 1, 3, 3), np.float32), bias=np.zeros(1, np.float32), padding=(10**9, 10**9)))
    tau = np.float32(2.0)
    g.add_node("lif", ir.LIF(tau=tau, r=tau, v_leak=np.float32(0), v_threshold=np.float32(1)))
    g.add_node("out", ir.Output())
    g.chain("inp", "conv", "lif", "out")
    from talon.sdk.lint import lint_graph

    result = lint_graph(g)
    assert not [i for i in result.issues if i.code == "NEURON_NEVER_FIRES"]  # too large to judge: not judged
    path = tmp_path / "pad.t1c"
    ir.write(path, g)
    code, _, err = run_cli("lint", path)
    assert code == 0 and "Traceback" not in err


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_stamp_runs_no_program_named_by_the_repository(tmp_path, monkeypatch):
    """A repository's core.fsmonitor, hooks and clean filters are programs `git status` would run."""
    from talon.sdk.stamp import _git_state

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    (repo / "f.txt").write_text("one\n")
    (repo / ".gitattributes").write_text("*.txt filter=evil\n")
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=repo, check=True)
    ran = tmp_path / "ran"
    marker = f"touch {ran}"
    subprocess.run(["git", "config", "core.fsmonitor", f"{marker}-fsmonitor; false"], cwd=repo, check=True)
    subprocess.run(["git", "config", "filter.evil.clean", f"{marker}-filter; cat"], cwd=repo, check=True)
    hooks = repo / ".git" / "hooks"
    for hook in ("post-index-change", "reference-transaction"):
        (hooks / hook).write_text(f"#!/bin/sh\n{marker}-hook\n")
        (hooks / hook).chmod(0o755)
    (repo / "f.txt").write_text("two\n")
    os.utime(repo / "f.txt", None)
    commit, dirty = _git_state(repo)
    assert len(commit) == 40 and dirty is True
    assert not list(tmp_path.glob("ran*")), [p.name for p in tmp_path.glob("ran*")]
    # the same repository does run them through a plain `git status` (the test would catch a regression)
    subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    assert list(tmp_path.glob("ran*"))


def test_stamp_cli_in_a_hostile_repository(run_cli, snn_file, tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("needs git")
    repo = tmp_path / "work"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    ran = tmp_path / "fsmonitor-ran"
    subprocess.run(["git", "config", "core.fsmonitor", f"touch {ran}; false"], cwd=repo, check=True)
    monkeypatch.chdir(repo)
    code, _, err = run_cli("stamp", snn_file)
    assert code == 0, err
    assert not ran.exists()
    assert stat.S_ISREG(os.stat(snn_file).st_mode)
