"""talon.viz: a self-contained HTML view of a graph and matplotlib plots. Never imports torch.

    from talon.viz import export_html, plots
    export_html(graph, "model.html", mapping=result)      # offline page, no external scripts
    show(graph)                                           # the same view inline in Jupyter
    fig = plots.spike_raster(simulation)                  # matplotlib Figure (Agg-safe, no pyplot)
    fig = accuracy.accuracy_by_step(evaluation)           # and confusion.confusion_matrix(matrix)
"""

from __future__ import annotations

from typing import Any

__all__ = ["export_html", "render_html", "show", "plots", "confusion", "accuracy"]


def __getattr__(name: str) -> Any:  # lazy: `import talon.viz` stays cheap (no matplotlib until asked)
    import importlib

    if name in ("export_html", "render_html", "show"):
        return getattr(importlib.import_module("talon.viz.html"), name)
    if name in ("plots", "html", "layout", "confusion", "accuracy"):
        return importlib.import_module(f"talon.viz.{name}")
    raise AttributeError(f"module 'talon.viz' has no attribute {name!r}")
