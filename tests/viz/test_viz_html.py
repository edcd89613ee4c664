"""talon.viz.html: the page is self-contained, carries every node, lays out by depth, shows the mapping."""

import json
import re

import numpy as np

from talon import ir
from talon.viz.html import _downsample, export_html, graph_data, layout, render_html


def _data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="talon-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_self_contained(branchy):
    page = render_html(branchy)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must not load anything"
    assert "<link" not in page and "@import" not in page and not re.search(r"url\((?!#)", page)
    assert "Content-Security-Policy" in page  # and the browser is told so


def test_nodes_layout_and_data(branchy):
    data = _data(render_html(branchy, title="t <b>"))
    assert [n["name"] for n in data["nodes"]] == list(branchy.nodes)
    cols = {n["name"]: n["col"] for n in data["nodes"]}
    assert cols["inp"] == 0 and cols["fc_a"] == cols["fc_b"] == 1 and cols["cat"] == 3 and cols["out"] == 6
    assert cols["rec"] == cols["lif_a"] + 1  # the loop reads left to right ...
    (back,) = [e for e in data["edges"] if e["recurrent"]]
    assert (back["src"], back["dst"]) == ("rec", "lif_a")  # ... with one edge going back
    fc = next(n for n in data["nodes"] if n["name"] == "fc_b")
    assert fc["kind"] == "synaptic" and fc["params"] == 200 * 6 + 200 and fc["cost"]["macs"] == 1200
    assert fc["shapes"]["outputs"] == [[200]] and fc["arrays"]["weight"]["shape"] == [200, 6]
    hm = fc["heatmap"]
    assert hm["rows"] <= 64 and hm["cols"] == 6 and hm["downsampled"]
    assert data["title"] == "t <b>"


def test_title_and_names_are_escaped(branchy):
    page = render_html(branchy, title="</script><script>alert(1)</script>")
    assert page.count("</script>") == 2  # only the page's own two script elements close
    assert "<title>&lt;/script&gt;" in page
    assert _data(page)["title"] == "</script><script>alert(1)</script>"


def test_downsample_block_average():
    a = np.arange(12.0).reshape(3, 4)
    assert np.array_equal(_downsample(a, 4), a)
    small = _downsample(np.ones((130, 7)), 64)
    assert small.shape == (44, 7) and np.allclose(small, 1.0)


def test_invalid_graph_still_renders(tmp_path):
    g = ir.Graph()
    g.add_node("inp", ir.Input(shape=(4,)))
    g.add_node("fc", ir.Affine(weight=np.ones((3, 5), np.float32), bias=np.zeros(3, np.float32)))
    g.add_node("out", ir.Output())
    g.chain("inp", "fc", "out")
    data = graph_data(g)
    assert [n["shapes"] for n in data["nodes"]] == [None, None, None]
    assert layout(g) == {"inp": (0, 0), "fc": (1, 0), "out": (2, 0)}


def test_mapping_panel_and_stored_mapping(branchy, branchy_mapping, tmp_path):
    data = graph_data(branchy, mapping=branchy_mapping)
    m = data["mapping"]
    assert (m["rows"], m["cols"]) == (3, 3) and len(m["cores"]) == branchy_mapping.metrics["cores_used"]
    assert sum(c["neurons"] for c in m["cores"]) == branchy_mapping.metrics["neurons"]
    assert set(m["layer_cores"]) == set(branchy_mapping.layers)
    assert [c["neuron_use"] for c in m["cores"]] == branchy_mapping.neuron_utilisation.tolist()
    assert [c["memory_use"] for c in m["cores"]] == branchy_mapping.memory_utilisation.tolist()
    assert m["node_cores"]["fc_b"]["via"] == ["lif_b"] and m["node_cores"]["fc_b"]["cores"] == sorted(set(m["layer_cores"]["lif_b"]))
    # a mapping stored in the graph's metadata is picked up from the file
    g = branchy.copy()
    branchy_mapping.attach(g)
    ir.write(tmp_path / "mapped.t1c", g)
    path = export_html(tmp_path / "mapped.t1c", tmp_path / "page.html")
    assert _data(open(path, encoding="utf-8").read())["mapping"]["rows"] == 3


