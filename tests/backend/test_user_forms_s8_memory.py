"""A small file that asks for more memory than the machine has is refused before anything is allocated.

User forms: a .t1c whose Upsample(scale_factor=8192) asks for 34 GB per step; an Input whose shape asks
for terabytes (or for more elements than torch can index); a run whose chunk of steps is too large for
the memory available. The available memory is faked through /proc/meminfo's MemAvailable line
(`memory_budget._MEMINFO`), so the tests are fast and machine-independent; the expected bytes are the
spec's arithmetic written out here (elements x samples x steps x 4 bytes), never TALON's.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from talon import ir
from talon.backend import memory_budget
from talon.errors import BackendError

from backend_graphs import build_mlp


def _fake_available(monkeypatch, tmp_path, nbytes: int) -> None:
    """/proc/meminfo as a machine with `nbytes` available would write it."""
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       65536000 kB\nMemFree:          100000 kB\nMemAvailable:   {nbytes // 1024:>10} kB\n")
    monkeypatch.setattr(memory_budget, "_MEMINFO", str(path))
    monkeypatch.setattr(memory_budget, "_CGROUP_FILES", ())


def _upsample_file(tmp_path, channels: int = 2, scale: int = 8192) -> str:
    g = ir.Graph({"x": ir.Input(shape=(channels, 8, 8)), "up": ir.Upsample(scale_factor=scale), "y": ir.Output()})
    g.chain("x", "up", "y")
    path = tmp_path / f"up{scale}.t1c"
    ir.write(path, g)
    return str(path)


GIB = 1 << 30


def test_upsample_8192_file_is_refused_naming_the_node(cpu, tmp_path, monkeypatch):
    path = _upsample_file(tmp_path)
    _fake_available(monkeypatch, tmp_path, GIB)
    with pytest.raises(BackendError) as err:
        cpu.simulate(path, n_steps=1)
    msg = str(err.value)
    per_step = 2 * (8 * 8192) ** 2 * 4  # (2, 65536, 65536) float32 values
    assert per_step == 34_359_738_368
    assert "node 'up' (Upsample, output (2, 65536, 65536))" in msg
    assert "34.4 GB per step" in msg and "1.07 GB available" in msg
    assert "one step of one sample alone needs 34.4 GB" in msg and "\n" not in msg


def test_profile_of_the_upsample_file_is_refused(cpu, tmp_path, monkeypatch):
    path = _upsample_file(tmp_path)
    _fake_available(monkeypatch, tmp_path, GIB)
    with pytest.raises(BackendError, match=r"node 'up' \(Upsample"):
        cpu.profile(path, n_steps=2)


def test_fixed_mode_calibration_run_is_refused(cpu, tmp_path, monkeypatch):
    path = _upsample_file(tmp_path)
    _fake_available(monkeypatch, tmp_path, GIB)
    with pytest.raises(BackendError, match=r"^the calibration run needs .*node 'up'"):
        cpu.simulate(path, n_steps=1, mode="fixed")


def test_cli_simulate_refuses_in_one_line(run_cli_inproc, tmp_path, monkeypatch):
    path = _upsample_file(tmp_path)
    _fake_available(monkeypatch, tmp_path, GIB)
    code, out, err = run_cli_inproc("simulate", path)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "node 'up' (Upsample, output (2, 65536, 65536))" in lines[0]


def test_cli_simulate_subprocess_terabyte_file(tmp_path):
    """No fake: 256 channels upsampled 8192x ask for 4.4 TB per step, more than any machine running this has."""
    path = _upsample_file(tmp_path, channels=256)
    res = subprocess.run([sys.executable, "-m", "talon.cli", "simulate", path, "--steps", "1"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "node 'up' (Upsample, output (256, 65536, 65536)) 4.4 TB per step" in lines[0]


def test_huge_input_shape_default_stimulus_is_refused(cpu, tmp_path, monkeypatch):
    g = ir.Graph({"x": ir.Input(shape=(64, 100_000, 100_000)), "y": ir.Output()})
    g.chain("x", "y")
    _fake_available(monkeypatch, tmp_path, GIB)
    with pytest.raises(BackendError) as err:
        cpu.simulate(g, n_steps=1)
    msg = str(err.value)
    assert "Input #0 'x', shape (64, 100000, 100000)" in msg and "2.56 TB" in msg  # 64e10 values x 4 bytes
    assert "1.07 GB available" in msg


def test_input_beyond_torch_indexing_is_refused_even_without_a_memory_figure(cpu, monkeypatch):
    monkeypatch.setattr(memory_budget, "available_bytes", lambda: None)  # no /proc/meminfo, no psutil
    g = ir.Graph({"x": ir.Input(shape=(4, 2**31, 2**31)), "y": ir.Output()})
    g.chain("x", "y")
    with pytest.raises(BackendError, match=r"Input #0 'x' \(shape \(4, 2147483648, 2147483648\)\).*more than torch can index"):
        cpu.simulate(g, n_steps=1)


def test_upsample_beyond_torch_indexing_is_refused_without_a_memory_figure(cpu, tmp_path, monkeypatch):
    monkeypatch.setattr(memory_budget, "available_bytes", lambda: None)
    path = _upsample_file(tmp_path, channels=1, scale=2**30)  # (1, 2**33, 2**33): 2**66 values
    with pytest.raises(BackendError, match=r"node 'up' \(Upsample, output \(1, 8589934592, 8589934592\)\).*more than torch can index"):
        cpu.simulate(path, n_steps=1)


def _zoom_graph() -> ir.Graph:
    """(1, 64, 64) -> Upsample x8 -> (1, 512, 512) -> MaxPool 8 -> (1, 64, 64): big inside, small outside."""
    g = ir.Graph({
        "x": ir.Input(shape=(1, 64, 64)),
        "up": ir.Upsample(scale_factor=8),
        "pool": ir.MaxPool2d(kernel_size=(8, 8), stride=(8, 8)),
        "y": ir.Output(),
    })
    g.chain("x", "up", "pool", "y")
    return g


def test_too_large_chunk_names_a_chunk_that_fits_and_the_batch(cpu, tmp_path, monkeypatch):
    g = _zoom_graph()
    x = torch.from_numpy(np.random.default_rng(0).random((200, 2, 1, 64, 64), dtype=np.float32))
    # per sample and step: 4096 + 262144 + 4096 values of 4 bytes; the output kept: 4096 per sample and step
    per_step = (4096 + 262144 + 4096) * 4
    kept = 2 * 200 * 4096 * 4
    avail = 100 * 10**6
    assert 2 * 200 * per_step > avail  # chunk_steps=200, the whole run in one chunk, does not fit
    assert 2 * 50 * per_step + kept > avail >= 2 * 25 * per_step + kept  # 25 is the first halving that fits
    _fake_available(monkeypatch, tmp_path, avail)
    with pytest.raises(BackendError) as err:
        cpu.simulate(g, x, chunk_steps=200)
    msg = str(err.value)
    assert "node 'up' (Upsample, output (1, 512, 512))" in msg
    assert "chunk_steps=25 fits" in msg and "a smaller batch (now 2)" in msg
    fits = cpu.simulate(g, x, chunk_steps=25)
    monkeypatch.setattr(memory_budget, "available_bytes", lambda: None)
    unchecked = cpu.simulate(g, x, chunk_steps=25)
    assert torch.equal(fits.output, unchecked.output)
    # the spec's result: nearest upsampling then a max over each 8x8 block gives the input back
    assert torch.equal(fits.output, x)


def test_small_runs_never_read_the_memory_figure_and_results_are_unchanged(cpu, monkeypatch):
    g = build_mlp()
    x = torch.from_numpy(np.random.default_rng(1).random((12, 3, 4), dtype=np.float32) * 2)
    before = [cpu.simulate(g, x, record=True, mode=m) for m in ("float", "fixed")]

    def unread():
        raise AssertionError("a run of a few KB read the machine's memory figure")

    monkeypatch.setattr(memory_budget, "available_bytes", unread)
    after = [cpu.simulate(g, x, record=True, mode=m) for m in ("float", "fixed")]
    for a, b in zip(before, after):
        assert a.spike_counts == b.spike_counts and a.input_events == b.input_events
        assert torch.equal(a.output, b.output)
        assert all(torch.equal(a.spikes[n], b.spikes[n]) for n in a.spikes)
        assert all(torch.equal(a.membranes[n], b.membranes[n]) for n in a.membranes)


def test_meminfo_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(memory_budget, "_CGROUP_FILES", ())
    _fake_available(monkeypatch, tmp_path, 3 * GIB)
    assert memory_budget.available_bytes() == 3 * GIB
    monkeypatch.setattr(memory_budget, "_MEMINFO", str(tmp_path / "absent"))
    monkeypatch.setitem(sys.modules, "psutil", None)  # not installed
    assert memory_budget.available_bytes() is None


@pytest.mark.parametrize("limit, usage, expected", [
    ("2147483648\n", "536870912\n", 3 * GIB // 2),  # a container limited to 2 GiB, 512 MiB used
    ("max\n", "536870912\n", 3 * GIB),  # cgroup v2 without a limit: the machine's figure
    ("9223372036854771712\n", "536870912\n", 3 * GIB),  # cgroup v1's "no limit"
    ("8589934592\n", "0\n", 3 * GIB),  # a limit above what the machine has available
])
def test_a_container_limit_caps_the_available_memory(tmp_path, monkeypatch, limit, usage, expected):
    _fake_available(monkeypatch, tmp_path, 3 * GIB)
    (tmp_path / "max").write_text(limit)
    (tmp_path / "current").write_text(usage)
    monkeypatch.setattr(memory_budget, "_CGROUP_FILES", ((str(tmp_path / "absent"), str(tmp_path / "absent")),
                                                         (str(tmp_path / "max"), str(tmp_path / "current"))))
    assert memory_budget.available_bytes() == expected


@pytest.fixture
def run_cli_inproc():
    """The CLI in-process (so the faked memory figure applies): (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from talon.cli import cli

    def run(*args):
        result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


def test_a_billion_steps_of_a_small_model_are_refused_up_front(cpu, tmp_path, monkeypatch):
    """`n_steps=10**9`: the outputs kept over all steps (2 values a step, 4 bytes each, joined from chunks:
    held twice) need 16 GB; refused before the first step, not after hours."""
    _fake_available(monkeypatch, tmp_path, GIB)
    with pytest.raises(BackendError) as err:
        cpu.simulate(build_mlp(), n_steps=10**9)
    msg = str(err.value)
    assert f"{2 * 10**9 * 4 / 1e9:.3g} GB of outputs kept over all steps" in msg
    assert "fewer steps (now 1000000000)" in msg


def test_the_huge_one_of_two_inputs_is_named(cpu, tmp_path, monkeypatch):
    g = ir.Graph({"a": ir.Input(shape=(3,)), "b": ir.Input(shape=(10**12,)), "cat": ir.Concat(), "y": ir.Output()},
                 [("a", "cat"), ("b", "cat"), ("cat", "y")])
    _fake_available(monkeypatch, tmp_path, GIB)
    with pytest.raises(BackendError, match=r"Input #1 'b', shape \(1000000000000,\): 4 TB"):
        cpu.simulate(g, n_steps=1)
