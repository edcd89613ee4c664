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
