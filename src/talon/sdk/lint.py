"""lint_graph: checks that catch real mistakes in a graph before it reaches hardware.

Each check has a stable code (see CODES and docs/sdk.md). Errors make a graph unusable
(`LintResult.is_valid` is False); warnings are probable mistakes; info notes are optimisation hints and
naming notes. Nested graphs are linted too; their issues name the node as "outer/inner".
"""

from __future__ import annotations

import builtins
import keyword
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Iterable, Iterator

import numpy as np

from talon.errors import GraphValidationError, TalonError, TalonUsageError
from talon.ir import Graph
from talon.sdk import _bounds
from talon.sdk._args import names
from talon.sdk._hardware_constants import saturating_constants
from talon.sdk._graph import Shape, Topology, infer_shapes, shallow_copy
from talon.sdk._load import GraphLike, as_graph
from talon.sdk.convert import accumulator_ranges, foldable_batchnorms, fusable_affine_pairs
from talon.sdk.cost import cost_entry
from talon.sdk.fixed_point import frac_for_range


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return ("error", "warning", "info").index(self.value)


E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO

#: Every code lint can report, with its severity and what it means. Codes never change meaning.
CODES: dict[str, tuple[Severity, str]] = {
    "NO_INPUT": (E, "the graph has no Input node"),
    "NO_OUTPUT": (E, "the graph has no Output node"),
    "DANGLING_EDGE": (E, "an edge names a node that does not exist"),
    "WRONG_INPUT_COUNT": (E, "a node has more or fewer incoming edges than its type accepts"),
    "WRONG_OUTPUT_COUNT": (E, "a multi-output node has a different number of outgoing edges than outputs"),
    "CYCLE_WITHOUT_STATE": (E, "a cycle passes through no stateful node, so no step delays it"),
    "SHAPE_MISMATCH": (E, "a node cannot accept the shapes its producers give it"),
    "NONFINITE_PARAMETER": (E, "a parameter array holds NaN or Inf"),
    "NONPOSITIVE_THRESHOLD": (E, "a spiking neuron has v_threshold <= 0"),
    "TAU_BELOW_DT": (E, "a time constant is shorter than dt: beta = 1 - dt/tau < 0"),
    "TAU_EQUALS_DT": (W, "a time constant equals dt: beta = 0, the neuron keeps no memory"),
    "DISCONNECTED_NODE": (W, "a node has no edges at all"),
    "UNREACHABLE_NODE": (W, "no Input reaches the node"),
    "DEAD_END_NODE": (W, "the node reaches no Output: its result is never used"),
    "NEURON_NEVER_FIRES": (W, "given the input range, the membrane can never exceed the threshold"),
    "NO_BOUNDS_RULE": (I, "the node's type has no value-bounds rule (register_bounds): NEURON_NEVER_FIRES judges nothing it feeds"),
    "WEIGHT_INT8_RANGE": (W, "outlying weights set the hardware's per-tensor int8 step so coarse that most weights round to zero"),
    "ACCUMULATOR_OVERFLOW": (W, "a SpikingAffine sum can exceed its accumulator_bits"),
    "CONSTANT_SATURATES": (E, "a constant (bias, neuron coefficient) lies outside the fixed-point word that must hold it: hardware mode refuses the graph"),
    "DROPOUT_IN_INFERENCE": (W, "Dropout is the identity at inference and should be removed"),
    "NAME_IS_KEYWORD": (W, "a node name is a Python keyword"),
    "NAME_SHADOWS_BUILTIN": (W, "a node name is the name of a Python builtin"),
    "UNMODELLED_COST": (W, "the node's type has no cost-table entry: its arithmetic is counted as zero"),
    "FOLDABLE_BATCHNORM": (I, "a batch norm directly follows a conv/affine layer and can be folded into it"),
    "FUSABLE_AFFINE": (I, "two affine layers follow each other with nothing in between and compose into one"),
    "NAME_NOT_IDENTIFIER": (I, "a node name is not a Python identifier (normal for module paths like 'features.0')"),
}


def _resetting_threshold(node) -> bool:
    """A spiking neuron that holds state and resets by its threshold (LIF, IF, CubaLIF, and user neurons
    declared the same way): read from the primitive's class flags and fields, not a list of type names."""
    return bool(node.stateful and node.spiking) and "v_threshold" in node.field_specs()


