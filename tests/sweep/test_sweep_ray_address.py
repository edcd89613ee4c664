"""`--ray-address` against an existing cluster: a Ray head started here with `ray start --head` (in its own
temporary folder, stopped at the end) runs the sweep, and the results equal the in-process run's."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from sweep_fixtures import data, mlp_graph, strip_timings
from talon import ir
from talon.sweep import sweep

ray = pytest.importorskip("ray")

KW = dict(steps=4, encode="rate", batch_size=8, shard_size=12, plots=False)
GRID = {"weight_bits": [4, 8], "mesh": ["1x1"], "neurons_per_core": [64]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def head(monkeypatch):
    """A Ray head of 1 CPU in the foreground (`--block`): SIGTERM to it stops every process it started. It
    uses token authentication (on by default in newer Rays) with a token made here for it, which the
    sweep's process (started by the test, with this environment) finds, as Ray's clients do, in RAY_AUTH_TOKEN."""
    exe = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if exe is None:
        pytest.skip("the `ray` command is not installed")
    port = _free_port()
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    temp = tempfile.mkdtemp(prefix="rayh", dir="/tmp")  # Ray's socket paths must stay short
    proc = subprocess.Popen([exe, "start", "--head", "--block", f"--port={port}", "--num-cpus=1", f"--temp-dir={temp}",
                             "--include-dashboard=false", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.skip(f"`ray start --head` exited ({proc.returncode}): {proc.stderr.read().decode()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.skip("`ray start --head` did not listen within 120 s")
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the group of the head this fixture started, nothing else
                proc.wait()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_talon_sweep_ray_address_on_an_existing_cluster_equals_the_in_process_run(head, tmp_path):
    """`talon sweep --ray-address HOST:PORT` in a fresh process (Ray reads its authentication settings when
    it is imported): the same points as the in-process run."""
    ir.write(str(tmp_path / "model.t1c"), mlp_graph())
    np.savez(tmp_path / "data.npz", **data())
    local = sweep(str(tmp_path / "model.t1c"), str(tmp_path / "data.npz"), GRID, str(tmp_path / "local"), **KW)
    words = [f"{k}={','.join(str(v) for v in vs)}" for k, vs in GRID.items()]
    cmd = [sys.executable, "-m", "talon.cli", "sweep", str(tmp_path / "model.t1c"), "--data", str(tmp_path / "data.npz"), "--grid", *words,
           "--out", str(tmp_path / "ray"), "--steps", "4", "--encode", "rate", "--batch-size", "8", "--shard-size", "12", "--no-plot",
           "--ray-address", head, "--json"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert strip_timings(doc["points"]) == strip_timings(local.points) and [p["status"] for p in local.points] == ["ok", "ok"]
    saved = json.loads((tmp_path / "ray" / "results.json").read_text())
    assert {**saved["reference"], "seconds": 0} == {**local.reference, "seconds": 0}
