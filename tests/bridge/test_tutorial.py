"""The tutorial (examples/snntorch_tutorial.py, verbatim from ../shared/seed) runs as a user runs it.

Sections 1-6 (export, files, import, round trip, hybrid model) need only the bridge and must pass.
The full script also needs talon.sdk and talon.backend (sections 7-9); it is skipped while those are
not importable. Each run is a fresh interpreter, started the way a user's script starts; sections 1-6 are
checked on the full script's run (the script runs top to bottom, so its first sections print the same).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("snntorch")

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "snntorch_tutorial.py"
SEED = REPO.parent / "shared" / "seed" / "snntorch_tutorial.md"
SECTION_7_STARTS = "from talon import sdk\n"

# The .pth hook that provides snntorch.export_talonir is installed with the package; importing the
# hook module first keeps the test meaningful from a plain checkout too.
RUNNER = "import sys, runpy, _t1c_talon_snntorch; runpy.run_path(sys.argv[1], run_name='__main__')"


def start_script(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    script = tmp_path / "tutorial.py"
    script.write_text(code, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONIOENCODING"] = "utf-8"  # the script prints arrows and check marks
    return subprocess.run([sys.executable, "-c", RUNNER, str(script)], capture_output=True, text=True, encoding="utf-8",
                          env=env, cwd=tmp_path, timeout=300)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> subprocess.CompletedProcess:
    """One run of the whole tutorial, shared by the tests of its sections (its exit status is checked by each)."""
    return start_script(example_code(), tmp_path_factory.mktemp("tutorial"))


def example_code() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


@pytest.mark.skipif(not SEED.exists(), reason=f"the tutorial source {SEED} is not in this checkout")
def test_example_is_the_tutorial_verbatim():
    blocks = re.findall(r"```python\n(.*?)```", SEED.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 9
    code = example_code()
    header = code[: code.index(blocks[0])]
    assert all(line.startswith("#") or not line.strip() for line in header.splitlines()), "only a header comment may precede the code"
    assert code[len(header):] == "\n".join(blocks)


def test_sections_1_to_6(full_run):
    # The output up to section 7's first print; a failure later in the script leaves these lines as they are.
    out = full_run.stdout
    assert SECTION_7_STARTS in example_code() and "Model parameters" in out, f"tutorial failed:\n{out[-3000:]}\n{full_run.stderr[-5000:]}"
    assert "Model parameters: 101,770" in out
    assert " Nodes: 6" in out and " Edges: 5" in out
    for name, kind in [("input", "Input"), ("fc1", "Affine"), ("lif1", "LIF"), ("fc2", "Affine"), ("lif2", "LIF"), ("output", "Output")]:
        assert re.search(rf"^ {name} +→ {kind}$", out, re.M), (name, kind)
    assert "Loaded: 6 nodes, 5 edges" in out
    # The file: within 1 % + 16 KiB of the weights' raw bytes, and smaller than the existing SDK's 420,864 B.
    saved = int(re.search(r"^Saved: ([\d,]+) bytes$", out, re.M).group(1).replace(",", ""))
    raw = 101_770 * 4
    assert saved <= raw * 1.01 + 16 * 1024 and saved < 420_864, f"{saved:,} bytes for {raw:,} raw bytes"
    assert len(re.findall(r"output=torch\.Size\(\[1, 10\]\), spikes=\d+/10", out)) == 10
    assert "Nodes match: True" in out and "Edges match: True" in out
    assert out.count("type=✓") == 6 and "✗" not in out
    assert "Hybrid ANN-SNN graph: 9 nodes" in out
    for name, kind in [("conv1", "Conv2d"), ("relu", "ReLU"), ("pool", "MaxPool2d"), ("flatten", "Flatten"), ("lif", "LIF")]:
        assert re.search(rf"^ {name} +→ {kind}$", out, re.M), (name, kind)


def test_full_tutorial(full_run):
    assert full_run.returncode == 0, f"tutorial failed:\n{full_run.stdout[-3000:]}\n{full_run.stderr[-5000:]}"
    out = full_run.stdout
    assert "Nodes match: True" in out
    assert "=== Graph Analysis ===" in out and "=== Hardware Profile ===" in out
    assert "Lint issues:" in out and "Graph fingerprint:" in out
    assert " Timesteps: 10" in out and " Output valid: True" in out
    assert "=== Energy Profile (45nm CMOS) ===" in out
