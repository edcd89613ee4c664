"""Where the HTML view draws each node: the (column, row) grid of talon.viz.html.layout folded into bands.

A long chain laid out one column per depth would be one thin row many screens wide. Instead the columns
are cut into bands of at most `band_cols` columns stacked top to bottom, every other band running right
to left (a "snake"), so consecutive columns stay next to each other and the page keeps a readable aspect.
Pure Python and deterministic: the page only draws what this computes.
"""

from __future__ import annotations

import math
from typing import Any

BAND_COLS = 5  # 1170 px per band at 1:1, about the drawing area of a laptop screen beside the side panel


def snake(grid: dict[str, tuple[int, int]], *, w: int, h: int, gx: int, gy: int, band_cols: int = BAND_COLS) -> dict[str, Any]:
    """{"pos": {node: {"x", "y", "band"}}, "w", "h"}: each node's top-left corner in page units and the
    size of the whole drawing. Bands hold equal numbers of columns (the last may hold fewer)."""
    if band_cols < 1:
        raise ValueError(f"band_cols must be at least 1, got {band_cols}")
    ncols = max((c for c, _ in grid.values()), default=-1) + 1
    nbands = max(1, math.ceil(ncols / band_cols))
    per = max(1, math.ceil(ncols / nbands))
    rows_in_band = [0] * nbands
    for col, row in grid.values():
        b = col // per
        rows_in_band[b] = max(rows_in_band[b], row + 1)
    band_gap = 2 * gy  # room for the edges that turn down into the next band
    tops, y = [], 0
    for b in range(nbands):
        tops.append(y)
        y += gy + rows_in_band[b] * (h + gy) + band_gap
    pos = {}
    for name, (col, row) in grid.items():
        b, k = divmod(col, per)
        if b % 2:
            k = per - 1 - k
        pos[name] = {"x": gx + k * (w + gx), "y": tops[b] + gy + row * (h + gy), "band": b}
    width = gx + min(per, max(ncols, 1)) * (w + gx)
    return {"pos": pos, "w": width, "h": max(y - band_gap + gy, h + 2 * gy)}
