"""The view shows the graph's metadata (dt, num_steps, exporter, stamp, source file and format version, the
talon that drew it) as text, hostile strings included; + / - / 0 / f and the arrow keys zoom and pan
(in headless Chromium when it is installed)."""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import subprocess

import numpy as np
import pytest
from hostile import HOSTILE_METADATA, HOSTILE_TITLE, build_hostile
from test_viz_browser import CHROMIUM, FLAGS, _dump_dom
from test_viz_html_hostile import EXPECTED_TAGS, _parse

import talon
from talon import ir
from talon.ir.format import read_version
from talon.viz.html import META_CHARS, _SCRIPT, export_html, graph_meta, render_html


def _meta(page: str) -> dict:
    return {k: v for k, v in json.loads(_parse(page).scripts[0][1])["meta"]}


def test_metadata_rows_from_a_file(tmp_path):
    g = build_hostile()
    g.metadata.update(num_steps=25, exporter="talon.bridge.to_ir", stamp={"created_utc": "2026-01-01T00:00:00Z", "versions": {"talon": "0.1.0"}},
                      big=np.zeros((4, 4)), small=np.array([1, 2]), long="x" * 1000, rate=np.float32(0.5))  # fmt: skip
    g.dt = 0.5
    path = tmp_path / "m.t1c"
    ir.write(path, g)
    meta = _meta(open(export_html(path, tmp_path / "m.html"), encoding="utf-8").read())
    rows = graph_meta(ir.read(path), path)
    assert [k for k, _ in rows][:3] == ["dt", "num_steps", "exporter"] and [k for k, _ in rows][-3:] == ["source", "format version", "drawn by"]
    assert meta["dt"] == 0.5 and meta["num_steps"] == 25 and meta["exporter"] == "talon.bridge.to_ir"
    assert meta["stamp.created_utc"] == "2026-01-01T00:00:00Z" and meta["stamp.versions.talon"] == "0.1.0"
    assert meta["big"] == "array float64 (4, 4)" and meta["small"] == "[1, 2]" and meta["rate"] == 0.5
    assert meta["long"] == "x" * META_CHARS + "\u2026"
    assert meta["source"] == str(path) and meta["format version"] == read_version(path) and meta["drawn by"] == f"talon {talon.__version__}"
    for k, v in HOSTILE_METADATA.items():
        assert meta[k] == v  # exactly the string, carried as JSON data (the page writes it as text)


def test_a_graph_in_memory_has_no_source_and_hostile_metadata_stays_data():
    page = render_html(build_hostile(), title=HOSTILE_TITLE)
    p = _parse(page)
    assert [t for t, _ in p.tags] == EXPECTED_TAGS and not p.comments
    meta = _meta(page)
    assert "source" not in meta and meta["drawn by"] == f"talon {talon.__version__}"
    body = page.replace(_SCRIPT, "")
    assert body.count("<script") == 2 and "<script>window" not in body


def test_a_mapping_is_not_listed_as_metadata():
    from talon.mapping import HardwareSpec, map_graph

    g = build_hostile()
    map_graph(g, HardwareSpec(mesh=(2, 2), neurons_per_core=64)).attach(g)
    assert not [k for k, _ in graph_meta(g) if k.startswith("talon_mapping")]


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium chromium-driver)")


@needs_chromium
def test_keys_zoom_pan_fit_and_reset(tmp_path):
    """Real keydown events, dispatched by a probe script added to a copy of the page (without its
    Content-Security-Policy, which would block the probe)."""
    from viz_graphs import build_staged

    page = export_html(build_staged(), tmp_path / "big.html")
    text = open(page, encoding="utf-8").read()
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    probe = """<script>setTimeout(()=>{const svg=document.getElementById('graph'),vb=()=>svg.getAttribute('viewBox').split(' ').map(Number),out={};
const key=(k,o)=>window.dispatchEvent(new KeyboardEvent('keydown',Object.assign({key:k,bubbles:true,cancelable:true},o||{})));
out.start=vb();key('+');out.plus=vb();key('-');out.minus=vb();key('ArrowRight');out.right=vb();key('ArrowDown');out.down=vb();
key('ArrowLeft');key('ArrowUp');out.back=vb();key('f');out.fit=vb();key('0');out.reset=vb();key('+',{ctrlKey:true});out.ctrl=vb();
document.body.dataset.probe=JSON.stringify(out);},300)</script></body>"""
    probed = tmp_path / "probe.html"
    probed.write_text(text.replace("</body>", probe), encoding="utf-8")
    res = subprocess.run([CHROMIUM, *FLAGS, "--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", "file://" + str(probed)],
                         capture_output=True, text=True, timeout=90)
    m = re.search(r'data-probe="([^"]*)"', res.stdout)
    assert m, res.stderr[-2000:]
    out = json.loads(html_lib.unescape(m.group(1)))
    data = json.loads(html_lib.unescape(re.search(r'id="talon-data">(.*?)</script>', text, re.S).group(1)))
    x0, y0, w0, h0 = out["start"]
    assert out["plus"][2] == pytest.approx(w0 / 1.25) and out["plus"][3] == pytest.approx(h0 / 1.25)  # zoomed in at the centre
    assert out["plus"][0] + out["plus"][2] / 2 == pytest.approx(x0 + w0 / 2)
    assert out["minus"] == pytest.approx(out["start"])
    x, y, w, h = out["right"]
    assert (y, w, h) == pytest.approx((y0, w0, h0)) and x == pytest.approx(x0 + 0.2 * w0)
    assert out["down"][1] == pytest.approx(y0 + 0.2 * h0) and out["back"] == pytest.approx(out["start"])
    fx, fy, fw, fh = out["fit"]
    assert fx <= 0 and fy <= 0 and fx + fw >= data["size"]["w"] and fy + fh >= data["size"]["h"]
    assert out["reset"] == pytest.approx(out["start"]) and out["ctrl"] == pytest.approx(out["start"])  # Ctrl++ is the browser's


@needs_chromium
def test_metadata_is_drawn_as_text(tmp_path):
    g = build_hostile()
    g.metadata["num_steps"] = 25
    path = tmp_path / "m.t1c"
    ir.write(path, g)
    page = export_html(path, tmp_path / "m.html", title=HOSTILE_TITLE)
    dom = _dump_dom("file://" + os.path.abspath(page)).stdout
    summary = html_lib.unescape(re.search(r'<span id="meta-summary">(.*?)</span>', dom, re.S).group(1))
    assert summary.startswith("num_steps 25 \u00b7 dt 1 \u00b7 ") and summary.endswith(f"talon {talon.__version__}")
    table = re.search(r'<table id="meta">(.*?)</table>', dom, re.S).group(1)
    cells = [html_lib.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", table, re.S)]
    for k, v in HOSTILE_METADATA.items():
        assert k in cells and v in cells
    assert "<script>window" not in dom  # drawn as text: only its escaped form is in the DOM
