"""Sections 7 and 8 of the tutorial (../shared/seed/snntorch_tutorial.md), verbatim, and the no-torch rule."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sdk_graphs import build_hybrid

REPO = Path(__file__).resolve().parents[2]

SECTION_7 = '''
from talon import sdk
stats = sdk.analyze_graph(hybrid_graph)
print("=== Graph Analysis ===")
print(f" Parameters: {stats.total_params:,}")
print(f" Memory: {stats.total_bytes:,} bytes")
print(f" FLOPs: {stats.total_flops:,}")
print(f" Depth: {stats.depth}")
print(f" Type counts: {stats.type_counts}")
print()
prof = sdk.profile_graph(hybrid_graph)
print("=== Hardware Profile ===")
print(f" Weight memory: {prof.weight_memory:,} bytes")
print(f" Activation memory: {prof.activation_memory:,} bytes")
print(f" State memory: {prof.state_memory:,} bytes")
print(f" Total memory: {prof.total_memory:,} bytes")
print(f" MAC operations: {prof.mac_ops:,}")
print(f" Spike operations: {prof.spike_ops:,}")
print(f" Largest layer: {prof.largest_layer}")
'''

SECTION_8 = '''
lint_result = sdk.lint_graph(hybrid_graph)
print(f"Lint issues: {len(lint_result.issues)}")
for issue in lint_result.issues:
    print(f" [{issue.severity.value}] {issue.code}: {issue.message}")
print()
fp = sdk.fingerprint_graph(hybrid_graph)
print(f"Graph fingerprint: {fp[:32]}...")
'''


def run_sections(hybrid_graph) -> str:
    out = io.StringIO()
    ns = {"hybrid_graph": hybrid_graph}
    with contextlib.redirect_stdout(out):
        exec(SECTION_7, ns)
        exec(SECTION_8, ns)
    return out.getvalue()


def test_sections_are_verbatim_copies_of_the_tutorial():
    tutorial = REPO.parent / "shared" / "seed" / "snntorch_tutorial.md"
    if not tutorial.exists():
        pytest.skip("tutorial seed not present")
    blocks = re.findall(r"```python\n(.*?)```", tutorial.read_text(), re.S)
    assert SECTION_7.lstrip("\n") in blocks and SECTION_8.lstrip("\n") in blocks


def test_sections_7_and_8_on_the_hand_built_hybrid():
    text = run_sections(build_hybrid())
    assert " Depth: 8" in text
    assert "'Input': 1, 'Conv2d': 1, 'ReLU': 1, 'MaxPool2d': 1, 'Flatten': 1, 'Affine': 2, 'LIF': 1, 'Output': 1" in text
    assert " MAC operations: 314,240" in text and " Largest layer: fc1" in text
    assert " State memory: 256 bytes" in text and " Spike operations: 640" in text
    assert "Lint issues: 0\n" in text  # the exporter's Input name "input" is generated, not the user's
    assert re.search(r"Graph fingerprint: [0-9a-f]{32}\.\.\.", text)


def test_sections_7_and_8_on_the_exported_hybrid():
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")  # tutorial_models needs it
    from talon.bridge import export
    from tutorial_models import HybridSNN

    graph = export.to_ir(HybridSNN(), torch.randn(1, 1, 28, 28))
    text = run_sections(graph)
    assert " MAC operations: 314,240" in text and " Depth: 8" in text
    # The exporter stores the LIF's constants at the shape they vary over, in float32: an all-float32
    # graph, whose memory is 4 bytes per parameter, and whose parameters are torch's plus 4 LIF scalars.
    params = int(re.search(r" Parameters: ([\d,]+)", text).group(1).replace(",", ""))
    memory = int(re.search(r" Memory: ([\d,]+) bytes", text).group(1).replace(",", ""))
    assert params == 201_578 + 4 and memory == 4 * params
    assert f" Weight memory: {memory:,} bytes" in text
    assert "Lint issues: 0\n" in text and "NAME_SHADOWS_BUILTIN" not in text


def test_importing_the_sdk_does_not_import_torch():
    code = (
        "import sys, talon.sdk\n"
        "from talon import ir\n"
        "import numpy as np\n"
        "g = ir.Graph({'x': ir.Input(shape=(2,)), 'fc': ir.Affine(weight=np.ones((2, 2), np.float32), bias=np.zeros(2, np.float32)), 'y': ir.Output()})\n"
        "g.chain('x', 'fc', 'y')\n"
        "talon.sdk.analyze_graph(g); talon.sdk.profile_graph(g); talon.sdk.lint_graph(g); talon.sdk.fingerprint_graph(g)\n"
        "assert 'torch' not in sys.modules, 'talon.sdk imported torch'\n"
        "assert 'snntorch' not in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(REPO / "src")}, timeout=60)
    assert proc.returncode == 0, proc.stderr
