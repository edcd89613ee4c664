"""The HTML view in headless Chromium: the page loads offline, every node is drawn, clicking one opens it.

Needs Debian's chromium (and, for the selenium variant, chromium-driver and the selenium package); skips
with the reason when they are absent. Without selenium, chromium's --dump-dom runs the page with
"#select=<node>", which makes the page dispatch a real click event on that node.
"""

import os
import re
import shutil
import subprocess

import pytest

from talon.viz.html import export_html

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "", shutil.which("google-chrome") or "") if p and os.path.exists(p)), None)
DRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver") or "") if p and os.path.exists(p)), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install chromium chromium-driver)")


@pytest.fixture
def page(branchy, branchy_mapping, tmp_path):
    return export_html(branchy, tmp_path / "model.html", mapping=branchy_mapping, title="branchy")


def _selenium_driver():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    if DRIVER is None:
        return None
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS:
        opts.add_argument(f)
    opts.add_argument("--window-size=1400,900")
    return webdriver.Chrome(service=Service(DRIVER), options=opts)


def test_click_a_node_with_selenium(page, branchy):
    driver = _selenium_driver()
    if driver is None:
        pytest.skip("selenium or chromium-driver not installed (the --dump-dom test covers the page)")
    from selenium.webdriver.common.by import By

    try:
        driver.get("file://" + os.path.abspath(page))
        assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1"
        nodes = driver.find_elements(By.CSS_SELECTOR, "svg g.node")
        assert sorted(n.get_attribute("data-name") for n in nodes) == sorted(branchy.nodes)
        target = next(n for n in nodes if n.get_attribute("data-name") == "fc_b")
        target.click()
        assert driver.find_element(By.ID, "panel-title").text == "fc_b"
        assert "selected" in target.get_attribute("class")
        assert driver.find_element(By.ID, "heatmap").size["width"] > 0
        cores = driver.find_elements(By.CSS_SELECTOR, "#mesh .core.on")
        assert cores, "the node's cores light up on the mesh"
        side = driver.find_element(By.ID, "side").text
        assert "SpikingAffine" in side or "Affine" in side and "1,200" in side
        assert not [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
    finally:
        driver.quit()


def test_click_a_node_dump_dom(page, branchy):
    url = "file://" + os.path.abspath(page) + "#select=fc_b"
    res = subprocess.run([CHROMIUM, *FLAGS, "--virtual-time-budget=5000", "--dump-dom", url], capture_output=True, text=True, timeout=60)
    dom = res.stdout
    assert 'data-ready="1"' in dom, res.stderr[-2000:]
    names = re.findall(r'<g class="node[^"]*"[^>]*data-name="([^"]+)"', dom)
    assert sorted(names) == sorted(branchy.nodes)
    assert re.search(r'<g class="node selected"[^>]*data-name="fc_b"', dom)
    assert re.search(r'id="panel-title">fc_b<', dom)
    assert 'id="heatmap"' in dom and dom.count('class="core') == 9


# -- hostile names, title and metadata (tests/viz/hostile.py) -------------------------------------------------

def _dump_dom(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, "--virtual-time-budget=5000", "--dump-dom", url], capture_output=True, text=True, timeout=60)


def test_hostile_page_runs_nothing_and_draws_every_node(tmp_path):
    """No injected handler or script runs (it would set window.__pwned, which the page below reports), the
    page is not blanked, and every hostile name is drawn as text."""
    import html as html_lib

    from hostile import HOSTILE_NAMES, HOSTILE_TITLE, build_hostile

    g = build_hostile()
    page = export_html(g, tmp_path / "hostile.html", title=HOSTILE_TITLE)
    # The escaping is tested without the page's Content-Security-Policy (which would also stop injected
    # code): a probe script added at the end records in the DOM whether any injected code has run.
    text = open(page, encoding="utf-8").read()
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    assert text.count("</body>") == 1
    text = text.replace("</body>", "<script>setTimeout(()=>{document.body.dataset.pwned=String(window.__pwned||'none')},1000)</script></body>")
    probe = tmp_path / "probe.html"
    probe.write_text(text, encoding="utf-8")
    res = _dump_dom("file://" + str(probe))
    dom = res.stdout
    assert 'data-ready="1"' in dom, res.stderr[-2000:]
    assert 'data-pwned="none"' in dom, re.findall(r"<body[^>]*>", dom)
    names = [html_lib.unescape(n) for n in re.findall(r'<g class="node[^"]*"[^>]*data-name="([^"]*)"', dom)]
    assert sorted(names) == sorted(g.nodes)
    assert not re.search(r"<img[^>]*onerror", dom) and "<svg onload" not in dom
    h1 = re.search(r"<h1>(.*?)</h1>", dom, re.S).group(1)
    assert html_lib.unescape(h1) == HOSTILE_TITLE
    for name in HOSTILE_NAMES:
        assert html_lib.escape(name, quote=False) in dom or name in html_lib.unescape(dom)


