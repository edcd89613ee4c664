"""The CPU simulator: the bridge's runtime (talon.bridge.executor) run with counters.

There is no arithmetic of any primitive here. The graph runs through `ir_to_torch`; an observer hook
counts spikes and input events per node; an optional state probe (a thin wrapper installed through the
executor's `node_map`) records membranes. In fixed mode the same runtime runs the plan's on-grid graph
in float64 with the rounding wrappers of `talon.backend.cpu.fixed`.

Long runs are cut into chunks of steps (state carried across, exactly as step-by-step calls); each
chunk goes through `GraphExecutor.run`, which applies stateless layers to all its steps at once. A rich
progress bar shows chunk progress when stderr is a terminal and the run is long.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

import torch
from torch import nn

from talon.backend.base import SimulationResult
from talon.backend.cpu.fixed_events import mark_spike_inputs
from talon.backend.cpu.fixed_narrow import float32_inputs, narrow_float32, runtimes_by_name
from talon.backend.cpu import fixed as fx
from talon.backend.cpu import clip_watch, graph_memo
from talon.backend import memory_budget
from talon.backend.cpu.kept_calibration import check_kept_calibration_use, plan_from_calibration
from talon.backend.cpu.counting import count_nonzero
from talon.backend.cpu.exact_products import ExactSynaptic
from talon.backend.spike_inputs import check_spikes as spike_check
from talon.backend.spike_inputs import priced_spike_inputs, pricing_graph
from talon.backend.stimulus import ConstantEncoder, Stimulus, make_stimulus, sum_is_finite
from talon.bridge.executor import TransientStateObserver, ir_to_torch
from talon.bridge.modules import RUNTIME_BUILDERS, StatefulRuntime
from talon.errors import BackendError
from talon.ir import Graph, spike_inputs
from talon.sdk.cost import cost_entry, graph_costs
from talon.sdk.profile import spike_driven_layers as sdk_spike_driven_layers

#: Runs of at least this many steps show a progress bar (when stderr is a terminal).
PROGRESS_MIN_STEPS = 500
#: Activation memory budget of one chunk of steps (bytes), which sets the chunk length.
CHUNK_BYTES = 64 * 1024 * 1024
#: Spike and event tensors below this many elements are counted when the chunk's executor run returns.
DEFER_COUNT_BELOW = 1 << 14


@dataclass
class RunRecord:
    """What one instrumented run collected (counts as Python ints, recordings as (T, B, ...) tensors)."""

    steps: int
    batch: int
    spike_counts: dict[str, int]
    input_events: dict[str, int]
    outputs: dict[str, torch.Tensor]
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)
    membranes: dict[str, torch.Tensor] = field(default_factory=dict)
    max_abs_output: dict[str, float] = field(default_factory=dict)
    max_abs_state: dict[str, float] = field(default_factory=dict)
    max_abs_current: dict[str, float] = field(default_factory=dict)
    #: per node of `agree_with`: the (step, sample, element) where one run fires and the other does not
    mismatches: dict[str, int] = field(default_factory=dict)


class _StateProbe(StatefulRuntime):
    """Wraps a neuron runtime to report its state after every step (instrumentation only).

    A runtime whose run_seq traces its membrane (`traces_membrane`, talon.bridge.modules.LIFRuntime)
    runs whole chunks in its fused loop and hands `seq_sink` the chunk's (T, B, ...) membranes, the
    states its steps would have returned; any other runtime, or one whose other state fields are wanted
    (`whole_state`), is stepped one step at a time, each state going to `sink`.
    """

    def __init__(self, inner: nn.Module, name: str, sink: Any, seq_sink: Any = None, whole_state: bool = False) -> None:
        super().__init__()
        self.inner, self.name, self.sink = inner, name, sink
        self.seq_sink = seq_sink if getattr(inner, "traces_membrane", False) and not whole_state else None

    def init_state(self, inputs: Any) -> Any:
        return self.inner.init_state(inputs)

    def step(self, inputs: Any, state: Any) -> Any:
        out, st = self.inner.step(inputs, state)
        self.sink(self.name, st)
        return out, st

    def run_seq(self, inputs: Any, state: Any) -> Any:
        if self.seq_sink is None:
            return super().run_seq(inputs, state)
        v = state[-1]
        trace = v.new_empty((inputs[0].shape[0], *v.shape))
        out, st = self.inner.run_seq(inputs, state, trace=trace)
        self.seq_sink(self.name, trace)
        return out, st


def _normalize_record(record: Any, graph: Graph) -> tuple[set[str], set[str]]:
    """(nodes whose spikes to record, nodes whose membranes to record)."""
    spiking = {n for n, node in graph.nodes.items() if node.spiking}
    neurons = {n for n, node in graph.nodes.items() if node.state_fields}
    if record in (None, False):
        return set(), set()
    if record is True or record == "all":
        return spiking, neurons
    if record == "spikes":
        return spiking, set()
    if record in ("membranes", "membrane"):
        return set(), neurons
    if isinstance(record, str):
        record = [record]
    try:
        names = list(record)
    except TypeError:
        raise BackendError(f"record must be True, 'spikes', 'membranes' or a list of node names, got {record!r}") from None
    unknown = [n for n in names if n not in graph.nodes]
    if unknown:
        raise BackendError(f"record names unknown nodes {unknown}; the graph has {list(graph.nodes)}")
    chosen = set(names)
    # An Input named explicitly records the values the runtime received (the NoC model counts its packets).
    inputs = {n for n, node in graph.nodes.items() if node.type_name == "Input"}
    return chosen & (spiking | inputs), chosen & neurons


def spike_driven_layers(graph: Graph, costs: dict | None = None) -> list[str]:
    """Synaptic layers whose inputs are all spikes (sdk profile_graph's spike_driven_layers, i.e. the cost
    table). `costs`: graph_costs(graph), when the caller has it already."""
    driven = sdk_spike_driven_layers(graph, costs)
    return [n for n in driven if (e := cost_entry(graph.nodes[n].type_name)) is not None and e.weight_fields]


def _chunk_steps(graph: Graph, batch: int, n_steps: int, requested: int | None, costs: dict | None = None) -> int:
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise BackendError(f"chunk_steps must be a positive integer, got {requested!r}")
        return min(requested, n_steps)
    per_step = sum(c.activation_elements for c in (costs or graph_costs(graph)).values()) * batch * 8
    return max(1, min(n_steps, CHUNK_BYTES // max(per_step, 1)))


def _progress(n_steps: int, progress: bool | None, console: Any = None) -> Any:
    show = progress if progress is not None else (n_steps >= PROGRESS_MIN_STEPS and sys.stderr.isatty())
    if not show:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"), TimeRemainingColumn(),
        console=console or Console(stderr=True), transient=True,
    )


def run_instrumented(
    graph: Graph,
    stim: Stimulus,
    *,
    record_spikes: Iterable[str] = (),
    record_membranes: Iterable[str] = (),
    calibrate: bool = False,
    plan: fx.FixedPointPlan | None = None,
    count_events: Iterable[str] | None = None,
    chunk_steps: int | None = None,
    progress: bool | None = None,
    costs: dict | None = None,
    batch_time: bool = True,
    check_spikes: Iterable[str] = (),
    count_spikes: bool = True,
    agree_with: dict[str, torch.Tensor] | None = None,
) -> RunRecord:
    """Run `graph` (or, with `plan`, its fixed-point realisation) on `stim` through the bridge runtime.

    Spikes are counted for every spiking node (unless `count_spikes` is False); input events (non-zero
    inputs) for the nodes in `count_events` (default: the synaptic layers fed by spikes,
    sdk.profile_graph's spike_driven_layers).
    The inputs named in `check_spikes` (spike-declaring Inputs fed by a user's encoder) are refused as
    soon as a step holds a value other than 0 or 1 (talon.backend.spike_inputs).
    `agree_with` (node -> another run's (T, B, ...) outputs on the same stimulus): each node's outputs are
    compared with them as they are produced, fired or not, and the disagreements counted (`mismatches`),
    so that the agreement report needs no recording of this run.
    """
    check_spikes = set(check_spikes)
    record_spikes, record_membranes = set(record_spikes), set(record_membranes)
    run_graph = plan.graph if plan is not None else graph
    costs = costs if costs is not None else graph_costs(graph)
    T, B = stim.n_steps, stim.batch_size
    chunk = _chunk_steps(graph, B, T, chunk_steps, costs)
    # refused before anything is allocated when it cannot fit the machine (talon.backend.memory_budget)
    memory_budget.check_run(
        graph, memory_budget.RunFootprint.of(costs), batch=B, chunk=chunk, n_steps=T, dtype_bytes=8 if plan is not None else 4,
        recorded=(*graph.output_names, *record_spikes), traced=record_membranes, chunk_given=chunk_steps is not None,
        what="the calibration run" if calibrate else ("the fixed-point simulation" if plan is not None else "the simulation"),
    )
    spiking = [n for n, node in graph.nodes.items() if node.spiking]
    synaptic = list(spike_driven_layers(graph, costs) if count_events is None else count_events)
    neurons = [n for n, node in graph.nodes.items() if node.state_fields]

    # counters: Python ints on the CPU (count_nonzero's result), 0-d tensors elsewhere (no host sync per
    # step); converted once at the end
    zero = lambda: torch.zeros((), dtype=torch.int64)  # noqa: E731
    spike_acc: dict[str, Any] = {n: 0 for n in spiking} if count_spikes else {}
    event_acc: dict[str, Any] = {n: 0 for n in synaptic}
    spike_rec: dict[str, list] = {n: [] for n in record_spikes}
    mem_rec: dict[str, list] = {n: [] for n in record_membranes}
    # calibration ranges: per node the (min, max) pairs of what it produced (torch.aminmax: one pass, no
    # copy), reduced to the largest magnitude max(-min, max) once at the end
    max_out: dict[str, Any] = {}
    max_state: dict[str, list] = {}
    max_cur: dict[str, list] = {}
    # a neuron with a synaptic current holds (current, ..., membrane): the fixed-point plan needs the current's range too
    with_current = {n for n, node in graph.nodes.items() if node.has_current}
    watch_spikes, watch_events = set(spiking) if count_spikes else set(), set(synaptic)
    # the graph's outputs: what executor.run returns, per chunk of steps
    out_rec: dict[str, list] = {n: [] for n in run_graph.output_names}
    agree = dict(agree_with or {})
    mismatch_acc = {n: zero() for n in agree}
    agreed_steps = dict.fromkeys(agree, 0)

    per_step = not batch_time  # the observer then sees (B, ...) tensors, one call per step

    # A layer's input events are usually the spikes of the neuron before it, already counted: each tensor
    # is counted once (by identity, the tensor kept alive beside its count). Cleared whenever the first
    # node observed comes round again (the executor's next chunk of steps): kept longer, a chunk's
    # tensors could not be freed and their memory reused by the next, as the bare executor's are.
    counted: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    first_observed: list[str] = []

    def nonzeros(x: torch.Tensor) -> torch.Tensor:
        hit = counted.get(id(x))
        if hit is not None and hit[0] is x:
            return hit[1]
        n = count_nonzero(x)
        counted[id(x)] = (x, n)
        return n

    # A small tensor (a spike chunk of a small layer) is counted when executor.run returns, with the
    # chunk's other small tensors: the first count after the runtime's kernels costs several times what
    # the next ones cost (code and data gone cold), and holding a small tensor a little longer keeps no
    # memory worth reusing. Large ones are counted at once, so that their memory can be reused.
    deferred: list[tuple[dict, str, torch.Tensor]] = []
    defer_below = 0 if per_step else DEFER_COUNT_BELOW

    def tally(acc: dict, name: str, x: torch.Tensor) -> None:
        hit = counted.get(id(x))
        if hit is not None and hit[0] is x:  # counted already, or its count given by an event-driven product
            acc[name] += hit[1]
        elif x.numel() < defer_below:
            deferred.append((acc, name, x))
        else:
            acc[name] += nonzeros(x)

    def count_deferred() -> None:
        for acc, name, x in deferred:
            acc[name] += nonzeros(x)
        deferred.clear()
        counted.clear()

    def observe(name: str, node: Any, args: list, out: Any, state: Any) -> None:
        if not first_observed:
            first_observed.append(name)
        elif name == first_observed[0]:
            counted.clear()
        if name in watch_spikes:
            tally(spike_acc, name, out)
        if name in watch_events:
            seen = event_driven.get(name)
            last = seen.last_events if seen is not None else None
            if last is not None:
                # the event-driven product just found this input's non-zeros: their number, not a new count
                seen.last_events = None
                if len(args) == 1 and _same_values(last[0], args[0]):
                    counted[id(args[0])] = (args[0], last[1])
            for a in args:
                tally(event_acc, name, a)
        if per_step and isinstance(out, torch.Tensor):
            out = out.unsqueeze(0)
        if name in spike_rec:
            spike_rec[name].append(out)
        if name in agree:
            t0 = agreed_steps[name]
            agreed_steps[name] = t1 = t0 + out.shape[0]
            mismatch_acc[name] += torch.ne(torch.ne(agree[name][t0:t1], 0), torch.ne(out, 0)).sum()
        if calibrate and isinstance(out, torch.Tensor) and out.numel():
            max_out.setdefault(name, []).append(torch.aminmax(out.detach()))

    def on_state(name: str, st: Any) -> None:
        v = st[-1]
        if name in mem_rec:
            mem_rec[name].append(v.unsqueeze(0))
        if calibrate and v.numel():
            max_state.setdefault(name, []).append(torch.aminmax(v.detach()))
            if name in with_current:
                max_cur.setdefault(name, []).append(torch.aminmax(st[0].detach()))

    def on_states(name: str, vs: torch.Tensor) -> None:  # a chunk's (T, B, ...) membranes, in one piece
        if name in mem_rec:
            mem_rec[name].append(vs)
        if calibrate and vs.numel():
            max_state.setdefault(name, []).extend(_chunk_ranges(vs))

    probe_names = set(record_membranes) | (set(neurons) if calibrate else set())
    if plan is not None:
        node_map = fx.fixed_node_map(plan, on_state if probe_names else None)
    else:
        node_map = {
            n: (lambda node, ctx, n=n: _StateProbe(RUNTIME_BUILDERS[node.type_name](node, ctx), n, on_state, on_states, calibrate and n in with_current))
            for n in probe_names
        }
    # observe never holds a state it is shown (membranes come through the probes): run() may keep
    # stepping neuron states in place across its time chunks. It is shown only the nodes it reads
    # (calibration reads every node's range).
    shown = None if calibrate else watch_spikes | watch_events | set(spike_rec) | set(agree)
    executor = ir_to_torch(run_graph, return_state=True, node_map=node_map, observer=TransientStateObserver(observe, shown))
    names = list(stim.shapes)
    # graph inputs known to hold only 0 and 1 (checked per chunk below where the encoder is the user's)
    binary = [stim.binary.get(n) is True or n in check_spikes for n in names]
    event_driven: dict[str, ExactSynaptic] = {}
    as32: set[str] = set()
    if plan is not None:
        executor = executor.double()
        event_driven = {n: m for n, m in runtimes_by_name(executor, run_graph).items() if isinstance(m, ExactSynaptic) and n in watch_events}
        for m in event_driven.values():
            m.report_events = True
        narrow_float32(executor, plan, keep=record_spikes)  # float32 between exact layers where no value changes
        spike_ins = [n for n, b in zip(names, binary) if b and fx.spikes_survive_rounding(plan.format_of(n))]
        mark_spike_inputs(executor, plan, spike_ins)  # no value check of their events
        # spikes read only by exact products stay float32 (0 and 1 either way): no float64 copy per chunk
        as32 = {n for n in float32_inputs(executor, plan, spike_ins) if n not in spike_rec}
        executor.kept_input_dtypes = dict.fromkeys(as32, torch.float32)

    in_fmts = [plan.format_of(n) for n in names] if plan is not None else None
    bar = _progress(T, progress)
    state = None
    # a fixed-point run says where it saturated (talon.backend.cpu.clip_watch)
    watch = clip_watch.watching() if plan is not None else contextlib.nullcontext()
    with torch.inference_mode(), watch as clip_log:
        task = None
        if bar is not None:
            bar.start()
            task = bar.add_task("simulate", total=T)
        try:
            for t0 in range(0, T, chunk):
                t1 = min(T, t0 + chunk)
                xs = [_chunk_input(stim, n, t0, t1) for n in names]
                for n, x in zip(names, xs):
                    if n in check_spikes:
                        spike_check(n, x, f" (from its encoder, steps {t0} to {t1 - 1})")
                if calibrate:
                    for n, x in zip(names, xs):
                        m = x.detach().abs().max().to(torch.float64)
                        max_out[n] = torch.maximum(max_out[n], m) if n in max_out else m
                if in_fmts is not None:  # `binary`: checked just above where the encoder is the user's
                    for n, x, f, b in zip(names, xs, in_fmts, binary):
                        if not (b and fx.spikes_survive_rounding(f)):  # 0 and 1 fit such a format
                            clip_watch.note_input(n, x, f)
                    xs = [fx.spike_input32(x) if n in as32 and x.dtype == torch.float32 else fx.round_input(x, f, s)
                          for n, x, f, s in zip(names, xs, in_fmts, binary)]
                for n, x in zip(names, xs):
                    if n in spike_rec:  # after fixed-point rounding: what the graph actually sees
                        spike_rec[n].append(x)
                outs, state = executor.run(*xs, state=state, batch_time=batch_time)
                count_deferred()
                for n, out in zip(out_rec, outs if isinstance(outs, tuple) else (outs,)):
                    out_rec[n].append(out)
                if bar is not None:
                    bar.update(task, completed=t1)
        finally:
            if bar is not None:
                bar.stop()
    if clip_log is not None:
        clip_log.warn()

    return RunRecord(
        steps=T,
        batch=B,
        spike_counts={n: int(v) for n, v in spike_acc.items()},
        input_events={n: int(v) for n, v in event_acc.items()},
        outputs={n: torch.cat(v) if len(v) > 1 else v[0] for n, v in out_rec.items()},
        spikes={n: torch.cat(v) if len(v) > 1 else v[0] for n, v in spike_rec.items() if v},
        membranes={n: torch.cat(v) for n, v in mem_rec.items() if v},
        max_abs_output={n: _max_abs(v) for n, v in max_out.items()},
        max_abs_state={n: _max_abs(v) for n, v in max_state.items()},
        max_abs_current={n: _max_abs(v) for n, v in max_cur.items()},
        mismatches={n: int(v) for n, v in mismatch_acc.items()},
    )


def _same_values(seen: torch.Tensor, arg: torch.Tensor) -> bool:
    """True when `seen` (what a node's module was given) is `arg` (what the executor gave it) reshaped: the
    same storage, start, number of elements and dtype, both contiguous."""
    return (seen.data_ptr() == arg.data_ptr() and seen.numel() == arg.numel() and seen.dtype == arg.dtype
            and seen.is_contiguous() and arg.is_contiguous())


def _agreement(reference: torch.Tensor, mismatches: int) -> float:
    return (reference.numel() - mismatches) / reference.numel() if reference.numel() else 1.0


def _chunk_ranges(vs: torch.Tensor) -> list:
    """The (min, max) pairs a chunk of per-step values (T, ...) adds to a calibration range: one pair
    for the whole chunk, which `_max_abs` reduces to exactly the value the T per-step pairs give, unless
    the chunk holds only zeros or a NaN, where the per-step pairs are kept (which zero's sign, or which
    NaN, the reductions return depends on how they are grouped)."""
    lo, hi = torch.aminmax(vs)
    low, high = float(lo), float(hi)
    if (low == 0.0 and high == 0.0) or math.isnan(low) or math.isnan(high):
        return [torch.aminmax(v) for v in vs]
    return [(lo, hi)]


def _max_abs(pairs: Any) -> float:
    """The largest |x| over torch.aminmax results: max(-min, max), exactly max(|x|) (NaN stays NaN).
    A graph input's range, taken once per chunk, is already that largest |x| (a 0-d tensor)."""
    if isinstance(pairs, torch.Tensor):
        return float(pairs)
    lo = torch.stack([p[0] for p in pairs]).min()
    hi = torch.stack([p[1] for p in pairs]).max()
    return float(torch.maximum(torch.neg(lo), hi).to(torch.float64))


def _chunk_input(stim: Stimulus, name: str, t0: int, t1: int) -> torch.Tensor:
    if name in stim.sequences:
        return stim.sequences[name][t0:t1]
    src = stim.sources[name]
    if isinstance(src, ConstantEncoder):
        x = stim.step(t0)[name]
        return x.unsqueeze(0).expand(t1 - t0, *x.shape)
    return torch.stack([stim.step(t)[name] for t in range(t0, t1)])


def simulate_graph(
    graph: Graph,
    inputs: Any = None,
    n_steps: int | None = None,
    mode: str = "float",
    record: Any = None,
    *,
    fixed_config: fx.FixedPointConfig | None = None,
    calibration_inputs: Any = None,
    compare: bool = True,
    chunk_steps: int | None = None,
    progress: bool | None = None,
    batch_time: bool = True,
    backend: str = "cpu",
    calibration: fx.Calibration | None = None,
) -> SimulationResult:
    """See CPUBackend.simulate."""
    if mode not in ("float", "fixed"):
        raise BackendError(f"mode must be 'float' or 'fixed', got {mode!r}")
    if calibration is not None:
        check_kept_calibration_use(mode, calibration_inputs)
    started = time.perf_counter()
    input_shapes = {n: tuple(graph.nodes[n].shape) for n in graph.input_names}
    stim = make_stimulus(inputs, input_shapes, n_steps, spike_inputs=spike_inputs(graph))
    priced = priced_spike_inputs(graph, stim)
    unchecked = [n for n in priced if stim.binary.get(n) is None]
    rec_spikes, rec_mems = _normalize_record(record, graph)
    memo = graph_memo.derived(graph)  # what depends on the graph alone, kept while its content is unchanged
    costs = _memoised(memo, "costs", lambda: graph_costs(graph))
    spiking = [n for n, node in graph.nodes.items() if node.spiking]
    driven = _memoised(memo, ("spike_driven_layers", tuple(priced)), lambda: _priced_driven_layers(graph, priced, costs))
    common = {"count_events": driven, "chunk_steps": chunk_steps, "progress": progress, "costs": costs,
              "batch_time": batch_time, "check_spikes": unchecked}

    plan = None
    agreement = None
    if mode == "float":
        run = run_instrumented(graph, stim, record_spikes=rec_spikes, record_membranes=rec_mems, **common)
    else:
        if calibration is None:
            plan, reference = plan_for(graph, stim, fixed_config, calibration_inputs, compare_spikes=spiking if compare else (), chunk_steps=chunk_steps, progress=progress, costs=costs)
        else:  # a kept calibration: no calibration run; the float run of the stimulus only for the agreement
            plan = plan_from_calibration(graph, calibration, fixed_config, costs=costs, memo=memo)
            reference = run_instrumented(graph, stim, record_spikes=spiking, **_reference_kw(chunk_steps, progress, costs)) if compare else None
        agree_with = {n: reference.spikes[n] for n in spiking} if compare else None
        run = run_instrumented(graph, stim, record_spikes=rec_spikes, record_membranes=rec_mems, plan=plan, agree_with=agree_with, **common)
        if compare:
            # the fraction of (step, sample, neuron) whose spike or silence is the float run's
            agreement = {n: _agreement(reference.spikes[n], run.mismatches[n]) for n in spiking}

    T, B = run.steps, run.batch
    shapes = {n: _output_shape(costs[n], graph, n) for n in graph.output_names}
    valid = True
    for name in graph.output_names:
        out = run.outputs[name]
        want = (T, B, *shapes[name])
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != want or not _all_finite(out):
            valid = False
    neurons = {n: costs[n].activation_elements for n in spiking}
    rates = {n: run.spike_counts[n] / (neurons[n] * T * B) if neurons[n] else 0.0 for n in spiking}
    return SimulationResult(
        backend=backend,
        mode=mode,
        timesteps_run=T,
        batch_size=B,
        spike_counts=run.spike_counts,
        firing_rates=rates,
        neurons=neurons,
        input_events=run.input_events,
        outputs=run.outputs,
        outputs_valid=valid,
        spikes=run.spikes,
        membranes=run.membranes,
        agreement=agreement,
        fixed_point=plan,
        stimulus=stim.description,
        wall_time_s=time.perf_counter() - started,
        spike_inputs=priced,
    )


def _all_finite(x: torch.Tensor) -> bool:
    """torch.isfinite(x).all(), in one read where it holds: a sum is finite only when no element is NaN or
    ±inf (a finite sum decides; one that overflowed, or any doubt, goes to the element-wise check)."""
    if x.is_floating_point() and sum_is_finite(x):
        return True
    return bool(torch.isfinite(x).all())


def _memoised(memo: dict, key: Any, compute: Any) -> Any:
    try:
        return memo[key]
    except KeyError:
        value = memo[key] = compute()
        return value


def _priced_driven_layers(graph: Graph, priced: dict[str, str], costs: dict) -> list[str]:
    """The synaptic layers fed by spikes when the Inputs of `priced` count as spike sources."""
    priced_graph = pricing_graph(graph, priced)
    return spike_driven_layers(priced_graph, costs if priced_graph is graph else None)


def _output_shape(cost: Any, graph: Graph, name: str) -> tuple[int, ...]:
    """The declared sample shape of an Output node (shapes were inferred when the executor was built)."""
    shape = graph.nodes[name].output_shape
    return tuple(shape) if shape is not None else tuple(graph.infer_shapes()[name][0])


def _reference_kw(chunk_steps: int | None, progress: bool | None, costs: dict) -> dict[str, Any]:
    """The options of the float runs behind a plan (calibration, agreement reference): no counting."""
    return {"chunk_steps": chunk_steps, "progress": progress, "count_events": (), "count_spikes": False, "costs": costs}


def calibration_stimulus(graph: Graph, calibration_inputs: Any, n_steps: int | None = None, default_steps: int = 10) -> Stimulus:
    """The stimulus a calibration run is fed: `calibration_inputs` as simulate reads them, for `n_steps`
    steps (default: a sequence's own length, else `default_steps`)."""
    input_shapes = {n: tuple(graph.nodes[n].shape) for n in graph.input_names}
    return make_stimulus(calibration_inputs, input_shapes, n_steps, default_steps, spike_inputs=spike_inputs(graph))


def calibrate_run(
    graph: Graph, stim: Stimulus, *, record_spikes: Iterable[str] = (), chunk_steps: int | None = None,
    progress: bool | None = None, costs: dict | None = None,
) -> tuple[fx.Calibration, RunRecord]:
    """The calibration of `graph` on a float run of `stim` (the ranges every fixed-point format is fitted
    to), and that run (recording the spikes of `record_spikes`)."""
    fx.check_supported(graph)
    kw = _reference_kw(chunk_steps, progress, costs if costs is not None else graph_costs(graph))
    cal = run_instrumented(graph, stim, record_spikes=record_spikes, calibrate=True, **kw)
    for n in graph.input_names:  # inputs: the range of what is fed
        cal.max_abs_output.setdefault(n, 0.0)
    calibration = fx.Calibration(cal.max_abs_output, cal.max_abs_state, f"float run, {cal.steps} steps: {stim.description}", cal.max_abs_current)
    return calibration, cal


def plan_for(
    graph: Graph,
    stim: Stimulus,
    config: fx.FixedPointConfig | None,
    calibration_inputs: Any = None,
    *,
    compare_spikes: Iterable[str] = (),
    chunk_steps: int | None = None,
    progress: bool | None = None,
    costs: dict | None = None,
) -> tuple[fx.FixedPointPlan, RunRecord]:
    """Calibrate on a float run (of `calibration_inputs` for the simulation's steps unless they are a sequence,
    default: the simulation's own stimulus) and plan.

    Returns the plan and the float run on `stim` (for the agreement report: its spikes and ranges; these
    runs count no spikes and no input events). `costs`: graph_costs(graph), when the caller has it already."""
    costs = costs if costs is not None else graph_costs(graph)
    kw = {"chunk_steps": chunk_steps, "progress": progress, "costs": costs}
    if calibration_inputs is not None:
        # a constant or encoded calibration input runs as long as the simulation (a sequence, its own length),
        # as compile(calibration_inputs=c, n_steps=n) does: the same formats for the same n
        calibration, cal = calibrate_run(graph, calibration_stimulus(graph, calibration_inputs, default_steps=stim.n_steps), **kw)
        reference = run_instrumented(graph, stim, record_spikes=compare_spikes, **_reference_kw(**kw)) if compare_spikes else cal
    else:
        calibration, reference = calibrate_run(graph, stim, record_spikes=compare_spikes, **kw)
    return fx.plan_fixed_point(graph, calibration, config, costs=costs), reference
