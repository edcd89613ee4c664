"""Run a talon.ir.Graph in PyTorch: GraphExecutor (DAGs) and CyclicGraphExecutor (recurrent graphs).

This module owns *when* each node runs and on what; what a node computes lives in modules.py.

Execution model (docs/runtime.md has the long form):
* one ``forward`` call is one timestep; nodes run in ``graph.topological_order()``;
* stateful nodes keep a state; with ``return_state=True`` the caller owns it (``out, state = ex(x, state)``),
  otherwise the executor keeps it between calls until ``reset()``;
* edges in ``graph.delayed_edges()`` (leaving a stateful node inside a cycle) carry the source's output
  from the previous step, zeros at the first step; that output is part of the state;
* ``run(x_seq)`` takes a whole (T, B, ...) sequence: stateless nodes run once on the (T*B, ...) tensor,
  stateful nodes loop over T, nodes of a recurrent cycle step together.
"""

from __future__ import annotations

import collections.abc
import math
import os
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from talon.errors import BackendError, GraphValidationError
from talon.ir.graph import Graph
from talon.ir.node import Node
from talon.bridge._carry import disown
from talon.bridge.modules import RuntimeContext, StatefulRuntime, build_runtime, is_stateful, register_runtime

Observer = Callable[[str, Node, list, Any, Any], None]
StateDict = dict  # {node name: state tuple (dict for a nested graph), "<src>/output": previous outputs}

_MISSING = object()
# isinstance against the abc directly: typing.Mapping's check goes through typing's own hooks first,
# a few microseconds on every step.
_Mapping = collections.abc.Mapping
_OUTPUT_KEY = "/output"  # '/' never occurs in node names, so these keys cannot collide with one


class _Call:
    """One node's precomputed call: where its inputs are read from and where its outputs go."""

    __slots__ = ("name", "node", "module", "stateful", "inputs", "out", "n_out", "observed")

    def __init__(self, name: str, node: Node, module: nn.Module, inputs: list[int], out: int, n_out: int) -> None:
        self.name, self.node, self.module = name, node, module
        self.stateful = is_stateful(module)
        self.inputs, self.out, self.n_out = tuple(inputs), out, n_out
        self.observed = False  # whether the observer (when set) is shown this node: set with the observer


