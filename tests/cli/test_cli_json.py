"""One JSON policy (talon._json) for every JSON TALON writes: CLI --json, report files, the HTML view."""

import dataclasses
import enum
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from talon import ir
from talon._json import dumps, jsonable

from cli_graphs import build_snn


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Pair:
    a: float
    b: tuple


def test_policy_non_finite_numbers_become_null():
    assert jsonable([float("nan"), float("inf"), -math.inf, 1.5]) == [None, None, None, 1.5]
    assert jsonable(np.array([np.nan, 2.0], np.float32)) == [None, 2.0]
    assert jsonable({"x": np.float64("inf"), 3: np.int64(7), "ok": np.bool_(True)}) == {"x": None, "3": 7, "ok": True}
    assert jsonable((1, (2, 3))) == [1, [2, 3]]
    assert jsonable(Colour.RED) == "red" and jsonable(Pair(math.nan, (1,))) == {"a": None, "b": [1]}
    assert jsonable(Path("a/b")) == "a/b" and jsonable(object).startswith("<class")
    assert json.loads(dumps({"v": [math.nan]})) == {"v": [None]}  # never the NaN token strict parsers reject


def _with_infinite_field() -> tuple[ir.Graph, str]:
    g = build_snn()
    name = next(n for n, node in g.nodes.items() if node.type_name == "LIF")
    g.nodes[name] = g.nodes[name].replace(graded_spikes_factor=float("inf"))
    return g, name


def test_cli_and_html_write_non_finite_values_alike(run_cli, tmp_path):
    from talon.viz.html import render_html

    g, name = _with_infinite_field()
    path = tmp_path / "inf.t1c"
    ir.write(path, g)
    code, out, _ = run_cli("node", path, name, "--json")
    assert code == 0 and json.loads(out)["fields"]["graded_spikes_factor"] is None
    page = render_html(g)
    data = json.loads(re.search(r'<script type="application/json" id="talon-data">(.*?)</script>', page, re.S).group(1))
    (node,) = [n for n in data["nodes"] if n["name"] == name]
    assert node["fields"]["graded_spikes_factor"] is None  # not the string "inf"


@pytest.mark.parametrize("module", ["talon._json", "talon.report"])
def test_json_helpers_import_nothing_heavy(module):
    import subprocess
    import sys

    code = f"import sys, {module}; heavy = [m for m in ('numpy', 'torch', 'click', 'talon.cli') if m in sys.modules]; assert not heavy, heavy"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
