"""Hostile names, titles and metadata in the HTML view: parsed with Python's html.parser, the page has
exactly its own elements and scripts, the data round-trips exactly, and nothing hostile is markup."""

from __future__ import annotations

import base64
import hashlib
import json
from html.parser import HTMLParser

import pytest
from hostile import HOSTILE_METADATA, HOSTILE_NAMES, HOSTILE_TITLE, build_hostile

from talon import ir
from talon.viz.html import _SCRIPT, export_html, render_html, script_json

EXPECTED_TAGS = ["html", "head", "meta", "meta", "meta", "title", "style", "body", "header", "h1", "span", "main", "div", "aside", "script", "script"]


class Page(HTMLParser):
    """Every start tag with its attributes, the text inside each element, and each script's content."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.stack: list[str] = []
        self.text: dict[str, str] = {}
        self.scripts: list[tuple[dict, str]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag != "meta":
            self.stack.append(tag)
        if tag == "script":
            self.scripts.append((dict(attrs), ""))

    def handle_endtag(self, tag):
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        where = self.stack[-1] if self.stack else ""
        self.text[where] = self.text.get(where, "") + data
        if where == "script":
            attrs, content = self.scripts[-1]
            self.scripts[-1] = (attrs, content + data)

    def handle_comment(self, data):
        self.comments.append(data)


def _parse(page: str) -> Page:
    p = Page()
    p.feed(page)
    p.close()
    return p


@pytest.fixture
def page() -> str:
    return render_html(build_hostile(), title=HOSTILE_TITLE)


def test_only_the_pages_own_elements_and_scripts(page):
    p = _parse(page)
    assert [t for t, _ in p.tags] == EXPECTED_TAGS
    assert not p.comments
    assert not [(t, a) for t, a in p.tags for k in a if k.startswith("on")]
    (data_attrs, data), (code_attrs, code) = p.scripts
    assert data_attrs == {"type": "application/json", "id": "talon-data"}
    assert code_attrs == {} and code == _SCRIPT


def test_the_data_round_trips_exactly(page):
    p = _parse(page)
    data = json.loads(p.scripts[0][1])
    assert [n["name"] for n in data["nodes"]] == ["in", *HOSTILE_NAMES, "out"]
    assert data["title"] == HOSTILE_TITLE
    assert {(e["src"], e["dst"]) for e in data["edges"]} == set(build_hostile().edges)


def test_title_is_text_in_both_places(page):
    p = _parse(page)
    assert p.text["title"] == HOSTILE_TITLE
    assert p.text["h1"] == HOSTILE_TITLE


def test_no_hostile_string_is_raw_markup(page):
    body = page.replace(_SCRIPT, "")  # the page's own script is checked verbatim above
    for s in [*HOSTILE_NAMES, HOSTILE_TITLE, *HOSTILE_METADATA.values()]:
        for piece in ("<img", "<svg", "<script>window", "</script><", "<!--", "\u2028", "\u2029"):
            if piece in s:
                assert piece not in body, (s, piece)
    assert body.count("<script") == 2 and body.count("</script>") == 2
    # placeholders inside values are not filled in again
    assert page.count("<style>") == 1 and page.count(_SCRIPT) == 1


def test_only_the_pages_own_script_may_run(page):
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode()
    csp = next(a["content"] for t, a in _parse(page).tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert f"script-src 'sha256-{digest}'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


@pytest.mark.parametrize("text", ["</script>", "<!--", "a&b", "\u2028\u2029", "x>y", "</SCRIPT >", "<\\/script>"])
def test_script_json_escapes_what_could_end_the_element(text):
    out = script_json({"k": text})
    assert "<" not in out and ">" not in out and "&" not in out and "\u2028" not in out and "\u2029" not in out
    assert json.loads(out) == {"k": text}


def test_default_title_from_a_hostile_file_name(tmp_path):
    """The command line's default title is the file name: a name holding __DATA__ and markup stays text."""
    from click.testing import CliRunner

    from talon.cli import cli

    model = tmp_path / "__DATA__ <img src=x onerror=alert(1)>.t1c"
    ir.write(model, build_hostile())
    out = tmp_path / "page.html"
    res = CliRunner().invoke(cli, ["export-html", str(model), "-o", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    p = _parse(out.read_text(encoding="utf-8"))
    assert [t for t, _ in p.tags] == EXPECTED_TAGS
    assert p.text["h1"] == model.name and json.loads(p.scripts[0][1])["title"] == model.name


def test_undecodable_file_name_title(tmp_path):
    """A file name with bytes that are not UTF-8 (a surrogate escape in Python) still gives a page."""
    title = "model-\udcff.t1c"
    out = export_html(build_hostile(), tmp_path / "p.html", title=title)
    p = _parse(open(out, encoding="utf-8").read())
    assert p.text["h1"] == "model-\\udcff.t1c"