class GraphExecutor(nn.Module):
    """A talon.ir.Graph as a stateful torch module; one call is one timestep.

    ``forward(*inputs, state=None)``: inputs in ``graph.input_names`` order (or one dict by name), each
    (B, *Input.shape). Returns the output (a tuple when the graph has several Output nodes), and with
    ``return_state=True`` also the new state. ``run(x_seq)`` does a whole (T, B, ...) sequence.
    ``observer(name, node, inputs, output, state)``, when set, is called after every node runs. An
    observer whose ``keeps_state`` attribute is False (see `TransientStateObserver`) lets ``run``
    keep stepping neuron states in place across time chunks; any other observer is shown states that
    are never modified afterwards. An observer with a ``nodes`` attribute (a collection of names, see
    `TransientStateObserver`) is called for those nodes only.
    """

    #: run() processes this many bytes of activations per chunk of timesteps (tuned on a 2-core x86:
    #: large enough for efficient matrix products, small enough to stay in cache).
    chunk_bytes: int = 8 << 20

    def __init__(
        self,
        graph: Graph,
        return_state: bool = False,
        node_map: Mapping[str, Any] | None = None,
        *,
        observer: Observer | None = None,
        dt: float | None = None,
        _prefix: str = "",
    ) -> None:
        super().__init__()
        self.graph = graph
        self.return_state = bool(return_state)
        self.dt = float(graph.dt if dt is None else dt)
        node_map = dict(node_map or {})

        # Build runtimes first so an unrunnable node is reported by name before any shape complaint.
        runtimes = {}
        for name, node in graph.nodes.items():
            if node.type_name == "Input":
                continue
            ctx = RuntimeContext(name=_prefix + name, dt=self.dt, node_map=node_map)
            runtimes[name] = build_runtime(node, ctx)
        graph.validate()
        self.runtimes = nn.ModuleDict({_module_key(n): m for n, m in runtimes.items()})
        self._compile(runtimes)
        self._state: StateDict | None = None
        self._batch: int | None = None
        self._observer: Observer | None = None
        self._observer_keeps = True
        self.observer = observer
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # follows .to(): input dtype
        self._input_dtype = self._anchor.dtype  # read on every call: a plain attribute, kept in step by _apply
        #: Inputs passed on in their own dtype when it is the one named here, instead of being converted to
        #: the executor's (a caller whose readers of that input compute on it exactly, e.g. fixed-point runs).
        self.kept_input_dtypes: dict[str, torch.dtype] = {}

    def runtime_of(self, name: str) -> nn.Module:
        """The runtime module built for node `name` (any node but an Input)."""
        return self.runtimes[_module_key(name)]

    # -- plan ---------------------------------------------------------------------------------------
    def _compile(self, runtimes: dict[str, nn.Module]) -> None:
        g = self.graph
        if not isinstance(self, CyclicGraphExecutor) and g.cycles():
            cyc = [", ".join(c) for c in g.cycles()]
            raise BackendError(f"the graph has recurrent cycles ({'; '.join(cyc)}): run it with CyclicGraphExecutor (ir_to_torch picks it)")
        shapes = g.infer_shapes()
        order = g.topological_order()
        delayed = set(g.delayed_edges())
        out_idx = g.edge_output_index()

        base: dict[str, int] = {}
        n_slots = 0
        for name in g.nodes:
            base[name] = n_slots
            n_slots += max(1, len(shapes[name]))
        # Delayed edges read a slot of their own, filled from the state before each step.
        delayed_slot: dict[tuple[str, int], int] = {}
        in_slots: dict[str, list[int]] = {n: [] for n in g.nodes}
        for i, (src, dst) in enumerate(g.edges):
            k = out_idx[i]
            if i in delayed:
                if (src, k) not in delayed_slot:
                    delayed_slot[(src, k)] = n_slots
                    n_slots += 1
                in_slots[dst].append(delayed_slot[(src, k)])
            else:
                in_slots[dst].append(base[src] + k)
        self._n_slots = n_slots

        self._input_names = g.input_names
        self._output_names = g.output_names
        self._input_slots = [base[n] for n in self._input_names]
        self._input_shapes = [tuple(g.nodes[n].shape) for n in self._input_names]
        self._output_slots = [base[n] for n in self._output_names]
        self._calls = [
            _Call(n, g.nodes[n], runtimes[n], in_slots[n], base[n], max(1, len(shapes[n])))
            for n in order
            if n in runtimes
        ]
        self._by_name = {c.name: c for c in self._calls}
        # Per delayed source: state key, its output slots, and (delayed slot, output index, sample shape).
        self._delayed: list[tuple[str, int, int, list[tuple[int, int, tuple]]]] = []
        for src in dict.fromkeys(s for s, _ in delayed_slot):
            reads = [(slot, k, tuple(shapes[src][k])) for (s, k), slot in delayed_slot.items() if s == src]
            self._delayed.append((src + _OUTPUT_KEY, base[src], len(shapes[src]), reads))
        self._state_keys = {c.name for c in self._calls if c.stateful} | {d[0] for d in self._delayed}
        # Per state key, what tells the batch size of its value (_check_batch): a nested executor, or a
        # function of the value.
        self._batch_probes: dict[str, Any] = {key: _delayed_batch for key, *_ in self._delayed}
        for c in self._calls:
            if c.stateful:
                if isinstance(c.module, StatefulSubgraph):
                    self._batch_probes[c.name] = c.module.executor
                elif callable(getattr(c.module, "state_batch", None)):
                    self._batch_probes[c.name] = c.module.state_batch
        # Bytes of float32 activations one sample produces in one step, all nodes together.
        self._step_bytes = 4 * sum(math.prod(shape) for outs in shapes.values() for shape in outs)
        self._blocks = self._time_blocks(order, runtimes)

    def _time_blocks(self, order: list[str], runtimes: dict[str, nn.Module]) -> list[list[_Call]]:
        """Groups for run(): a node alone, or all nodes of one recurrent cycle (stepped together).

        Groups come in a topological order of the condensed graph, so each group's full time series
        depends only on groups before it.
        """
        g = self.graph
        comp_of = {n: i for i, comp in enumerate(g.cycles()) for n in comp}
        pos = {n: i for i, n in enumerate(order)}
        key = {n: ("c", comp_of[n]) if n in comp_of else ("n", n) for n in g.nodes}
        members: dict[tuple, list[str]] = {}
        for n in order:
            members.setdefault(key[n], []).append(n)
        preds: dict[tuple, set] = {k: set() for k in members}
        for s, d in g.edges:
            if key[s] != key[d]:
                preds[key[d]].add(key[s])
        done: set = set()
        blocks: list[list[_Call]] = []
        pending = sorted(members, key=lambda k: pos[members[k][0]])
        while pending:
            for k in pending:
                if preds[k] <= done:
                    break
            else:  # pragma: no cover - the condensation of a graph is always acyclic
                raise GraphValidationError("cannot order the graph's recurrent components")
            pending.remove(k)
            done.add(k)
            calls = [self._by_name[n] for n in members[k] if n in runtimes]
            if calls:
                blocks.append(calls)
        return blocks

    # -- observer ---------------------------------------------------------------------------------
    @property
    def observer(self) -> Observer | None:
        return self._observer

    @observer.setter
    def observer(self, fn: Observer | None) -> None:
        """Set or clear the per-node hook; nested graphs report their nodes as "outer/inner"."""
        self._observer = fn
        self._observer_keeps = _keeps_state(fn)
        nodes = _observed_nodes(fn)
        for c in self._calls:
            c.observed = fn is not None and (nodes is None or c.name in nodes)
            if isinstance(c.module, _SubgraphMixin):
                c.module.executor.observer = None if fn is None else _prefixed(fn, c.name + "/")

    # -- state ------------------------------------------------------------------------------------
    def _apply(self, fn: Callable, recurse: bool = True) -> "GraphExecutor":
        # .to()/.cuda()/.double() move the kept state with the weights, as snnTorch's state buffers move.
        super()._apply(fn, recurse)
        self._input_dtype = self._anchor.dtype
        if self._state is not None:
            self._state = _map_tensors(fn, self._state)
        return self

    @property
    def state(self) -> StateDict | None:
        """The state kept between calls when return_state=False (None before the first call)."""
        return self._state

    def reset(self) -> None:
        """Forget the kept state: the next call starts from zeros (snnTorch's reset_hidden)."""
        self._state = None
        self._batch = None

    @property
    def state_keys(self) -> set[str]:
        """Keys of a full state dict: stateful node names and "<name>/output" for recurrent sources."""
        return set(self._state_keys)

    # -- inputs -----------------------------------------------------------------------------------
    def _inputs(self, args: Sequence[Any], seq: bool) -> list[Tensor]:
        if len(args) == 1 and not isinstance(args[0], Tensor) and isinstance(args[0], _Mapping):
            given = args[0]
            missing = [n for n in self._input_names if n not in given]
            if missing:
                raise BackendError(f"missing inputs {missing}; the graph's inputs are {self._input_names}")
            args = [given[n] for n in self._input_names]
        if len(args) != len(self._input_names):
            raise BackendError(f"the graph has {len(self._input_names)} inputs {self._input_names}, got {len(args)} tensors")
        dtype = self._input_dtype
        lead = 2 if seq else 1
        out = []
        for name, shape, x in zip(self._input_names, self._input_shapes, args):
            if not isinstance(x, Tensor):
                x = torch.as_tensor(x)
            if x.dim() != len(shape) + lead or x.shape[lead:] != shape:
                want = ("(T, B, " if seq else "(B, ") + ", ".join(map(str, shape)) + ")"
                raise BackendError(f"input {name!r} expects shape {want}, got {tuple(x.shape)}")
            if x.dtype != dtype and self.kept_input_dtypes.get(name) != x.dtype:
                x = x.to(dtype)
            out.append(x)
        if len(out) > 1:
            batch = out[0].shape[lead - 1]
            for name, x in zip(self._input_names, out):
                if x.shape[lead - 1] != batch:
                    raise BackendError(f"input {name!r} has batch size {x.shape[lead - 1]}, but {self._input_names[0]!r} has {batch}")
        return out

    def _begin(self, state: Any, batch: int) -> StateDict:
        """The state to start from: the caller's (return_state=True) or the kept one; either re-zeroed where
        it holds another batch size, as snnTorch does."""
        if not self.return_state:
            if state is not _MISSING and state is not None:
                raise BackendError("this executor keeps its own state (return_state=False); build it with return_state=True to pass state")
            if self._state is None or self._batch != batch:
                self._state, self._batch = {}, batch
            return self._state
        if state is None or state is _MISSING:
            return {}
        if type(state) is not dict and not isinstance(state, _Mapping):
            raise BackendError(f"state must be the dict returned by a previous call (or None), got {type(state).__name__}")
        if not self._state_keys.issuperset(state):
            unknown = set(state) - self._state_keys
            raise BackendError(f"state has entries {sorted(unknown)} for no stateful node of this graph; expected keys {sorted(self._state_keys)}")
        return self._same_batch(state, batch)

    def _same_batch(self, state: Mapping, batch: int) -> Mapping:
        """`state` less the entries built for another batch size, which start from zeros: snnTorch replaces
        every state whose shape is not the input's by zeros, passed in or hidden (docs/runtime.md)."""
        kept: dict[str, Any] = {}
        for key, value in state.items():
            probe = None if value is None else self._batch_probes.get(key)
            if isinstance(probe, GraphExecutor):  # a nested graph's state
                kept[key] = probe._same_batch(value, batch)
            elif probe is None or probe(value) in (None, batch):
                kept[key] = value
        return state if len(kept) == len(state) and all(kept[k] is state[k] for k in kept) else kept

    def _finish(self, outs: list[Tensor], new_state: StateDict) -> Any:
        out = outs[0] if len(outs) == 1 else tuple(outs)
        if self.return_state:
            return out, new_state
        self._state = new_state
        return out

    # -- one timestep ---------------------------------------------------------------------------
    def forward(self, *args: Any, state: Any = _MISSING) -> Any:
        """One timestep. With return_state=True: ``out, state = executor(*inputs, state)``."""
        if state is _MISSING and self.return_state and len(args) == len(self._input_names) + 1:
            state, args = args[-1], args[:-1]
        xs = self._inputs(args, seq=False)
        start = self._begin(state, xs[0].shape[0])
        outs, new_state = self._step(xs, start)
        return self._finish(outs, new_state)

    def _step(self, xs: list[Tensor], state: Mapping) -> tuple[list[Tensor], StateDict]:
        """The functional core: inputs and a state dict in, outputs and a new state dict out."""
        values: list[Any] = [None] * self._n_slots
        for slot, x in zip(self._input_slots, xs):
            values[slot] = x
        new_state: StateDict = {}
        if self._delayed:
            self._load_delayed(values, state, xs[0])
        self._run_calls(self._calls, values, state, new_state)
        for key, first, n_out, _ in self._delayed:
            new_state[key] = tuple(values[first : first + n_out])
        return [values[s] for s in self._output_slots], new_state

    def _load_delayed(self, values: list, state: Mapping, like: Tensor) -> None:
        for key, _, _, reads in self._delayed:
            prev = state.get(key)
            for slot, k, shape in reads:
                values[slot] = like.new_zeros((like.shape[0], *shape)) if prev is None else prev[k]

    def _run_calls(self, calls: list[_Call], values: list, state: Mapping, new_state: StateDict) -> None:
        observer = self._observer
        for c in calls:
            args = [values[i] for i in c.inputs]
            st = None
            if c.stateful:
                st = state.get(c.name)
                if st is None:
                    st = c.module.init_state(args)
                out, st = c.module.step(args, st)
                new_state[c.name] = st
            else:
                out = c.module(*args)
            if c.n_out == 1:
                values[c.out] = out
            else:
                _store_outputs(c, values, out)
            if observer is not None and c.observed:
                observer(c.name, c.node, args, out, st)

    # -- whole sequences ----------------------------------------------------------------------------
    def run(self, *args: Any, state: Any = _MISSING, batch_time: bool = True) -> Any:
        """Run whole input sequences (T, B, ...) and return every output step as (T, B, ...).

        Continues from (and updates) the kept state, or from `state` with return_state=True, exactly as
        T calls of ``forward`` would. Steps are processed in chunks of about `chunk_bytes` of activations;
        the observer sees each node once per chunk, with (Tc, B, ...) sequences. batch_time=True applies each stateless node once to the (T*B, ...)
        tensor; its results are those of the per-step calls wherever torch computes a batched op row by
        row (see docs/runtime.md: true for convolutions and elementwise ops; a matrix product may round
        differently at some small batch sizes). batch_time=False loops over steps and is always identical.
        """
        if state is _MISSING and self.return_state and len(args) == len(self._input_names) + 1:
            state, args = args[-1], args[:-1]
        xs = self._inputs(args, seq=True)
        T, batch = xs[0].shape[0], xs[0].shape[1]
        for name, x in zip(self._input_names, xs):
            if x.shape[0] != T:
                raise BackendError(f"input {name!r} has {x.shape[0]} steps, but {self._input_names[0]!r} has {T}")
        start = self._begin(state, batch)
        if T == 0:
            raise BackendError("run() needs at least one timestep")
        if batch_time:
            # Chunks of steps keep each node's (chunk*B, ...) activations cache-sized: one huge (T*B, ...)
            # tensor per node makes convolutions and pooling memory-bound. The state carries across.
            chunk = max(1, self.chunk_bytes // max(1, batch * self._step_bytes))
            cur: Mapping = start
            pieces = []
            for t0 in range(0, T, chunk):
                o, cur = self._run_batched([x[t0 : t0 + chunk] for x in xs], cur)
                pieces.append(o)
            outs = pieces[0] if len(pieces) == 1 else [torch.cat(p) for p in zip(*pieces)]
            new_state = disown(cur)  # runtimes may own their state between chunks, never after
        else:
            steps = []
            cur: Mapping = start
            for t in range(T):
                o, cur = self._step([x[t] for x in xs], cur)
                steps.append(o)
            outs, new_state = [torch.stack(o) for o in zip(*steps)], dict(cur)
        return self._finish(outs, new_state)

    def _run_batched(self, xs: list[Tensor], state: Mapping) -> tuple[list[Tensor], StateDict]:
        T, B = xs[0].shape[0], xs[0].shape[1]
        seq: list[Any] = [None] * self._n_slots
        for slot, x in zip(self._input_slots, xs):
            seq[slot] = x
        new_state: StateDict = {}
        observer = self._observer
        for block in self._blocks:
            if len(block) == 1 and not self._in_cycle(block[0]):
                c = block[0]
                args = [seq[i] for i in c.inputs]
                st = None
                if c.stateful:
                    st = state.get(c.name)
                    if st is None:
                        st = c.module.init_state([a[0] for a in args])
                    run_seq = getattr(c.module, "run_seq", None)
                    if run_seq is not None:
                        out, st = run_seq(args, st)
                    else:
                        out, st = StatefulRuntime.run_seq(c.module, args, st)
                    new_state[c.name] = st
                    if observer is not None and c.observed:  # an observer may keep what it is shown: never step it in place
                        st = disown(st)
                        if self._observer_keeps:
                            new_state[c.name] = st
                else:
                    flat = [a.reshape(T * B, *a.shape[2:]) for a in args]
                    out = c.module(*flat)
                    out = tuple(o.reshape(T, B, *o.shape[1:]) for o in out) if c.n_out > 1 else out.reshape(T, B, *out.shape[1:])
                if c.n_out == 1:
                    seq[c.out] = out
                else:
                    _store_outputs(c, seq, out)
                if observer is not None and c.observed:
                    observer(c.name, c.node, args, out, st)
            else:
                self._run_cycle(block, seq, state, new_state, T)
        return [seq[s] for s in self._output_slots], new_state

    def _in_cycle(self, call: _Call) -> bool:
        return False  # a DAG has no cycles; CyclicGraphExecutor overrides

    def _run_cycle(self, block: list[_Call], seq: list, state: Mapping, new_state: StateDict, T: int) -> None:
        raise AssertionError("a DAG has no recurrent blocks")  # pragma: no cover

    def extra_repr(self) -> str:
        return f"{len(self.graph.nodes)} nodes, {len(self.graph.edges)} edges, dt={self.dt:g}, return_state={self.return_state}"


class CyclicGraphExecutor(GraphExecutor):
    """A GraphExecutor for graphs with recurrent edges (cycles through a stateful node).

    Each delayed edge delivers its source's output from the previous step (zeros at the first step), so
    lif -> rec -> lif with lif's inputs in edge order [x, rec] computes snnTorch RLeaky's
    ``beta*mem + x + rec(spk_prev)`` in the same float order.
    """

    def _compile(self, runtimes: dict[str, nn.Module]) -> None:
        super()._compile(runtimes)
        self._cycle_nodes = {n for comp in self.graph.cycles() for n in comp}
        self._delayed_by_src = {d[0][: -len(_OUTPUT_KEY)]: d for d in self._delayed}

    def _in_cycle(self, call: _Call) -> bool:
        return call.name in self._cycle_nodes

    def _run_cycle(self, block: list[_Call], seq: list, state: Mapping, new_state: StateDict, T: int) -> None:
        """Step one recurrent component over T; its inputs from outside are whole sequences already."""
        names = {c.name for c in block}
        delayed = [self._delayed_by_src[c.name] for c in block if c.name in self._delayed_by_src]
        produced = [c.out + k for c in block for k in range(c.n_out)]
        internal = set(produced) | {slot for d in delayed for slot, _, _ in d[3]}
        outside = sorted({i for c in block for i in c.inputs} - internal)
        batch = next(s for s in seq if isinstance(s, Tensor))
        observer = self._observer
        seen: dict[str, list] = {c.name: [] for c in block}
        if observer is not None:
            # Collect per-step calls; the real observer sees each node once, with whole sequences.
            self._observer = lambda name, node, args, out, st: seen[name].append((args, out))
        try:
            values: list[Any] = [None] * self._n_slots
            cur: Mapping = {k: v for k, v in state.items() if k.split("/", 1)[0] in names}
            history: dict[int, list[Tensor]] = {s: [] for s in produced}
            for t in range(T):
                for i in outside:
                    values[i] = seq[i][t]
                for key, _, _, reads in delayed:
                    prev = cur.get(key)
                    for slot, k, shape in reads:
                        values[slot] = batch.new_zeros((batch.shape[1], *shape)) if prev is None else prev[k]
                step_state: StateDict = {}
                self._run_calls(block, values, cur, step_state)
                for key, first, n_out, _ in delayed:
                    step_state[key] = tuple(values[first : first + n_out])
                cur = step_state
                for s in produced:
                    history[s].append(values[s])
        finally:
            self._observer = observer
        for s in produced:
            seq[s] = torch.stack(history[s])
        new_state.update(cur)
        if observer is not None:
            for c in block:
                if not c.observed:
                    continue
                steps = seen[c.name]
                args = [torch.stack(a) for a in zip(*(a for a, _ in steps))]
                out = seq[c.out] if c.n_out == 1 else tuple(seq[c.out : c.out + c.n_out])
                observer(c.name, c.node, args, out, cur.get(c.name))


# -- nested graphs ---------------------------------------------------------------------------------


def _delayed_batch(value: Any) -> int | None:
    """The batch size of a "<src>/output" state entry (last step's outputs)."""
    return value[0].shape[0] if value and isinstance(value[0], Tensor) else None


class _SubgraphMixin:
    executor: GraphExecutor


class StatelessSubgraph(_SubgraphMixin, nn.Module):
    """A nested Graph without stateful nodes: a plain function of its inputs."""

    def __init__(self, executor: GraphExecutor) -> None:
        super().__init__()
        self.executor = executor

    def forward(self, *inputs: Tensor) -> Any:
        outs, _ = self.executor._step(list(inputs), {})
        return outs[0] if len(outs) == 1 else tuple(outs)


class StatefulSubgraph(_SubgraphMixin, StatefulRuntime):
    """A nested Graph holding state: its state is the sub-executor's state dict."""

    def __init__(self, executor: GraphExecutor) -> None:
        super().__init__()
        self.executor = executor

    def init_state(self, inputs: Sequence[Tensor]) -> StateDict:
        return {}

    def step(self, inputs: Sequence[Tensor], state: StateDict) -> tuple[Any, StateDict]:
        outs, new_state = self.executor._step(list(inputs), state)
        return (outs[0] if len(outs) == 1 else tuple(outs)), new_state

    def run_seq(self, inputs: Sequence[Tensor], state: StateDict) -> tuple[Any, StateDict]:
        outs, new_state = self.executor._run_batched(list(inputs), state)
        return (outs[0] if len(outs) == 1 else tuple(outs)), new_state


def _build_subgraph(node: Graph, ctx: RuntimeContext) -> nn.Module:
    cls = CyclicGraphExecutor if node.cycles() else GraphExecutor
    executor = cls(node, return_state=True, node_map=ctx.node_map, dt=ctx.dt, _prefix=ctx.name + "/")
    return StatefulSubgraph(executor) if node.stateful else StatelessSubgraph(executor)


register_runtime("Graph", _build_subgraph)


# -- helpers ---------------------------------------------------------------------------------------


def _store_outputs(call: _Call, values: list, out: Any) -> None:
    if not isinstance(out, (tuple, list)) or len(out) != call.n_out:
        got = len(out) if isinstance(out, (tuple, list)) else 1
        raise BackendError(f"node {call.name!r} ({call.node.type_name}) must produce {call.n_out} outputs, its runtime returned {got}")
    values[call.out : call.out + call.n_out] = out


def _map_tensors(fn: Callable, value: Any) -> Any:
    if isinstance(value, Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_tensors(fn, v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(_map_tensors(fn, v) for v in value)
    return value


class TransientStateObserver:
    """Wraps an observer that keeps no state object it is shown beyond its own call (it may read the
    tensors, copy them or reduce them, but holds no reference to them).

    ``run`` may then go on stepping those states in place in its next time chunks (talon.bridge._carry),
    as it does without an observer; the observer still sees every chunk's values as they are at its
    call. Any observer without ``keeps_state = False`` (a plain function) is shown states that are
    never modified afterwards, at the cost of one state copy per neuron and chunk.
    """

    __slots__ = ("fn", "nodes")
    keeps_state = False

    def __init__(self, fn: Observer, nodes: Iterable[str] | None = None) -> None:
        self.fn = fn
        #: the node names it is shown (nested graphs' as "outer/inner"); None: every node
        self.nodes = None if nodes is None else frozenset(nodes)

    def __call__(self, name: str, node: Node, inputs: list, output: Any, state: Any) -> None:
        self.fn(name, node, inputs, output, state)


def _keeps_state(fn: Observer | None) -> bool:
    return fn is not None and getattr(fn, "keeps_state", True) is not False


def _observed_nodes(fn: Observer | None) -> frozenset | None:
    nodes = getattr(fn, "nodes", None)
    return None if nodes is None else frozenset(nodes)


def _prefixed(fn: Observer, prefix: str) -> Observer:
    def observe(name: str, node: Node, inputs: list, output: Any, state: Any) -> None:
        fn(prefix + name, node, inputs, output, state)

    nodes = _observed_nodes(fn)
    if nodes is not None:  # the nested graph's share of the names, without the prefix
        nodes = frozenset(n[len(prefix) :] for n in nodes if n.startswith(prefix))
    if _keeps_state(fn):
        if nodes is not None:
            observe.nodes = nodes  # type: ignore[attr-defined]
        return observe
    return TransientStateObserver(observe, nodes)


def _module_key(name: str) -> str:
    # ModuleDict keys may not contain '.'; node names may.
    return name.replace(".", "\u2024")


def ir_to_torch(
    graph_or_path: Graph | str | os.PathLike,
    return_state: bool = False,
    node_map: Mapping[str, Any] | None = None,
    *,
    observer: Observer | None = None,
) -> GraphExecutor:
    """Build the torch runtime of a graph (or a .t1c file): a GraphExecutor, or a CyclicGraphExecutor
    when the graph has recurrent edges.

    node_map overrides the runtime module of nodes, keyed by node name (nested: "outer/inner") or by type
    name (a name wins); each value is an ``nn.Module`` to use as is or a builder ``(node, ctx) -> nn.Module``
    following the protocol of talon.bridge.modules.
    """
    if isinstance(graph_or_path, (str, os.PathLike)):
        from talon.ir import read

        graph = read(graph_or_path)
    elif isinstance(graph_or_path, Graph):
        graph = graph_or_path
    else:
        raise BackendError(f"ir_to_torch expects a talon.ir.Graph or a path to a .t1c file, got {type(graph_or_path).__name__}")
    cls = CyclicGraphExecutor if graph.cycles() else GraphExecutor
    return cls(graph, return_state=return_state, node_map=node_map, observer=observer)
