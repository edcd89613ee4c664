"""Hostile strings for the HTML view: names, a title and metadata that try to break out of the page."""

from __future__ import annotations

import numpy as np

from talon import ir

HOSTILE_NAMES = [
    "<img src=x onerror=window.__pwned=1>",
    "<script>window.__pwned=2",  # node names cannot hold "/": the title and metadata carry "</script>"
    "<!--",
    "__DATA__",
    "__SCRIPT__ & __STYLE__ & __TITLE__",
    'a"b\'c`d',
    "\u2028line\u2029sep",
    "<svg onload=window.__pwned=3>",
]
HOSTILE_TITLE = "__DATA__ </title><script>window.__pwned=4</script> <!-- & __SCRIPT__"
HOSTILE_METADATA = {"note": "</script><!--<script>window.__pwned=5</script>", "__DATA__": "__STYLE__"}


def build_hostile() -> ir.Graph:
    """A valid graph: Input -> one ReLU per hostile name (a chain) -> Output, with hostile metadata."""
    g = ir.Graph(metadata=dict(HOSTILE_METADATA))
    g.add_node("in", ir.Input(shape=(3,)))
    prev = "in"
    for name in HOSTILE_NAMES:
        g.add_node(name, ir.Affine(weight=np.eye(3, dtype=np.float32), bias=np.zeros(3, np.float32)) if prev == "in" else ir.ReLU())
        g.add_edge(prev, name)
        prev = name
    g.add_node("out", ir.Output())
    g.add_edge(prev, "out")
    return g
