"""talon.mapping never imports torch, checked in a fresh interpreter (tests/test_layering.py checks its source)."""

import subprocess
import sys

CODE = """
import sys
import talon.mapping as tm
from talon import ir
import numpy as np
g = ir.Graph({"inp": ir.Input(shape=(4,)),
              "fc": ir.Affine(weight=np.ones((3, 4), np.float32), bias=np.zeros(3, np.float32)),
              "lif": ir.LIF(tau=np.full(3, 2.0), r=np.full(3, 2.0), v_leak=np.zeros(3), v_threshold=np.ones(3)),
              "out": ir.Output()})
g.chain("inp", "fc", "lif", "out")
for algorithm in tm.ALGORITHMS:
    tm.map_graph(g, tm.preset("small"), algorithm)
from talon.mapping import synthetic
assert "torch" not in sys.modules, sorted(m for m in sys.modules if m.startswith("torch"))
print("ok")
"""


def test_no_torch_import():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
