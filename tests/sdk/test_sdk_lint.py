"""lint_graph: every check on a graph built to trigger it, plus the clean cases."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from talon import ir
from talon.errors import GraphValidationError, TalonUsageError
from talon.ir.node import Node, array, primitive
from talon.sdk import CODES, LintResult, Severity, _bounds, bounds_types, lint_graph, register_bounds
from talon.sdk.cost import Counts, register_cost

from sdk_graphs import affine, build_hybrid, build_mlp, lif

f32 = np.float32
REPO = Path(__file__).resolve().parents[2]
SEEN: set[str] = set()


def codes(result: LintResult) -> list[str]:
    SEEN.update(result.codes)
    return result.codes


def chain(nodes: dict, dt: float = 1.0) -> ir.Graph:
    g = ir.Graph(nodes, dt=dt)
    g.chain(*nodes)
    return g


def small(**overrides) -> ir.Graph:
    rng = np.random.default_rng(0)
    fc = ir.Affine(weight=rng.uniform(0.2, 1.0, (3, 4)).astype(f32), bias=np.zeros(3, f32))  # every neuron can fire
    nodes = {"x": ir.Input(shape=(4,)), "fc": fc, "lif": lif(3), "y": ir.Output()}
    nodes.update(overrides)
    return chain(nodes)


def test_clean_graph_has_no_issues():
    r = lint_graph(small())
    assert r.issues == [] and r.is_valid and len(r) == 0 and str(r).startswith("0 error(s)")


def test_tutorial_hybrid_is_clean_its_input_name_is_generated():
    """The exporter names a graph's Input "input": a builtin's name, but TALON's choice, not the user's."""
    r = lint_graph(build_hybrid())
    assert r.issues == [] and r.is_valid


def test_builtin_names_a_user_chose_still_warn():
    g = small()
    g = chain({"sum": ir.Input(shape=(4,)), "input": g.nodes["fc"], "lif": g.nodes["lif"], "output": ir.Output()})
    r = lint_graph(g)
    assert [(i.code, i.node) for i in r] == [("NAME_SHADOWS_BUILTIN", "sum"), ("NAME_SHADOWS_BUILTIN", "input")]
    issue = r.issues[1]
    assert issue.severity is Severity.WARNING and issue.severity.value == "warning"
    assert "builtin" in issue.message and "not a keyword" in issue.message
    codes(r)


def test_a_fresh_snntorch_export_passes_lint_warnings_as_errors(tmp_path):
    """`talon lint --warnings-as-errors` on what to_ir writes: the exporter's own names must not fail it."""
    torch = pytest.importorskip("torch")
    snn = pytest.importorskip("snntorch")
    from click.testing import CliRunner

    from talon.bridge import to_ir
    from talon.cli import cli

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 12), snn.Leaky(beta=0.9, init_hidden=True), torch.nn.Linear(12, 4),
                              snn.Leaky(beta=0.8, init_hidden=True, output=True))
    with torch.no_grad():  # every neuron can fire on inputs in [0, 1] (else NEURON_NEVER_FIRES, rightly)
        for layer in (net[0], net[2]):
            layer.weight.uniform_(0.1, 0.5)
    graph = to_ir(net, torch.rand(1, 6))
    assert "input" in graph.nodes and lint_graph(graph).warnings == []
    ir.write(tmp_path / "net.t1c", graph)
    result = CliRunner().invoke(cli, ["lint", str(tmp_path / "net.t1c"), "--warnings-as-errors"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_names():
    rng = np.random.default_rng(0)
    g = chain({"class": ir.Input(shape=(4,)), "features.0": affine(3, 4, rng), "sum": ir.ReLU(), "ValueError": ir.ReLU(), "out": ir.Output()})
    r = lint_graph(g)
    by = {i.node: i for i in r}
    assert by["class"].code == "NAME_IS_KEYWORD" and by["class"].severity is Severity.WARNING
    assert by["features.0"].code == "NAME_NOT_IDENTIFIER" and by["features.0"].severity is Severity.INFO
    assert by["sum"].code == "NAME_SHADOWS_BUILTIN" and "builtin function" in by["sum"].message
    assert "builtin exception" in by["ValueError"].message
    codes(r)


def test_structure_errors():
    g = small()
    g.add_node("lonely", ir.ReLU())
    g.add_node("orphan", ir.ReLU())
    g.add_node("dead", ir.ReLU())
    g.add_edge("orphan", "y")  # y now has two inputs, orphan none
    g.add_edge("fc", "dead")
    r = lint_graph(g)
    c = codes(r)
    assert ("DISCONNECTED_NODE", "lonely") in [(i.code, i.node) for i in r]
    assert ("UNREACHABLE_NODE", "orphan") in [(i.code, i.node) for i in r]
    assert ("DEAD_END_NODE", "dead") in [(i.code, i.node) for i in r]
    assert ("WRONG_INPUT_COUNT", "orphan") in [(i.code, i.node) for i in r]
    assert ("WRONG_INPUT_COUNT", "y") in [(i.code, i.node) for i in r]
    assert not r.is_valid
    assert c.index("WRONG_INPUT_COUNT") < c.index("DISCONNECTED_NODE")  # errors first


def test_missing_io_and_dangling_edge():
    rng = np.random.default_rng(0)
    g = ir.Graph({"fc": affine(2, 2, rng)})
    g.edges.append(("fc", "ghost"))  # bypassing add_edge, as a hand-edited graph might
    c = codes(lint_graph(g))
    assert {"NO_INPUT", "NO_OUTPUT", "DANGLING_EDGE"} <= set(c)


def test_wrong_output_count():
    g = ir.Graph({"x": ir.Input(shape=(4,)), "split": ir.ChannelSplit(split_sections=(2, 2)), "y": ir.Output()})
    g.chain("x", "split", "y")
    r = lint_graph(g)
    assert "WRONG_OUTPUT_COUNT" in codes(r)


def test_shape_mismatch_names_the_node():
    rng = np.random.default_rng(0)
    g = small(fc=affine(3, 5, rng))
    r = lint_graph(g)
    (issue,) = [i for i in r if i.code == "SHAPE_MISMATCH"]
    SEEN.add("SHAPE_MISMATCH")
    assert issue.node == "fc" and "(4,)" in issue.message and "'x'" in issue.message
    assert not r.is_valid


def test_cycle_without_state():
    g = ir.Graph({"x": ir.Input(shape=(3,)), "add": ir.Skip(), "act": ir.ReLU(), "y": ir.Output()})
    for e in [("x", "add"), ("act", "add"), ("add", "act"), ("act", "y")]:
        g.add_edge(*e)
    r = lint_graph(g)
    (issue,) = [i for i in r if i.code == "CYCLE_WITHOUT_STATE"]
    SEEN.add(issue.code)
    assert "add" in issue.message and "act" in issue.message
    # the same loop through a neuron is fine
    g2 = ir.Graph({"x": ir.Input(shape=(3,)), "fc": affine(3, 3, np.random.default_rng(0)), "lif": lif(3), "rec": affine(3, 3, np.random.default_rng(1)), "y": ir.Output()})
    for e in [("x", "fc"), ("fc", "lif"), ("rec", "lif"), ("lif", "rec"), ("lif", "y")]:
        g2.add_edge(*e)
    assert lint_graph(g2).issues == []


def test_nonfinite_parameters():
    rng = np.random.default_rng(0)
    fc = affine(3, 4, rng)
    w = np.abs(fc.weight)
    w[0, 0], w[1, 1] = np.nan, np.inf
    r = lint_graph(small(fc=fc.replace(weight=w)))
    (issue,) = [i for i in r if i.code == "NONFINITE_PARAMETER"]
    SEEN.add(issue.code)
    assert "fc.weight holds 2 NaN/Inf" in issue.message and issue.severity is Severity.ERROR


def test_threshold_and_tau_checks():
    bad = lif(3)
    bad = bad.replace(v_threshold=np.array([1.0, 0.0, -1.0], f32), tau=np.array([0.5, 1.0, 10.0], f32))
    r = lint_graph(small(lif=bad))
    c = codes(r)
    assert {"NONPOSITIVE_THRESHOLD", "TAU_BELOW_DT", "TAU_EQUALS_DT"} <= set(c)
    msg = {i.code: i.message for i in r}
    assert "2 of 3" in msg["NONPOSITIVE_THRESHOLD"] and "1 of 3" in msg["TAU_BELOW_DT"]
    # the check uses the graph's dt
    r2 = lint_graph(ir.Graph(small().nodes, small().edges, dt=20.0))
    assert "TAU_BELOW_DT" in codes(r2)
    iff = ir.IF(v_threshold=np.array([0.0, 1.0]))
    assert "NONPOSITIVE_THRESHOLD" in codes(lint_graph(small(lif=iff)))
    cuba = ir.CubaLIF(tau_syn=np.ones(3), tau_mem=np.full(3, 5.0), r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3))
    assert "TAU_EQUALS_DT" in codes(lint_graph(small(lif=cuba)))


def test_neuron_never_fires():
    # |w| <= 0.01 on 4 inputs in [0, 1], bias 0: I <= 0.04, steady state r*I = 0.4 < 1
    quiet = ir.Affine(weight=np.full((3, 4), 0.01, f32), bias=np.zeros(3, f32))
    r = lint_graph(small(fc=quiet))
    (issue,) = [i for i in r if i.code == "NEURON_NEVER_FIRES"]
    SEEN.add(issue.code)
    assert issue.node == "lif" and "all 3 neurons" in issue.message and "0.4" in issue.message
    # one neuron driven hard enough fires: only the other two are reported
    w = np.full((3, 4), 0.01, f32)
    w[0] = 0.5
    r = lint_graph(small(fc=quiet.replace(weight=w)))
    assert "2 of 3 neurons" in [i for i in r if i.code == "NEURON_NEVER_FIRES"][0].message
    # a wider input range makes them reachable
    assert "NEURON_NEVER_FIRES" not in codes(lint_graph(small(fc=quiet), input_range=(0.0, 10.0)))
    assert "NEURON_NEVER_FIRES" not in lint_graph(small(fc=quiet), input_range={"x": (-1.0, 10.0)}).codes


def simulate_lif_max(weight, bias, beta, thr, inputs):
    """Reference: snnTorch-style LIF (gain 1, reset by subtraction) on an input sequence; any spike?"""
    v = np.zeros(weight.shape[0])
    for x in inputs:
        reset = v > thr
        v = beta * v + (weight.astype(np.float64) @ x + bias) - reset * thr
        if np.any(v > thr):
            return True
    return False


@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(0.001, 0.5),
    seed=st.integers(0, 2**16),
    beta=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
)
def test_never_fires_is_sound(scale, seed, beta):
    """Whenever lint says a neuron never fires, simulation with the worst-case and random inputs agrees."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(-scale, scale, (1, 4)).astype(f32)
    b = rng.uniform(-scale, scale, 1).astype(f32)
    g = small(fc=ir.Affine(weight=w, bias=b), lif=lif(1, beta=beta, reset_mode="subtract"))
    never = "NEURON_NEVER_FIRES" in lint_graph(g).codes
    worst = np.repeat((w[0] > 0).astype(np.float64)[None], 300, 0)  # maximises the input current
    fired = any(simulate_lif_max(w, b.astype(np.float64), beta, 1.0, seq) for seq in (worst, rng.uniform(0, 1, (300, 4))))
    if never:
        assert not fired
    # and the bound is tight: with the worst-case input held, the membrane after 300 steps is
    # steady * (1 - beta^300); when that clears the threshold, lint must not have claimed silence
    reached = (np.maximum(w, 0).sum() + b[0]) / (1 - beta) * (1 - beta**300)
    if reached > 1.0 + 1e-3:
        assert not never and fired


def test_never_fires_through_conv_relu_pool():
    g = build_hybrid()
    fc1 = g.nodes["fc1"]
    g.nodes["fc1"] = fc1.replace(weight=fc1.weight * 1e-6, bias=np.zeros_like(fc1.bias))
    assert "NEURON_NEVER_FIRES" in lint_graph(g).codes


def test_weight_outliers_for_int8():
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.01, (16, 32)).astype(f32)
    assert "WEIGHT_INT8_RANGE" not in lint_graph(small(fc=ir.Affine(weight=w[:3, :4], bias=np.zeros(3, f32)))).codes
    big = ir.Graph({"x": ir.Input(shape=(32,)), "fc": ir.Affine(weight=w, bias=np.zeros(16, f32)), "y": ir.Output()})
    big.chain("x", "fc", "y")
    assert "WEIGHT_INT8_RANGE" not in lint_graph(big).codes
    w2 = w.copy()
    w2[3, 7] = 50.0
    big.nodes["fc"] = big.nodes["fc"].replace(weight=w2)
    r = lint_graph(big)
    (issue,) = [i for i in r if i.code == "WEIGHT_INT8_RANGE"]
    SEEN.add(issue.code)
    assert "max |w| 50" in issue.message and "Clip the outliers" in issue.message and issue.node == "fc"
    # the hardware's step for max 50 at 8 bits is 2^-1 (50 * 2 = 100 < 128): every weight of std 0.01 rounds to 0
    assert "step 2^-1 = 0.5" in issue.message and "100% of its non-zero weights" in issue.message


def test_accumulator_overflow():
    w = np.ones((2, 3136), f32)
    sa = ir.SpikingAffine(weight=w, bias=np.zeros(2, f32), weight_bits=8, accumulator_bits=16)
    lif = ir.LIF(tau=np.full(3136, 5.0, f32), r=np.full(3136, 5.0, f32), v_leak=np.zeros(3136, f32), v_threshold=np.ones(3136, f32))
    g = ir.Graph({"x": ir.Input(shape=(3136,)), "lif": lif, "fc": sa, "y": ir.Output()})
    g.chain("x", "lif", "fc", "y")
    r = lint_graph(g)
    (issue,) = [i for i in r if i.code == "ACCUMULATOR_OVERFLOW"]
    SEEN.add(issue.code)
    # spikes are the integer 1; max |w| = 1 sits at 2^6 on the 8-bit power-of-two grid: 3136 * 64 = 200,704 < 2^18
    assert "200,704" in issue.message and "accumulator_bits >= 19" in issue.message and "binary spikes from 'lif'" in issue.message
    g.nodes["fc"] = sa.replace(accumulator_bits=19)
    assert "ACCUMULATOR_OVERFLOW" not in lint_graph(g).codes


def test_accumulator_overflow_with_real_valued_inputs():
    """A layer fed by the graph input adds 8-bit words, not spikes. Words saturate at 127 whatever the
    calibration fits them to, so that is what the check counts: 7 more bits than spikes need."""
    sa = ir.SpikingAffine(weight=np.ones((2, 3136), f32), bias=np.zeros(2, f32), weight_bits=8, accumulator_bits=24)
    g = ir.Graph({"x": ir.Input(shape=(3136,)), "fc": sa, "y": ir.Output()})
    g.chain("x", "fc", "y")
    (issue,) = [i for i in lint_graph(g) if i.code == "ACCUMULATOR_OVERFLOW"]
    assert f"{3136 * 64 * 127:,}" in issue.message and "accumulator_bits >= 26" in issue.message and "|x| <= 1" in issue.message
    (issue,) = [i for i in lint_graph(g, input_range=(-3.0, 3.0)) if i.code == "ACCUMULATOR_OVERFLOW"]
    assert f"{3136 * 64 * 127:,}" in issue.message and "|x| <= 3" in issue.message
    g.nodes["fc"] = sa.replace(accumulator_bits=26)
    assert "ACCUMULATOR_OVERFLOW" not in lint_graph(g).codes


def test_constant_saturates_names_node_field_value_and_nearest():
    """A bias that no weight grid lets the accumulator hold, and a neuron gain outside the coefficient word:
    hardware mode would refuse them (talon.backend.cpu.fixed raises the same message), lint says so first."""
    spikes = ir.IF(r=np.ones(3, f32), v_threshold=np.ones(3, f32))
    sa = ir.SpikingAffine(weight=np.full((2, 3), 0.01, f32), bias=np.array([5.0, 0.1], f32), weight_bits=8, accumulator_bits=8)
    g = chain({"x": ir.Input(shape=(3,)), "n0": spikes, "fc": sa, "y": ir.Output()})
    (issue,) = [i for i in lint_graph(g) if i.code == "CONSTANT_SATURATES"]
    SEEN.add(issue.code)
    assert issue.severity is Severity.ERROR and issue.node == "fc"
    assert "node 'fc' bias 5 saturates in hardware" in issue.message and "nearest representable value is 0.0155029" in issue.message
    g.nodes["fc"] = sa.replace(accumulator_bits=16)  # the weight grid coarsens by one bit and the bias fits
    assert "CONSTANT_SATURATES" not in lint_graph(g).codes
    g.nodes["n0"] = ir.IF(r=np.full(3, 10.0, f32), v_threshold=np.ones(3, f32))
    (issue,) = [i for i in lint_graph(g) if i.code == "CONSTANT_SATURATES"]
    assert issue.node == "n0" and "gain 10 saturates in hardware" in issue.message


def test_dropout_batchnorm_and_affine_fusion():
    rng = np.random.default_rng(0)
    bn = ir.BatchNorm2d(num_features=2, weight=np.ones(2, f32), bias=np.zeros(2, f32), running_mean=np.zeros(2, f32), running_var=np.ones(2, f32))
    g = chain({
        "x": ir.Input(shape=(1, 4, 4)),
        "conv": ir.Conv2d(weight=rng.normal(size=(2, 1, 3, 3)).astype(f32), bias=np.zeros(2, f32)),
        "bn": bn,
        "flat": ir.Flatten(),
        "drop": ir.Dropout(p=0.2),
        "fc1": affine(6, 8, rng),
        "fc2": affine(3, 6, rng),
        "y": ir.Output(),
    })
    r = lint_graph(g)
    by = {i.code: i for i in r}
    codes(r)
    assert by["DROPOUT_IN_INFERENCE"].node == "drop" and by["DROPOUT_IN_INFERENCE"].severity is Severity.WARNING
    assert by["FOLDABLE_BATCHNORM"].node == "bn" and "'conv'" in by["FOLDABLE_BATCHNORM"].message
    assert by["FOLDABLE_BATCHNORM"].severity is Severity.INFO
    assert by["FUSABLE_AFFINE"].node == "fc2" and "27 parameters instead of 75" in by["FUSABLE_AFFINE"].message
    assert r.is_valid


def test_unmodelled_cost_warning(registries):
    @primitive(name="SdkLintGadget")
    class Gadget(Node):
        k: np.ndarray = array()

    g = small()
    g2 = ir.Graph({"x": g.nodes["x"], "gadget": Gadget(k=np.ones(1, f32)), "y": g.nodes["y"]})
    g2.chain("x", "gadget", "y")
    r = lint_graph(g2)
    assert codes(r) == ["UNMODELLED_COST"] and "register_cost" in r.issues[0].message
    register_cost("SdkLintGadget", lambda node, ins, outs: Counts())
    assert lint_graph(g2).issues == []


def test_a_type_without_bounds_rule_is_reported_then_bounded_once_registered(registries):
    @primitive(name="SdkLintHalver")
    class Halver(Node):
        """y = x / 2 (a user primitive with a cost entry but, at first, no value-bounds rule)."""

    register_cost("SdkLintHalver", lambda node, ins, outs: Counts(flops=int(np.prod(outs[0]))), replace=True)
    # I <= 0.04 before the halver, so neither the halved nor the raw drive can reach the threshold
    quiet = ir.Affine(weight=np.full((3, 4), 0.01, f32), bias=np.zeros(3, f32))
    g = chain({"x": ir.Input(shape=(4,)), "fc": quiet, "half": Halver(), "lif": lif(3), "y": ir.Output()})
    r = lint_graph(g)
    assert codes(r) == ["NO_BOUNDS_RULE"]
    issue = r.issues[0]
    assert issue.node == "half" and "SdkLintHalver" in issue.message and "register_bounds('SdkLintHalver'" in issue.message
    try:
        register_bounds("SdkLintHalver", lambda node, args, outs, dt, neurons, name: [(args[0][0] / 2, args[0][1] / 2)])
        assert "SdkLintHalver" in bounds_types()
        (never,) = [i for i in lint_graph(g) if i.code == "NEURON_NEVER_FIRES"]
        assert never.node == "lif" and "0.2" in never.message  # r*I <= 10 * 0.02
        with pytest.raises(TalonUsageError, match="already registered"):
            register_bounds("SdkLintHalver", lambda *a: None)
    finally:
        _bounds._RULES.pop("SdkLintHalver", None)


@pytest.fixture
def UserLeaky(registries):
    @primitive(name="SdkLintLeaky")
    class _UserLeaky(Node):
        """A user-registered leaky neuron: the flags and fields say what it is, not its type name."""

        tau: np.ndarray = array()
        v_threshold: np.ndarray = array()
        stateful = True
        spiking = True

    return _UserLeaky


def test_a_spiking_type_without_bounds_rule_is_bounded_by_its_spikes(UserLeaky):
    neuron = UserLeaky(tau=np.array([4.0, 4.0], f32), v_threshold=np.array([1.0, 1.0], f32))
    g = chain({"x": ir.Input(shape=(2,)), "n": neuron, "fc": ir.Affine(weight=np.full((2, 2), 0.01, f32), bias=np.zeros(2, f32)),
               "lif": lif(2), "y": ir.Output()})  # fmt: skip
    assert "NO_BOUNDS_RULE" not in lint_graph(g).codes
    assert [i.node for i in lint_graph(g) if i.code == "NEURON_NEVER_FIRES"] == ["lif"]  # spikes <= 1: I <= 0.02


def test_nested_graphs_are_linted_with_prefixed_names():
    inner = small(lif=lif(3, threshold=-1.0))
    outer = ir.Graph({"x": ir.Input(shape=(4,)), "block": inner, "y": ir.Output()})
    outer.chain("x", "block", "y")
    r = lint_graph(outer)
    assert ("NONPOSITIVE_THRESHOLD", "block/lif") in [(i.code, i.node) for i in r]


def test_ignore_and_unknown_codes():
    assert lint_graph(build_hybrid(), ignore=["NAME_SHADOWS_BUILTIN"]).issues == []
    with pytest.raises(TalonUsageError, match="unknown codes"):
        lint_graph(build_hybrid(), ignore=["NOPE"])


def test_lint_never_raises_on_bad_graphs():
    g = ir.Graph({"a": ir.Input(shape=(2,)), "b": ir.SGhostConv(primary_weight=np.zeros((1, 1, 1, 1), f32), primary_bias=np.zeros(1, f32), cheap_weight=np.zeros((1, 1, 1, 1), f32), cheap_bias=np.zeros(1, f32))})
    g.chain("a", "b")
    r = lint_graph(g)
    assert "SHAPE_MISMATCH" in r.codes and "UNMODELLED_COST" in r.codes and "NO_OUTPUT" in r.codes


STRUCTURAL = {"NO_INPUT", "NO_OUTPUT", "DANGLING_EDGE", "WRONG_INPUT_COUNT", "WRONG_OUTPUT_COUNT", "CYCLE_WITHOUT_STATE", "SHAPE_MISMATCH"}


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_lint_agrees_with_validate_on_damaged_graphs(data):
    """Random edge deletions, additions and rewirings: lint never raises, and it reports a structural
    error exactly when Graph.validate() refuses the graph."""
    g = build_hybrid() if data.draw(st.booleans()) else build_mlp()
    names = list(g.nodes)
    for _ in range(data.draw(st.integers(0, 3))):
        op = data.draw(st.sampled_from(["drop", "add", "swap"]))
        if op == "drop" and g.edges:
            del g.edges[data.draw(st.integers(0, len(g.edges) - 1))]
        elif op == "add":
            g.edges.append((data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))))
        elif op == "swap" and len(g.edges) > 1:
            i, j = data.draw(st.integers(0, len(g.edges) - 1)), data.draw(st.integers(0, len(g.edges) - 1))
            g.edges[i], g.edges[j] = g.edges[j], g.edges[i]
    result = lint_graph(g)
    try:
        g.copy().validate()
        valid = True
    except GraphValidationError:
        valid = False
    assert valid == (not (set(result.codes) & STRUCTURAL)), result
    assert valid == result.is_valid or not valid


def test_codes_are_documented_and_exercised():
    doc = (REPO / "docs" / "sdk.md").read_text()
    for code, (sev, _) in CODES.items():
        assert re.search(rf"`{code}`", doc), f"{code} missing from docs/sdk.md"
        assert isinstance(sev, Severity)


def test_every_code_is_exercised_by_some_test():
    """Runs last in this module (pytest keeps file order): every code was produced by a test above."""
    if len(SEEN) < 5:
        pytest.skip("run the whole module to check coverage of the codes")
    assert set(CODES) - SEEN == set()


def test_fusable_affine_counts_only_stored_biases():
    g = ir.Graph()
    g.add_node("input", ir.Input(shape=(4,)))
    g.add_node("a", ir.Linear(weight=np.ones((3, 4), np.float32)))
    g.add_node("b", ir.Linear(weight=np.ones((2, 3), np.float32)))
    g.add_node("output", ir.Output())
    g.chain("input", "a", "b", "output")
    (issue,) = [i for i in lint_graph(g).issues if i.code == "FUSABLE_AFFINE"]
    assert "8 parameters instead of 18" in issue.message  # W2 W1 is 2x4; no bias on either side


def test_neuron_checks_follow_class_flags_and_fields_not_type_names(UserLeaky):
    register_cost("SdkLintLeaky", lambda node, ins, outs: Counts(neurons=int(np.prod(outs[0]))), replace=True)
    neuron = UserLeaky(tau=np.array([0.5, 4.0], f32), v_threshold=np.array([-1.0, 1.0], f32))
    g = chain({"x": ir.Input(shape=(2,)), "n": neuron, "y": ir.Output()})
    by = {i.code: i for i in lint_graph(g)}
    assert by["NONPOSITIVE_THRESHOLD"].node == "n" and by["TAU_BELOW_DT"].node == "n"
    # a stateless threshold (ir.Threshold) has no reset to invert, and LI has no threshold
    quiet = chain({"x": ir.Input(shape=(2,)), "t": ir.Threshold(v_threshold=np.array([-1.0, 1.0], f32)), "y": ir.Output()})
    assert "NONPOSITIVE_THRESHOLD" not in lint_graph(quiet).codes


def test_convert_to_spiking_picks_accumulators_the_simulator_cannot_overflow():
    """The tutorial's first layer is fed by the graph input (8-bit words), the second by spikes: the
    chosen widths hold each layer's worst sum, and lint agrees."""
    from talon import sdk

    rng = np.random.default_rng(0)
    lif1 = ir.LIF(tau=np.full(128, 5.0, f32), r=np.full(128, 5.0, f32), v_leak=np.zeros(128, f32), v_threshold=np.ones(128, f32))
    g = ir.Graph({"x": ir.Input(shape=(784,)), "fc1": affine(128, 784, rng), "lif1": lif1, "fc2": affine(10, 128, rng), "y": ir.Output()})
    g.chain("x", "fc1", "lif1", "fc2", "y")
    sp = sdk.convert_to_spiking(g)
    ranges = sdk.accumulator_ranges(sp)
    assert "|x| <= 1" in ranges["fc1"].inputs and "spikes from 'lif1'" in ranges["fc2"].inputs
    for name in ("fc1", "fc2"):
        bits = sp.nodes[name].accumulator_bits
        assert bits in (16, 24, 32, 48, 64) and not ranges[name].overflows
        assert bits == 16 or ranges[name].bits_needed > {24: 16, 32: 24, 48: 32, 64: 48}[bits]  # the narrowest that fits
    assert sp.nodes["fc1"].accumulator_bits > sp.nodes["fc2"].accumulator_bits
    assert "ACCUMULATOR_OVERFLOW" not in lint_graph(sp).codes
    narrow = sp.copy()
    narrow.nodes["fc1"] = narrow.nodes["fc1"].replace(accumulator_bits=16)
    assert "ACCUMULATOR_OVERFLOW" in lint_graph(narrow).codes
