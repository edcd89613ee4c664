"""The Alpha neuron's value bounds (talon.ir.primitives.alpha.membrane_bounds, lint's NEURON_NEVER_FIRES):
sound against the runtime itself over random parameters, inputs and reset modes, and used by lint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from talon import ir
from talon.bridge.primitives.alpha import AlphaRuntime
from talon.ir.primitives.alpha import Alpha, membrane_bounds
from talon.sdk import lint_graph


@settings(max_examples=60, deadline=None)
@given(
    alpha=st.floats(0.3, 0.99), gap=st.floats(0.01, 0.9), thr=st.floats(-0.5, 2.0),
    lo=st.floats(-2.0, 1.0), width=st.floats(0.0, 3.0), mode=st.sampled_from(["subtract", "zero", "none"]), seed=st.integers(0, 1000),
)
def test_membrane_stays_inside_its_bounds(alpha, gap, thr, lo, width, mode, seed):
    beta = max(0.0, alpha - gap)
    node = Alpha(tau_exc=np.float64(1 / (1 - alpha)), tau_inh=np.float64(1 / (1 - beta)), v_threshold=np.float64(thr), reset_mode=mode)
    hi = lo + width
    u_lo, u_hi = membrane_bounds(node, 1.0, np.array(lo), np.array(hi))
    rt = AlphaRuntime(node, 1.0).double()
    g = torch.Generator().manual_seed(seed)
    # extremes held for a while, then random values: what drives the membrane furthest
    xs = torch.cat([torch.full((60, 1, 8), hi, dtype=torch.float64), torch.full((60, 1, 8), lo, dtype=torch.float64),
                    lo + torch.rand((80, 1, 8), generator=g, dtype=torch.float64) * width])
    state = rt.init_state([xs[0]])
    with torch.no_grad():
        for t in range(xs.shape[0]):
            _, state = rt.step([xs[t]], state)
            u = state[2]
            tol = 1e-9 * (1 + abs(float(u_lo)) + abs(float(u_hi)))  # float64 steps: rounding only
            assert float(u.min()) >= float(u_lo) - tol and float(u.max()) <= float(u_hi) + tol, (t, float(u.min()), float(u.max()), u_lo, u_hi)


def test_lint_finds_alpha_neurons_that_never_fire():
    """Negative weights only: the summed input is <= 0, so the membrane (a positive combination of past
    inputs without reset) never rises above 0 < threshold."""
    rng = np.random.default_rng(0)
    w = -rng.random((3, 4)).astype(np.float32)
    g = ir.Graph({"x": ir.Input(shape=(4,)), "fc": ir.Affine(weight=w, bias=np.zeros(3, np.float32)),
                  "a": Alpha(tau_exc=np.float32(10.0), tau_inh=np.float32(2.0), v_threshold=np.float32(0.5)), "y": ir.Output()},
                 [("x", "fc"), ("fc", "a"), ("a", "y")])
    codes = {(f.code, f.node) for f in lint_graph(g).issues}
    assert ("NEURON_NEVER_FIRES", "a") in codes


def test_lint_does_not_flag_alpha_neurons_that_can_fire():
    g = ir.Graph({"x": ir.Input(shape=(4,)), "fc": ir.Affine(weight=np.ones((3, 4), np.float32), bias=np.zeros(3, np.float32)),
                  "a": Alpha(tau_exc=np.float32(10.0), tau_inh=np.float32(2.0), v_threshold=np.float32(0.5)), "y": ir.Output()},
                 [("x", "fc"), ("fc", "a"), ("a", "y")])
    codes = {f.code for f in lint_graph(g).issues if f.node == "a"}
    assert "NEURON_NEVER_FIRES" not in codes and "NO_BOUNDS_RULE" not in codes


@pytest.mark.parametrize("mode", ["zero", "none"])
def test_bounds_without_positive_input_are_zero_or_below(mode):
    """A reset restarts the traces from zero: with inputs <= 0 the membrane, a positive combination of them, stays <= 0."""
    node = Alpha(tau_exc=np.float32(10.0), tau_inh=np.float32(2.0), v_threshold=np.float32(1.0), reset_mode=mode)
    u_lo, u_hi = membrane_bounds(node, 1.0, np.array(-1.0), np.array(0.0))
    assert float(u_hi) == 0.0 and np.isfinite(u_lo) and float(u_lo) < 0.0