def _time_constants(node) -> list[str]:
    """Fields of a stateful node that are time constants, from which beta = 1 - dt/tau is derived: by
    the IR's naming convention `tau` or `tau_<what>` (LIF/LI `tau`, CubaLIF `tau_syn`, `tau_mem`)."""
    if not node.stateful:
        return []
    return [f for f in node.field_specs() if f == "tau" or f.startswith("tau_")]


@dataclass(frozen=True)
class LintIssue:
    severity: Severity
    code: str
    message: str
    node: str | None = None

    def __str__(self) -> str:
        where = f" ({self.node})" if self.node else ""
        return f"[{self.severity.value}] {self.code}{where}: {self.message}"


@dataclass(frozen=True)
class LintResult:
    issues: list[LintIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity is Severity.WARNING]

    @property
    def infos(self) -> list[LintIssue]:
        return [i for i in self.issues if i.severity is Severity.INFO]

    @property
    def is_valid(self) -> bool:
        """No errors (warnings and info notes allowed)."""
        return not self.errors

    @property
    def codes(self) -> list[str]:
        return [i.code for i in self.issues]

    def for_node(self, name: str) -> list[LintIssue]:
        return [i for i in self.issues if i.node == name]

    def __iter__(self) -> Iterator[LintIssue]:
        return iter(self.issues)

    def __len__(self) -> int:
        return len(self.issues)

    def __str__(self) -> str:
        head = f"{len(self.errors)} error(s), {len(self.warnings)} warning(s), {len(self.infos)} note(s)"
        return "\n".join([head, *map(str, self.issues)])


def lint_graph(
    graph: GraphLike,
    *,
    input_range: tuple[float, float] | dict[str, tuple[float, float]] = (0.0, 1.0),
    ignore: Iterable[str] = (),
    int8_zero_fraction: float = 0.25,
) -> LintResult:
    """Check `graph` (a Graph or a .t1c path); never raises for a bad graph, reports it.

    input_range: assumed range of every graph input (or {input name: range}) for NEURON_NEVER_FIRES;
    the default [0, 1] fits spike trains and normalised pixels. ignore: codes to leave out.
    int8_zero_fraction: WEIGHT_INT8_RANGE fires when more than this fraction of a tensor's non-zero
    weights would round to zero on the hardware's per-tensor int8 grid (talon.sdk.fixed_point).
    """
    g = as_graph(graph)
    skip = set(names(ignore, "lint_graph: ignore"))
    unknown = skip - set(CODES)
    if unknown:
        raise TalonUsageError(f"lint_graph: unknown codes in ignore: {sorted(unknown)}")
    issues = _Linter(g, "", input_range, int8_zero_fraction).run()
    issues = [i for i in issues if i.code not in skip]
    issues.sort(key=lambda i: i.severity.rank)  # stable: discovery order within a severity
    return LintResult(issues)