def test_hostile_node_opens_in_the_side_panel(tmp_path):
    from urllib.parse import quote

    from hostile import HOSTILE_NAMES, build_hostile

    page = export_html(build_hostile(), tmp_path / "hostile.html")
    target = HOSTILE_NAMES[0]
    res = _dump_dom("file://" + os.path.abspath(page) + "#select=" + quote(target, safe=""))
    import html as html_lib

    title = re.search(r'id="panel-title">(.*?)</h2>', res.stdout, re.S)
    assert title and html_lib.unescape(title.group(1)) == target, res.stderr[-2000:]


# -- what a person sees on big graphs: the page's "#measure" mode reports on-screen boxes in CSS pixels -----

def _measure(page: str, tmp_path=None) -> dict:
    import html as html_lib
    import json

    res = subprocess.run([CHROMIUM, *FLAGS, "--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", "file://" + os.path.abspath(page) + "#measure"],
                         capture_output=True, text=True, timeout=90)
    m = re.search(r'data-measure="([^"]*)"', res.stdout)
    assert m, res.stderr[-2000:]
    return json.loads(html_lib.unescape(m.group(1)))


def _overlap(a, b, slack=0.5) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax + aw - slack > bx and bx + bw - slack > ax and ay + ah - slack > by and by + bh - slack > ay


def _inside(inner, outer, slack=1.0) -> bool:
    ix, iy, iw, ih = inner
    ox, oy, ow, oh = outer
    return ix >= ox - slack and iy >= oy - slack and ix + iw <= ox + ow + slack and iy + ih <= oy + oh + slack


@pytest.fixture(scope="module")
def big_page(tmp_path_factory):
    from viz_graphs import build_staged

    from talon.mapping import HardwareSpec, map_graph

    g = build_staged()
    mapping = map_graph(g, HardwareSpec(mesh=(32, 32), neurons_per_core=2))
    return g, export_html(g, tmp_path_factory.mktemp("big") / "big.html", mapping=mapping)


@pytest.fixture(scope="module")
def big_measure(big_page) -> dict:
    """The big page's "#measure" report (one Chromium run, read by the tests of its nodes and of its mesh)."""
    return _measure(big_page[1])


def test_big_graph_is_readable_at_the_first_view(big_page, big_measure):
    """62 nodes: every box at least 60x24 px on screen, every label at least 10 px and inside its own box,
    no two boxes and no two labels overlapping, long names cut with an ellipsis rather than spilling."""
    g, _ = big_page
    ms = big_measure
    assert [n["name"] for n in ms["nodes"]] == list(g.nodes)
    boxes = [n["box"] for n in ms["nodes"]]
    assert min(b[2] for b in boxes) >= 60 and min(b[3] for b in boxes) >= 24, ms["scale"]
    labels = [lab for n in ms["nodes"] for lab in n["labels"]]
    assert min(lab["font"] for lab in labels) >= 10
    for n in ms["nodes"]:
        for lab in n["labels"]:
            assert _inside(lab["box"], n["box"]), (n["name"], lab)
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not _overlap(boxes[i], boxes[j]), (ms["nodes"][i]["name"], ms["nodes"][j]["name"])
    label_boxes = [lab["box"] for lab in labels]
    overlaps = [(i, j) for i in range(len(label_boxes)) for j in range(i + 1, len(label_boxes)) if _overlap(label_boxes[i], label_boxes[j])]
    assert overlaps == []
    names = {n["name"]: n["labels"][0]["text"] for n in ms["nodes"]}
    assert names["input"] == "input" and names["stage11_branch1_leaky"].endswith("\u2026")
    assert "stage11_branch1_leaky".startswith(names["stage11_branch1_leaky"][:-1])


def test_32x32_mesh_cells_are_legible(big_measure):
    """A 32x32 mesh: 1024 cells of at least 14 px (the panel scrolls), drawn as a heatmap without text that
    would be too small, every core described by its tooltip; a 3x3 mesh writes its values, and they fit."""
    cells = big_measure["cells"]
    assert len(cells) == 1024
    assert min(c["box"][2] for c in cells) >= 14 and min(c["box"][3] for c in cells) >= 14
    assert all(c["text"] == "" for c in cells) and all(c["title"] for c in cells)
    assert sum(c["title"].startswith("core ") for c in cells) > 0


