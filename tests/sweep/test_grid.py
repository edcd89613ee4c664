"""talon.sweep.grid: the grid's words, their checks, and the order of the points."""

import pytest

from talon.errors import TalonError
from talon.sweep import expand, parse_grid


def test_cli_words_and_dicts_give_the_same_grid():
    words = parse_grid(["weight_bits=4,6,8", "accumulator_bits=16,24", "hardware=small,loihi-like", "mesh=4X4", "algorithm=greedy"])
    assert words == parse_grid({"weight_bits": [4, 6, 8], "accumulator_bits": (16, 24), "hardware": ["small", "loihi-like"], "mesh": [(4, 4)], "algorithm": "greedy"})
    assert words["mesh"] == ["4x4"] and words["weight_bits"] == [4, 6, 8]


def test_points_are_the_product_first_key_slowest():
    pts = expand(parse_grid(["weight_bits=4,8", "accumulator_bits=16,24"]))
    assert [p.id for p in pts] == ["weight_bits=4 accumulator_bits=16", "weight_bits=4 accumulator_bits=24",
                                   "weight_bits=8 accumulator_bits=16", "weight_bits=8 accumulator_bits=24"]
    assert pts[0].settings == {"weight_bits": 4, "accumulator_bits": 16, "hardware": "small", "mesh": None, "neurons_per_core": None, "algorithm": "auto"}


@pytest.mark.parametrize("grid, words", [
    (["weight_bit=4"], "unknown parameter 'weight_bit'"),
    (["weight_bits=1"], "weight_bits='1' must be a whole number in [2, 16]"),
    (["accumulator_bits=16,x"], "accumulator_bits='x'"),
    (["hardware=loihi"], "unknown hardware preset 'loihi'"),
    (["mesh=4"], "mesh='4' must be ROWSxCOLS"),
    (["algorithm=kl"], "unknown mapping algorithm 'kl'"),
    (["weight_bits"], "is not KEY=V1,V2"),
    (["weight_bits=4,4"], "lists a value twice"),
    (["weight_bits=4", "weight_bits=8"], "is given twice"),
    ([], "no parameters"),
])
def test_bad_grids_are_named(grid, words):
    with pytest.raises(TalonError) as exc:
        parse_grid(grid)
    assert words in str(exc.value)
