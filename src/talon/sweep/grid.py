"""The grid of a sweep: which parameters may vary, how they are written, and the points they expand to.

    parse_grid(["weight_bits=4,6,8", "accumulator_bits=16,24", "hardware=small,loihi-like"])
    expand(grid) -> [Point({"weight_bits": 4, "accumulator_bits": 16, "hardware": "small"}), ...]

The order of the points is the product of the values in the order given (last key fastest). A point is
its parameters as a mapping: its `id` ("weight_bits=4 accumulator_bits=16 hardware=small") writes them in
the canonical order of PARAMETERS, whatever order the grid gave its keys in, and names it in results.json
and for resuming.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from talon.errors import TalonError


def _int_in(lo: int, hi: int) -> Callable[[str, Any], int]:
    def parse(key: str, v: Any) -> int:
        try:
            n = int(str(v).strip()) if not isinstance(v, bool) else None
        except ValueError:
            n = None
        if n is None or not lo <= n <= hi:
            raise TalonError(f"sweep grid: {key}={v!r} must be a whole number in [{lo}, {hi}]")
        return n

    return parse


def _hardware(key: str, v: Any) -> str:
    from talon.mapping.hardware import PRESETS

    name = str(v).strip()
    if name not in PRESETS:
        raise TalonError(f"sweep grid: unknown hardware preset {name!r}; presets: {', '.join(sorted(PRESETS))}")
    return name


def _algorithm(key: str, v: Any) -> str:
    from talon.mapping.partition import ALGORITHMS

    name = str(v).strip()
    if name not in (*ALGORITHMS, "auto"):
        raise TalonError(f"sweep grid: unknown mapping algorithm {name!r}; algorithms: {', '.join((*ALGORITHMS, 'auto'))}")
    return name


def _mesh(key: str, v: Any) -> str:
    text = "x".join(str(int(d)) for d in v) if isinstance(v, (tuple, list)) else str(v).strip().lower()
    parts = text.split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise TalonError(f"sweep grid: mesh={v!r} must be ROWSxCOLS, e.g. 4x4")
    return f"{int(parts[0])}x{int(parts[1])}"


# The parameters a point may set, their parser, and what they mean (docs/sweep.md).
PARAMETERS: dict[str, Callable[[str, Any], Any]] = {
    "weight_bits": _int_in(2, 16),
    "accumulator_bits": _int_in(4, 48),
    "hardware": _hardware,
    "mesh": _mesh,
    "neurons_per_core": _int_in(1, 1 << 24),
    "algorithm": _algorithm,
}
DEFAULTS: dict[str, Any] = {"weight_bits": 8, "accumulator_bits": None, "hardware": "small", "mesh": None, "neurons_per_core": None, "algorithm": "auto"}


def point_key(params: Mapping[str, Any]) -> str:
    """The words of a point's parameters in the canonical order of PARAMETERS (its id): the same mapping,
    given in any order, has the same key."""
    unknown = [k for k in params if k not in PARAMETERS]
    if unknown:
        raise TalonError(f"sweep point: unknown parameter(s) {unknown}; parameters: {', '.join(PARAMETERS)}")
    return " ".join(f"{k}={params[k]}" for k in PARAMETERS if k in params)


@dataclass(frozen=True)
class Point:
    """One point of the grid: the swept parameters (in grid order, the CSV's columns); `settings` adds the
    defaults; `id`/`key` name the point whatever the order of the grid's keys."""

    params: tuple[tuple[str, Any], ...]

    @property
    def key(self) -> str:
        return point_key(dict(self.params))

    @property
    def id(self) -> str:
        return self.key

    @property
    def settings(self) -> dict[str, Any]:
        return {**DEFAULTS, **dict(self.params)}


def parse_grid(grid: Mapping[str, Any] | Iterable[str]) -> dict[str, list[Any]]:
    """{parameter: [values]} from a dict ({"weight_bits": [4, 8]} or "4,8") or "key=v1,v2" strings."""
    items: list[tuple[str, Any]]
    if isinstance(grid, Mapping):
        items = list(grid.items())
    else:
        items = []
        for word in grid:
            key, sep, values = str(word).partition("=")
            if not sep or not values.strip():
                raise TalonError(f"sweep grid: {word!r} is not KEY=V1,V2,...; keys: {', '.join(PARAMETERS)}")
            items.append((key.strip(), values))
    out: dict[str, list[Any]] = {}
    for key, values in items:
        if key not in PARAMETERS:
            raise TalonError(f"sweep grid: unknown parameter {key!r}; parameters: {', '.join(PARAMETERS)}")
        if key in out:
            raise TalonError(f"sweep grid: {key!r} is given twice; give all its values once, comma-separated")
        raw = [v for v in values.split(",")] if isinstance(values, str) else list(values) if isinstance(values, (list, tuple)) else [values]
        parsed = [PARAMETERS[key](key, v) for v in raw]
        if len(set(parsed)) != len(parsed):
            raise TalonError(f"sweep grid: {key} lists a value twice: {raw}")
        if not parsed:
            raise TalonError(f"sweep grid: {key} has no values")
        out[key] = parsed
    if not out:
        raise TalonError(f"sweep grid: no parameters; give at least one of {', '.join(PARAMETERS)}")
    return out


def expand(grid: Mapping[str, list[Any]]) -> list[Point]:
    """Every combination of the grid's values, first key slowest."""
    keys = list(grid)
    return [Point(tuple(zip(keys, combo))) for combo in itertools.product(*(grid[k] for k in keys))]
