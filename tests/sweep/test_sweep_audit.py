"""Sweep points a user writes by mistake or on purpose: a width the conversion refuses is an error of
that point, not a model that "does not fit" the hardware."""

from sweep_fixtures import data, mlp_graph
from talon.sweep import sweep


def test_accumulators_narrower_than_the_weights_are_an_error_not_a_misfit(tmp_path):
    res = sweep(mlp_graph(), data(8), ["weight_bits=8", "accumulator_bits=6,24"], str(tmp_path / "s"), steps=4, encode="rate", progress=False, plots=False)
    bad, good = res.points
    assert bad["status"] == "error" and bad["fits"] is None and bad["metrics"]["fits"] is None
    assert bad["reason"].startswith("convert: ") and "accumulator_bits (6) must be >= weight_bits (8)" in bad["reason"]
    assert good["status"] == "ok" and good["fits"] is True
    assert "error" in (tmp_path / "s" / "results.csv").read_text()


def test_resuming_with_another_readout_function_is_refused(tmp_path):
    import pytest

    from talon.errors import TalonError

    out = str(tmp_path / "s")
    kw = dict(steps=4, encode="rate", progress=False, plots=False)
    sweep(mlp_graph(), data(8), ["weight_bits=8"], out, readout=lambda o: o.sum(0).argmax(1), **kw)
    with pytest.raises(TalonError, match="different sweep .*readout"):
        sweep(mlp_graph(), data(8), ["weight_bits=8"], out, readout=lambda o: o[-1].argmax(1), **kw)
