"""The accuracy-against-steps plot of an evaluation (talon.eval): how accurate the readout is had the run
stopped after each step, one line per numeric mode. Shows how many steps a model needs."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from talon.viz.plots import _COLOURS, _figure


def accuracy_by_step(result: Any, *, title: str | None = None) -> Any:
    """A Figure of accuracy (%) against steps run. `result`: an EvaluationResult (each mode's
    `scores[m].accuracy_by_step`), {label: (T,) accuracies in [0, 1]} or one (T,) array."""
    from talon.errors import TalonUsageError

    scores = getattr(result, "scores", None)
    if scores is not None:
        curves = {m: s.accuracy_by_step for m, s in scores.items()}
        if any(c is None for c in curves.values()):
            raise TalonUsageError("this evaluation used a custom readout, which has no per-step accuracy: evaluate with readout='count' or 'last'")
    elif isinstance(result, Mapping):
        curves = dict(result)
    else:
        curves = {"accuracy": result}
    curves = {str(k): np.asarray(v, dtype=float).reshape(-1) for k, v in curves.items()}
    if not curves or any(c.size == 0 for c in curves.values()):
        raise TalonUsageError("accuracy_by_step needs a non-empty (T,) accuracy per step")
    fig = _figure(7.0, 4.0)
    ax = fig.add_subplot()
    for i, (label, c) in enumerate(curves.items()):
        ax.plot(np.arange(1, c.size + 1), 100 * c, marker="o" if c.size <= 40 else None, ms=3, label=f"{label} (final {100 * c[-1]:.1f}%)", color=_COLOURS[i % len(_COLOURS)])
    ax.set_xlabel("steps run (timesteps)")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_xlim(0.5, max(c.size for c in curves.values()) + 0.5)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title or "accuracy against steps")
    return fig
