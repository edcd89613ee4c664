"""talon.sweep on Ray's local cluster: results identical point for point to the in-process run, and a
worker killed in the middle of a point is retried and the sweep completes with the same results."""

import json
import os

import pytest

from sweep_fixtures import data, mlp_graph, strip_timings
from talon.sweep import sweep

ray = pytest.importorskip("ray")

KW = dict(steps=6, encode="rate", batch_size=4, shard_size=8, plots=False)
GRID = {"weight_bits": [3, 8], "neurons_per_core": [4, 64], "mesh": ["1x1"]}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    return sweep(mlp_graph(), data(), GRID, str(out), **KW), out


def test_ray_results_equal_the_in_process_run(cluster, local, tmp_path):
    res, out = local
    on_ray = sweep(mlp_graph(), data(), GRID, str(tmp_path), ray=True, **KW)
    assert strip_timings(on_ray.points) == strip_timings(res.points)
    assert on_ray.reference == {**res.reference, "seconds": on_ray.reference["seconds"]}
    assert [p["status"] for p in on_ray.points] == ["does-not-fit", "ok", "does-not-fit", "ok"]
    a, b = (json.loads((d / "results.json").read_text()) for d in (out, tmp_path))
    assert a["settings"] == b["settings"] and strip_timings(a["points"]) == strip_timings(b["points"])


def test_a_killed_worker_is_retried_and_the_sweep_completes(cluster, local, tmp_path):
    res, _ = local
    marker = tmp_path / "killed"

    def count(out):  # talon.eval's "count" readout, whose first call kills the worker running it
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return out.sum(axis=0).argmax(axis=1)

    on_ray = sweep(mlp_graph(), data(), GRID, str(tmp_path / "out"), ray=True, readout=count, retries=2, **KW)
    assert marker.exists() and int(marker.read_text()) != os.getpid()
    assert strip_timings(on_ray.points) == strip_timings(res.points)
    assert on_ray.reference["predictions"] == res.reference["predictions"]
