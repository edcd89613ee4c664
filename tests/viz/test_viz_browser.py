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