class _Linter:
    def __init__(self, g: Graph, prefix: str, input_range, zero_fraction: float) -> None:
        self.g = g
        self.prefix = prefix
        self.input_range = input_range
        self.zero_fraction = zero_fraction
        self.issues: list[LintIssue] = []

    def add(self, code: str, message: str, node: str | None = None) -> None:
        self.issues.append(LintIssue(CODES[code][0], code, message, self.prefix + node if node else (self.prefix.rstrip("/") or None)))

    def run(self) -> list[LintIssue]:
        g = self.g
        bad_edges = [(s, d) for s, d in g.edges if s not in g.nodes or d not in g.nodes]
        for s, d in bad_edges:
            missing = s if s not in g.nodes else d
            self.add("DANGLING_EDGE", f"edge {s!r} -> {d!r} refers to unknown node {missing!r}")
        # work on a copy (node objects copied, arrays shared): shaping a nested graph writes to its nodes
        clean = shallow_copy(Graph(g.nodes, [e for e in g.edges if e not in bad_edges], dt=g.dt))
        self.g = clean
        topo = Topology.of(clean, with_delays=False)
        arity_bad = self._structure(topo)
        acyclic = self._cycles()
        shapes = self._shapes(topo, arity_bad) if acyclic else None
        self._parameters()
        self._patterns(shapes)
        if shapes is not None:
            self._never_fires(shapes)
        if acyclic:
            self._accumulators()
        self._hardware_constants()
        self._names()
        self._unmodelled()
        for name, node in clean.nodes.items():
            if isinstance(node, Graph):
                self.issues += _Linter(node, f"{self.prefix}{name}/", None, self.zero_fraction).run()
        return self.issues

    # -- structure --------------------------------------------------------------------------------
    def _structure(self, topo: Topology) -> set[str]:
        g = self.g
        inputs, outputs = g.input_names, g.output_names
        if not inputs:
            self.add("NO_INPUT", "the graph has no Input node: nothing feeds it")
        if not outputs:
            self.add("NO_OUTPUT", "the graph has no Output node: none of its results is exported")
        arity_bad: set[str] = set()
        for name, node in g.nodes.items():
            n_in = len(topo.preds[name])
            if n_in < node.min_inputs or (node.max_inputs is not None and n_in > node.max_inputs):
                want = str(node.min_inputs) if node.max_inputs == node.min_inputs else f"{node.min_inputs} to {node.max_inputs or 'any'}"
                self.add("WRONG_INPUT_COUNT", f"{node.type_name} node {name!r} has {n_in} incoming edges, expected {want}", name)
                arity_bad.add(name)
            if node.num_outputs > 1 and len(topo.succs[name]) != node.num_outputs:
                self.add(
                    "WRONG_OUTPUT_COUNT",
                    f"{node.type_name} node {name!r} has {node.num_outputs} outputs but {len(topo.succs[name])} outgoing edges (one per output, in order)",
                    name,
                )
                arity_bad.add(name)
        from_inputs = topo.reachable(inputs) if inputs else set(g.nodes)
        to_outputs = topo.reachable(outputs, forward=False) if outputs else set(g.nodes)
        for name, node in g.nodes.items():
            if len(g.nodes) > 1 and not topo.preds[name] and not topo.succs[name]:
                self.add("DISCONNECTED_NODE", f"{node.type_name} node {name!r} has no edges (prune_disconnected removes it)", name)
                continue
            if name not in from_inputs:
                self.add("UNREACHABLE_NODE", f"no Input reaches {node.type_name} node {name!r}: it never receives data", name)
            if name not in to_outputs:
                self.add("DEAD_END_NODE", f"{node.type_name} node {name!r} reaches no Output: its result is never used", name)
        return arity_bad

    def _cycles(self) -> bool:
        g = self.g
        delayed = set(g.delayed_edges())
        if delayed:
            rest = Graph(g.nodes, [e for i, e in enumerate(g.edges) if i not in delayed], dt=g.dt)
            comps = rest.cycles()
        else:
            comps = g.cycles()
        for comp in comps:
            self.add(
                "CYCLE_WITHOUT_STATE",
                f"cycle through {comp} has no stateful node (neuron or Delay) to carry it to the next step",
                comp[0],
            )
        return not comps

    def _shapes(self, topo: Topology, arity_bad: set[str]) -> dict[str, tuple[list[Shape], list[Shape]]] | None:
        try:
            return infer_shapes(self.g)
        except GraphValidationError as exc:
            first_error = exc
        # attribute the failure: the graph's own shape inference, recording each node that cannot be
        # shaped and leaving its descendants unjudged
        g = self.g
        failures: dict = {}
        try:
            g.infer_shapes(failures=failures, skip=arity_bad)
        except GraphValidationError:
            pass  # the schedule itself fails: the structural checks report why
        for name, (shapes, why) in failures.items():
            node = g.nodes[name]
            got = ", ".join(str(tuple(s)) for s in shapes) or "no inputs"
            producers = ", ".join(repr(g.edges[i][0]) for i in topo.in_edge_ids[name]) or "nothing"
            self.add("SHAPE_MISMATCH", f"{node.type_name} node {name!r} fed by {producers} with {got}: {why}", name)
        reported = set(failures)
        if not reported and not arity_bad:
            self.add("SHAPE_MISMATCH", f"shapes cannot be inferred: {first_error}")
        return None

    # -- parameters -------------------------------------------------------------------------------
    def _parameters(self) -> None:
        dt = self.g.dt
        for name, node in self.g.nodes.items():
            for field_name, arr in node.arrays():
                if arr.dtype.kind == "f":
                    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
                    if bad:
                        self.add("NONFINITE_PARAMETER", f"{name}.{field_name} holds {bad} NaN/Inf value(s) out of {arr.size}", name)
            if _resetting_threshold(node):
                thr = np.asarray(node.v_threshold)
                bad = int(np.count_nonzero(thr <= 0))
                if bad:
                    self.add(
                        "NONPOSITIVE_THRESHOLD",
                        f"{name}.v_threshold is <= 0 in {bad} of {thr.size} entries (min {float(thr.min()):g}): such a neuron fires "
                        f"at rest, and a subtract reset would raise its membrane instead of lowering it",
                        name,
                    )
            for tau_name in _time_constants(node):
                tau = np.asarray(getattr(node, tau_name), dtype=np.float64)
                tol = 1e-7 * dt
                below = int(np.count_nonzero(tau < dt - tol))
                equal = int(np.count_nonzero(np.abs(tau - dt) <= tol))
                if below:
                    self.add(
                        "TAU_BELOW_DT",
                        f"{name}.{tau_name} < dt={dt:g} in {below} of {tau.size} entries (min {float(tau.min()):g}): "
                        f"beta = 1 - dt/tau is negative and the state flips sign every step",
                        name,
                    )
                if equal:
                    self.add(
                        "TAU_EQUALS_DT",
                        f"{name}.{tau_name} == dt={dt:g} in {equal} of {tau.size} entries: beta = 0, the state is "
                        f"forgotten every step (snnTorch beta=0)",
                        name,
                    )
            self._weight_range(name, node)

    def _weight_range(self, name: str, node) -> None:
        entry = cost_entry(node.type_name)
        bits = int(getattr(node, "weight_bits", 8))
        for field_name in entry.weight_fields if entry else ():
            w = getattr(node, field_name)
            a = np.abs(w[np.isfinite(w)].astype(np.float64)).ravel()
            nz = a[a > 0]
            if nz.size < 2:
                continue
            # the hardware's grid (talon.sdk.fixed_point): one power-of-two step for the whole tensor
            frac = frac_for_range(float(nz.max()), bits)
            zeroed = float(np.count_nonzero(np.rint(np.ldexp(nz, frac)) == 0)) / nz.size
            if zeroed > self.zero_fraction:
                med = float(np.median(nz))
                self.add(
                    "WEIGHT_INT8_RANGE",
                    f"{name}.{field_name}: max |w| {nz.max():.4g} is {nz.max() / med:.0f}x the median magnitude {med:.4g}; "
                    f"on the hardware's int{bits} grid for the tensor (step 2^-{frac} = {math.ldexp(1.0, -frac):.3g}) "
                    f"{100 * zeroed:.0f}% of its non-zero weights round to zero. Clip the outliers, which set the step "
                    f"(e.g. to a high percentile of |w|), or train with a weight penalty",
                    name,
                )

    def _accumulators(self) -> None:
        try:
            ranges = accumulator_ranges(self.g, self.input_range)
        except TalonError:
            return  # the structural checks report what is wrong with the graph
        for name, acc in ranges.items():
            node = self.g.nodes[name]
            if acc.overflows:
                self.add(
                    "ACCUMULATOR_OVERFLOW",
                    f"{name}: with {node.weight_bits}-bit weights and {acc.inputs}, a sum can reach {acc.worst:,} "
                    f"accumulator steps, beyond the {node.accumulator_bits}-bit accumulator's {acc.limit:,}; "
                    f"use accumulator_bits >= {acc.bits_needed}",
                    name,
                )

    def _hardware_constants(self) -> None:
        try:
            found = saturating_constants(self.g, self.input_range)
        except TalonError:
            return  # the structural and parameter checks report what is wrong with the graph
        for name, message in found:
            self.add("CONSTANT_SATURATES", message, name)

    # -- patterns ---------------------------------------------------------------------------------
    def _patterns(self, shapes) -> None:
        g = self.g
        for name, node in g.nodes.items():
            if node.type_name == "Dropout":
                self.add("DROPOUT_IN_INFERENCE", f"Dropout {name!r} (p={node.p:g}) is the identity at inference: remove it (remove_dropout)", name)
        for bn, prev in foldable_batchnorms(g, shapes):
            self.add(
                "FOLDABLE_BATCHNORM",
                f"{g.nodes[bn].type_name} {bn!r} directly follows {g.nodes[prev].type_name} {prev!r} and can be folded into its weights and bias (fold_batchnorm)",
                bn,
            )
        for a, b in fusable_affine_pairs(g):
            wa, wb = g.nodes[a].weight, g.nodes[b].weight
            # Stored elements of both layers (a Linear has no bias); the fused layer keeps a bias
            # whenever either had one (b = W2 b1 + b2).
            has_bias = [getattr(g.nodes[n], "bias", None) is not None for n in (a, b)]
            now = wa.size + wb.size + wa.shape[0] * has_bias[0] + wb.shape[0] * has_bias[1]
            fused = wb.shape[0] * wa.shape[1] + wb.shape[0] * any(has_bias)
            self.add(
                "FUSABLE_AFFINE",
                f"{a!r} -> {b!r}: two affine layers with nothing in between compose into one "
                f"(W = W2 W1, b = W2 b1 + b2): {fused:,} parameters instead of {now:,}",
                b,
            )

    def _never_fires(self, shapes) -> None:
        if self.input_range is None:
            return
        stateful = [n for n, node in self.g.nodes.items() if node.stateful or getattr(node, "spiking", False)]
        unbounded: dict[str, str] = {}
        _, neurons = _bounds.propagate(self.g, shapes, self.input_range, only_for=stateful, unbounded=unbounded)
        for name, t in unbounded.items():
            what = "a nested graph" if isinstance(self.g.nodes[name], Graph) else f"type {t} has no value-bounds rule"
            self.add("NO_BOUNDS_RULE", f"{name!r}: {what}, so the neurons it feeds are not checked for NEURON_NEVER_FIRES; "
                     f"register one with talon.sdk.register_bounds({t!r}, rule) (docs/primitives.md)", name)
        rng = self.input_range
        assumed = f"inputs in [{rng[0]:g}, {rng[1]:g}]" if not isinstance(rng, dict) else "the given input ranges"
        for name, (never, vmax, thr) in neurons.items():
            k = int(np.count_nonzero(never))
            if not k:
                continue
            n = never.size
            reach = float(np.max(np.where(never, vmax, -np.inf)))
            who = f"all {n} neurons" if k == n else f"{k} of {n} neurons"
            self.add(
                "NEURON_NEVER_FIRES",
                f"{self.g.nodes[name].type_name} {name!r}: {who} can never fire with {assumed}: their membrane cannot exceed "
                f"{reach:.4g}, below v_threshold (min {float(np.min(np.where(never, thr, np.inf))):.4g})",
                name,
            )

    def _unmodelled(self) -> None:
        for name, node in self.g.nodes.items():
            if not isinstance(node, Graph) and cost_entry(node.type_name) is None:
                self.add(
                    "UNMODELLED_COST",
                    f"{node.type_name} node {name!r} has no cost-table entry: analyze/profile count its parameters and "
                    f"activations but no arithmetic (add one with talon.sdk.cost.register_cost)",
                    name,
                )

    # -- names ------------------------------------------------------------------------------------
    def _names(self) -> None:
        for name, node in self.g.nodes.items():
            if keyword.iskeyword(name):
                self.add("NAME_IS_KEYWORD", f"node name {name!r} is a Python keyword: generated code cannot use it as a variable", name)
            elif name in _BUILTINS and not _generated_name(name, node):
                self.add(
                    "NAME_SHADOWS_BUILTIN",
                    f"node name {name!r} shadows the Python builtin {name!r} ({_builtin_kind(name)}, not a keyword): "
                    f"generated code that uses node names as variables would hide it",
                    name,
                )
            elif not name.isidentifier():
                self.add("NAME_NOT_IDENTIFIER", f"node name {name!r} is not a Python identifier; code generators must sanitise it", name)


_BUILTINS = frozenset(n for n in dir(builtins) if not n.startswith("_"))
#: Names TALON itself gives nodes (talon.bridge.to_ir, talon.ir.nir, nested neuron chains): the canonical
#: name of a graph's Input/Output. They are not the user's choice, and code generators know them.
_GENERATED_NAMES = {"input": "Input", "output": "Output"}


def _generated_name(name: str, node) -> bool:
    return _GENERATED_NAMES.get(name) == getattr(node, "type_name", None)


def _builtin_kind(name: str) -> str:
    obj = getattr(builtins, name)
    if isinstance(obj, type):
        return "a builtin exception" if issubclass(obj, BaseException) else "a builtin type"
    if callable(obj):
        return "a builtin function"
    return "a builtin constant"
