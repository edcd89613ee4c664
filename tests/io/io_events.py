"""Random event arrays shared by the talon.io tests."""

import numpy as np

from talon.io import EVENT_DTYPE


def random_events(n: int = 3000, width: int = 64, height: int = 48, seed: int = 0, t_max: int = 200_000) -> np.ndarray:
    """Sorted events with every field exercised (both polarities, border pixels, equal timestamps)."""
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, t_max, n))
    ev["x"] = rng.integers(0, width, n)
    ev["y"] = rng.integers(0, height, n)
    ev["p"] = rng.integers(0, 2, n).astype(bool)
    ev[:2]["x"], ev[:2]["y"] = (0, width - 1), (height - 1, 0)
    return ev

