"""A confusion-matrix plot (talon.eval's results): counts per (label, prediction), recall on the diagonal."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from talon.viz.plots import _figure


def confusion_matrix(matrix: Any, class_names: Sequence[str] | None = None, *, title: str | None = None) -> Any:
    """A Figure of the (K, K) `matrix` (rows: labels, columns: predictions); each cell shows its count."""
    m = np.asarray(matrix)
    K = m.shape[0]
    names = list(class_names) if class_names is not None else [str(k) for k in range(K)]
    side = min(3.0 + 0.45 * K, 12.0)
    fig = _figure(side + 1.0, side)
    ax = fig.add_subplot(1, 1, 1)
    rows = m.sum(axis=1, keepdims=True)
    frac = np.divide(m, rows, out=np.zeros(m.shape, dtype=float), where=rows > 0)
    im = ax.imshow(frac, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, label="fraction of the label's samples")
    if K <= 30:
        for i in range(K):
            for j in range(K):
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=8, color="white" if frac[i, j] > 0.5 else "black")
    ax.set_xticks(range(K), names, rotation=45 if K > 6 else 0, ha="right" if K > 6 else "center")
    ax.set_yticks(range(K), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("label")
    ax.set_title(title or "confusion matrix")
    return fig