def test_node_kind_reads_flags_and_the_cost_table(registries):
    """Kinds come from the class flags, the cost table and the primitive's family module, so user
    primitives are coloured by what they are; built-ins keep their families."""
    from talon.ir.node import Node, array, primitive
    from talon.sdk.cost import Counts, register_cost
    from talon.viz.html import node_kind

    @primitive(name="VizTestSynapse")
    class Synapse(Node):
        weight: np.ndarray = array()

    @primitive(name="VizTestNeuron")
    class Neuron(Node):
        stateful = True

    register_cost("VizTestSynapse", lambda node, ins, outs: Counts(), weight_fields=("weight",), replace=True)
    f32 = np.float32
    assert node_kind(Synapse(weight=np.ones(2, f32))) == "synaptic" and node_kind(Neuron()) == "neuron"
    expected = {
        "io": ir.Input(shape=(2,)), "synaptic": ir.Scale(scale=np.ones(2, f32)), "neuron": ir.Delay(delay=np.ones(2, np.int64)),
        "activation": ir.Softmax(), "pooling": ir.Upsample(scale_factor=2), "norm": ir.Dropout(), "structure": ir.Flatten(),
        "graph": ir.Graph(),
    }
    assert {kind: node_kind(node) for kind, node in expected.items()} == {kind: kind for kind in expected}


def _chain(n: int) -> ir.Graph:
    g = ir.Graph()
    g.add_node("n0", ir.Input(shape=(2,)))
    for i in range(1, n - 1):
        g.add_node(f"n{i}", ir.ReLU())
    g.add_node(f"n{n - 1}", ir.Output())
    g.chain(*[f"n{i}" for i in range(n)])
    return g


def test_long_chain_snakes_into_bands():
    """40 nodes in a chain: not one 40-column row but bands of at most BAND_COLS columns, every other one
    running right to left, each step to a neighbouring slot, no two boxes overlapping."""
    from talon.viz.html import GAP_X, NODE_H, NODE_W
    from talon.viz.layout import BAND_COLS

    data = graph_data(_chain(40))
    nodes = data["nodes"]
    bands = sorted({n["band"] for n in nodes})
    assert bands == list(range(8)) and max(n["x"] for n in nodes) == GAP_X + (BAND_COLS - 1) * (NODE_W + GAP_X)
    assert data["size"]["w"] < data["size"]["h"]  # a readable aspect, not a thin strip
    for a, b in zip(nodes, nodes[1:]):
        if a["band"] == b["band"]:
            step = NODE_W + GAP_X
            assert b["x"] - a["x"] == (step if a["band"] % 2 == 0 else -step) and b["y"] == a["y"]
        else:  # the turn: straight down into the next band
            assert b["band"] == a["band"] + 1 and b["x"] == a["x"] and b["y"] > a["y"] + NODE_H
    boxes = {(n["x"], n["y"]) for n in nodes}
    assert len(boxes) == len(nodes)
    assert all(0 <= n["x"] and n["x"] + NODE_W <= data["size"]["w"] and n["y"] + NODE_H <= data["size"]["h"] for n in nodes)


def test_snake_keeps_stacked_nodes_apart():
    from viz_graphs import build_staged

    from talon.viz.html import NODE_H, NODE_W

    nodes = graph_data(build_staged())["nodes"]
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            assert abs(a["x"] - b["x"]) >= NODE_W or abs(a["y"] - b["y"]) >= NODE_H, (a["name"], b["name"])


def test_validation_errors_reach_the_page():
    g = _chain(4)
    assert graph_data(g)["errors"] == []
    g.add_node("stray", ir.Output())
    errors = graph_data(g)["errors"]
    assert len(errors) == 1 and errors[0].startswith("GraphValidationError") and "'stray'" in errors[0]