def test_small_mesh_values_fit(page):
    cells = _measure(page)["cells"]
    assert len(cells) == 9 and any(c["text"] for c in cells)
    assert all(c["fits"] and c["font"] >= 10 for c in cells if c["text"])


def test_invalid_graph_shows_a_red_banner(branchy, tmp_path):
    from talon import ir

    branchy.add_node("stray", ir.Output())
    page = export_html(branchy, tmp_path / "bad.html")
    dom = _dump_dom("file://" + os.path.abspath(page)).stdout
    banner = re.search(r'<div id="banner" role="alert">(.*?)</div>', dom, re.S)
    assert banner and "does not validate" in banner.group(1) and "stray" in banner.group(1)
    assert len(re.findall(r'<g class="node', dom)) == len(branchy.nodes)  # the graph is still drawn


def test_wheel_zooms_at_the_pointer_drag_pans_and_fit_shows_everything(big_page, tmp_path):
    """Real wheel, pointer and click events, dispatched by a probe script added to a copy of the page
    (without its Content-Security-Policy, which would block the probe)."""
    import json

    _, page = big_page
    text = open(page, encoding="utf-8").read()
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", text)
    probe = """<script>setTimeout(()=>{const svg=document.getElementById('graph'),vb=()=>svg.getAttribute('viewBox').split(' ').map(Number),out={};
out.start=vb();const r=svg.getBoundingClientRect();out.width=r.width;out.height=r.height;
svg.dispatchEvent(new WheelEvent('wheel',{deltaY:-300,clientX:r.left+100,clientY:r.top+100,bubbles:true,cancelable:true}));out.zoomed=vb();
svg.dispatchEvent(new PointerEvent('pointerdown',{button:0,clientX:300,clientY:300,bubbles:true}));
window.dispatchEvent(new PointerEvent('pointermove',{clientX:200,clientY:250,bubbles:true}));window.dispatchEvent(new PointerEvent('pointerup',{bubbles:true}));out.panned=vb();
document.getElementById('fit').click();out.fit=vb();document.body.dataset.probe=JSON.stringify(out);},300)</script></body>"""
    probed = tmp_path / "probe.html"
    probed.write_text(text.replace("</body>", probe), encoding="utf-8")
    res = subprocess.run([CHROMIUM, *FLAGS, "--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom", "file://" + str(probed)], capture_output=True, text=True, timeout=90)
    m = re.search(r'data-probe="([^"]*)"', res.stdout)
    assert m, res.stderr[-2000:]
    import html as html_lib

    out = json.loads(html_lib.unescape(m.group(1)))
    data = json.loads(html_lib.unescape(re.search(r'id="talon-data">(.*?)</script>', text, re.S).group(1)))
    (x0, y0, w0, h0), (x1, y1, w1, h1) = out["start"], out["zoomed"]
    assert w1 < w0 and h1 < h0  # zoomed in ...
    # ... about the pointer: the page point under it (100 px from the corner) stays under it, to within the
    # rounding of the canvas to whole pixels
    cw, ch = out["width"], out["height"]
    assert abs((x0 + 100 * w0 / cw) - (x1 + 100 * w1 / cw)) < 0.5 and abs((y0 + 100 * h0 / ch) - (y1 + 100 * h1 / ch)) < 0.5
    x2, y2, w2, h2 = out["panned"]
    assert (w2, h2) == (w1, h1) and x2 > x1 and y2 > y1  # dragged up-left: the view moves down-right
    fx, fy, fw, fh = out["fit"]
    assert fx <= 0 and fy <= 0 and fx + fw >= data["size"]["w"] and fy + fh >= data["size"]["h"]


def test_select_pans_a_far_node_into_view(big_page):
    """#select= on the last node of a 62-node graph (far below the first view) opens it and brings it on
    screen, still at a readable size."""
    import html as html_lib
    import json

    g, page = big_page
    res = subprocess.run([CHROMIUM, *FLAGS, "--window-size=1400,900", "--virtual-time-budget=5000", "--dump-dom",
                          "file://" + os.path.abspath(page) + "#select=output&measure"], capture_output=True, text=True, timeout=90)
    assert re.search(r'id="panel-title">output<', res.stdout), res.stderr[-2000:]
    ms = json.loads(html_lib.unescape(re.search(r'data-measure="([^"]*)"', res.stdout).group(1)))
    (node,) = [n for n in ms["nodes"] if n["name"] == "output"]
    x, y, w, h = node["box"]
    cx, cy, cw, ch = ms["canvas"]
    assert cx <= x and x + w <= cx + cw and cy <= y and y + h <= cy + ch and w >= 60
