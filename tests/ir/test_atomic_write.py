"""Writing outputs safely (talon.ir._atomic; docs/format.md "Writing outputs safely"): fresh exclusive
temporary files, no replacing of devices, FIFOs, folders or the input being read, and removal of the
stale temporary files of killed writers (never a live writer's)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

import talon.ir as ir
from talon.errors import TalonFormatError
from talon.ir import _atomic
from talon.ir._atomic import atomic_path, atomic_write_text, protect_inputs, remove_stale_temporaries, replacing_input

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file types and processes")


def _graph() -> ir.Graph:
    return ir.Graph({"input": ir.Input(shape=(2,)), "fc": ir.Linear(weight=np.ones((2, 2), np.float32)), "output": ir.Output()},
                    [("input", "fc"), ("fc", "output")])


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _leftover(folder, target: str, pid: int, age_s: float, host: str | None = None) -> str:
    path = folder / f".{target}.talon-{pid}-{host or _atomic._host_tag()}-abcdefgh.tmp"
    path.write_bytes(b"x" * 1000)
    old = time.time() - age_s
    os.utime(path, (old, old))
    return str(path)


def test_temporary_names_are_fresh_and_not_followed(tmp_path):
    """A symlink planted where the old writer put its temporary file (OUT.tmp) is neither followed nor
    replaced; every write uses a new name, created exclusively, and leaves nothing behind."""
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("keep me")
    (tmp_path / "page.html.tmp").symlink_to(secret)
    seen = []
    for _ in range(3):
        with atomic_path(tmp_path / "page.html") as tmp:
            seen.append(tmp.name)
            assert stat.S_ISREG(os.lstat(tmp).st_mode) and stat.S_IMODE(os.lstat(tmp).st_mode) == 0o600
            tmp.write_text("<p>ok</p>")
    assert len(set(seen)) == 3 and all(_atomic._TMP_NAME.match(n) for n in seen)
    assert secret.read_text() == "keep me" and (tmp_path / "page.html").read_text() == "<p>ok</p>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.txt", "page.html", "page.html.tmp"]


@posix_only
def test_non_regular_targets_are_refused(tmp_path):
    fifo = tmp_path / "fifo.html"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.html"
    folder.mkdir()
    to_device = tmp_path / "null.html"
    to_device.symlink_to("/dev/null")
    to_folder = tmp_path / "dir.html"
    to_folder.symlink_to(folder)
    dangling = tmp_path / "dangling.html"
    dangling.symlink_to(tmp_path / "missing")
    for target, words in ((fifo, "FIFO"), (folder, "folder"), (to_device, "character device (through a symlink)"),
                          (to_folder, "folder (through a symlink)"), (dangling, "symlink to a missing file")):
        with pytest.raises(TalonFormatError, match=words.replace("(", r"\(").replace(")", r"\)")):
            atomic_write_text(target, "x")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and folder.is_dir() and os.readlink(to_device) == "/dev/null"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_input_being_read_is_never_replaced(tmp_path):
    model = tmp_path / "model.t1c"
    ir.write(model, _graph())
    before = model.read_bytes()
    link = tmp_path / "alias.t1c"
    link.symlink_to(model)
    hard = tmp_path / "hard.t1c"
    os.link(model, hard)
    for target in (model, link, hard):
        with pytest.raises(TalonFormatError, match="input file being read"):
            atomic_write_text(target, "<html>", inputs=[model])
    with protect_inputs([model]):
        with pytest.raises(TalonFormatError, match="input file being read"):
            ir.write(link, _graph())
        with replacing_input(model):  # an in-place update that is asked for
            ir.write(model, _graph())
    assert model.read_bytes() != b"<html>" and ir.read(model) == _graph()
    assert len(before) > 0


def test_a_killed_writers_temporary_files_are_removed_on_the_next_write(tmp_path):
    """A write killed half-way leaves its temporary file; the next write into the folder removes it once
    its process is gone, and never touches a live writer's."""
    script = (
        "import os, signal, sys, talon.ir as ir, numpy as np\n"
        "from talon.ir._atomic import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'x' * 100000)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    target = tmp_path / "model.t1c"
    proc = subprocess.run([sys.executable, "-c", script, str(target)], env={**os.environ})
    assert proc.returncode != 0
    left = [p for p in tmp_path.iterdir() if _atomic._TMP_NAME.match(p.name)]
    assert len(left) == 1 and not target.exists()
    old = time.time() - 2 * _atomic.STALE_AFTER_S
    os.utime(left[0], (old, old))
    live = _leftover(tmp_path, "model.t1c", os.getppid(), 10 * _atomic.STALE_AFTER_S)  # a live process
    fresh_dead = _leftover(tmp_path, "model.t1c", _dead_pid(), 1.0)  # dead, but only just: could be in use by a pid namespace
    other_host = _leftover(tmp_path, "model.t1c", 1, 3600.0, host="00000000")
    ancient = _leftover(tmp_path, "other.t1c", 1, 2 * _atomic.STALE_ANY_S, host="00000000")
    unrelated = tmp_path / ".model.t1c.abcdef.tmp"  # not our naming: never touched
    unrelated.write_text("theirs")
    ir.write(target, _graph())
    remaining = {p.name for p in tmp_path.iterdir()}
    assert left[0].name not in remaining and os.path.basename(ancient) not in remaining
    for kept in (live, fresh_dead, other_host, str(unrelated)):
        assert os.path.basename(kept) in remaining
    assert ir.read(target) == _graph()


def test_remove_stale_temporaries_reports_what_it_removed(tmp_path):
    dead = _leftover(tmp_path, "a.html", _dead_pid(), 2 * _atomic.STALE_AFTER_S)
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_every_writer_goes_through_the_atomic_helper(tmp_path, monkeypatch):
    """The HTML page, JSON documents, plots and descriptors refuse a FIFO target like models do."""
    pytest.importorskip("matplotlib")
    from talon.report import write_document
    from talon.viz.html import export_html
    from talon.viz.plots import save_figure, _figure

    calls = []
    real = _atomic.atomic_path

    def spy(path, **kw):
        calls.append(os.path.basename(os.fspath(path)))
        return real(path, **kw)

    monkeypatch.setattr(_atomic, "atomic_path", spy)
    export_html(_graph(), tmp_path / "a.html")
    write_document(tmp_path / "b.json", "analyze", {"x": 1})
    save_figure(_figure(), tmp_path / "c.png")
    assert calls == ["a.html", "b.json", "c.png"]
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "f.html")
        with pytest.raises(TalonFormatError, match="FIFO"):
            export_html(_graph(), tmp_path / "f.html")


def test_export_html_refuses_to_overwrite_its_model(tmp_path):
    from talon.viz.html import export_html

    model = tmp_path / "model.t1c"
    ir.write(model, _graph())
    with pytest.raises(TalonFormatError, match="input file being read"):
        export_html(str(model), model)
    assert ir.read(model) == _graph()
