"""Jupyter's rich display: Graph, analysis, hardware profile, simulation, energy profile, evaluation."""

import numpy as np
import pytest

from talon import ir
from talon.sdk import analyze_graph, profile_graph


def small_graph(name: str = "fc") -> ir.Graph:
    rng = np.random.default_rng(0)
    tau = np.full(3, 5.0, np.float32)
    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(4,)))
    g.add_node(name, ir.Affine(weight=rng.normal(0, 1, (3, 4)).astype(np.float32), bias=np.zeros(3, np.float32)))
    g.add_node("lif", ir.LIF(tau=tau, r=tau, v_leak=np.zeros(3, np.float32), v_threshold=np.ones(3, np.float32), reset_mode="subtract"))
    g.add_node("out", ir.Output())
    g.chain("inp", name, "lif", "out")
    return g


def test_graph_html_lists_nodes_shapes_and_escapes_names():
    g = small_graph("fc<b>")
    before = g.copy()
    html = g._repr_html_()
    assert "TALON Graph: 4 nodes, 3 edges" in html and "fc&lt;b&gt;" in html and "fc<b>" not in html
    assert "(3,)" in html and "reset_mode=&#x27;subtract&#x27;" in html and "inp → fc&lt;b&gt;" in html
    assert g == before and g.nodes["lif"].output_shapes == before.nodes["lif"].output_shapes  # shapes inferred on a copy


def test_invalid_graph_still_displays():
    g = small_graph()
    g.add_node("dangling", ir.Affine(weight=np.ones((2, 7), np.float32), bias=np.zeros(2, np.float32)))
    g.add_edge("lif", "dangling")
    assert "shapes not inferred" in g._repr_html_()


def test_analysis_and_hardware_profile_html():
    g = small_graph()
    html = analyze_graph(g)._repr_html_()
    assert "TALON analysis" in html and "MACs" in html and ">12<" in html  # 3x4 weights = 12 MACs
    assert "TALON hardware profile" in profile_graph(g)._repr_html_()


def test_simulation_profile_and_evaluation_html():
    torch = pytest.importorskip("torch")
    from talon.backend import get_backend
    from talon.eval import evaluate

    g = small_graph()
    cpu = get_backend("cpu")
    sim = cpu.simulate(g, torch.ones(5, 2, 4), mode="fixed")
    html = sim._repr_html_()
    assert "simulation (fixed): 5 steps, batch 2" in html and "lif" in html and "fixed/float agreement" in html
    assert f">{sim.spike_counts['lif']:,}<" in html
    prof = cpu.profile(g, torch.ones(5, 2, 4), simulation=None)
    assert "energy per sample" in prof._repr_html_()
    res = evaluate(g, (np.ones((4, 5, 4), np.float32), np.array([0, 1, 2, 0])), progress=False)
    assert "TALON evaluation (float)" in res._repr_html_()


def test_the_interactive_view_shows_inline_in_a_sandboxed_iframe():
    import html
    import re

    from talon.viz import render_html, show

    g = ir.Graph({"input": ir.Input(shape=(2,)), "<img src=x onerror=alert(1)>": ir.Affine(weight=np.ones((2, 2), np.float32), bias=np.zeros(2, np.float32)), "output": ir.Output()})
    g.chain("input", "<img src=x onerror=alert(1)>", "output")
    frame = show(g)._repr_html_()
    m = re.fullmatch(r'<iframe sandbox="allow-scripts" style="[^"]*" srcdoc="([^"]*)"></iframe>', frame)
    assert m, frame[:200]
    assert html.unescape(m.group(1)) == render_html(g)  # the exported page itself, attribute-escaped
