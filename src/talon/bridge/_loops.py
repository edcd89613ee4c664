"""Time loops inside `forward`: find the loop torch.fx unrolled and reduce it to one step.

snnTorch's tutorials write `for step in range(num_steps): ... spk_rec.append(spk)` inside forward and
return `torch.stack(spk_rec, dim=0)`. torch.fx unrolls the loop, so the traced graph calls every module
once per iteration. This module finds the repetition (the same module calls, in the same order, T times
in a row), checks that every iteration computes the same thing as the first one, and that the only values
one iteration hands to the next are the neurons' own states, and returns the prologue plus the first
iteration: the graph of one step. Anything else that crosses iterations (a value fed back, a module called
once per iteration whose input changes otherwise) is refused with the module named, never dropped.

Loop forms recognised: a static input `x` (B, ...) read in every iteration (ops on it before the loop are
the prologue, recomputed each step from the same input), or a (T, B, ...) input read as `x[step]` / a
(B, T, ...) one read as `x[:, step]` (also through `x.transpose(0, 1)` or an identity `x.float()` taken
before the loop); zero states made lazily inside the loop (`if mem is None: mem = torch.zeros_like(cur)`)
are the start of the sequence. The first returned value is `torch.stack(rec, dim=0)` (or `dim=1`, batch-first;
the other ways of writing that record are read by talon.bridge._records)
of one per-step value, the last iteration's value, or ops after the loop on the last iteration alone
(`self.fc_out(spk)`), which join the step. Refusals quote the user's line (talon.bridge._source), not fx's node names.
"""

from __future__ import annotations

import difflib
import inspect
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.fx as fx
import torch.nn as nn

from talon.bridge._records import IDENTITY_METHODS, last_of, record_of, stacks, swaps_time_and_batch
from talon.bridge._results import is_namedtuple_of_result, namedtuple_items
from talon.bridge._state_aliases import drop_state_copies
from talon.bridge._source import index_expr, source_line
from talon.errors import UnsupportedModuleError

PROLOGUE, EPILOGUE = -1, 1 << 30

#: Calls that make a tensor from a shape alone; an all-zero one used as a neuron state is a zero start.
_ZERO_MAKERS = {torch.zeros_like, torch.zeros, torch.full_like, torch.full, "new_zeros", "new_full"}


@dataclass
class TimeLoop:
    """One step of a loop unrolled by torch.fx.

    `nodes`: the fx nodes of one step (prologue, then the first iteration) in graph order; `step_inputs`:
    the first iteration's reads of `x[0]` (none for a static input); `output`: the first iteration's node whose
    per-step value forward returns first; `last_only`: forward returns the last step's value, not the record.
    """

    num_steps: int
    nodes: list[fx.Node]
    step_inputs: tuple[fx.Node, ...]
    output: fx.Node
    last_only: bool
    #: The input's time dimension for `x[step]` (0, time-major) or `x[:, step]` (1, batch-first).
    time_dim: int = 0
    #: Views of the input that forward indexes per step (`x.transpose(0, 1)`): no IR node, the IR input is one step.
    input_views: frozenset = frozenset()
    #: For ops after the loop that read the last step (`return self.fc_out(spk)`): each last-step node they read,
    #: mapped to the same node of the first step, which the step graph holds.
    last_alias: dict = field(default_factory=dict)
    #: The dim of forward's record along which the steps are stacked: 0 (T, B, ...) or 1 (B, T, ...), a batch-first
    #: `torch.stack(spk_rec, dim=1)`; the step graph is the same either way.
    stack_dim: int = 0


def _indexes_input(n: fx.Node, views: dict[fx.Node, bool]) -> bool:
    return (n.op == "call_function" and n.target is operator.getitem and len(n.args) == 2
            and isinstance(n.args[0], fx.Node) and n.args[0] in views)


def _step_dim(n: fx.Node, views: dict[fx.Node, bool], k: int) -> int | None:
    """The model input's time dimension read by `x[k]`, `x[k, :, :]`, `x[k, ...]` (0) or `x[:, k]`, `x[:, k, ...]`
    (1), where x is the input or a view of it (`x.transpose(0, 1)` swaps the two); None for any other expression."""
    if not _indexes_input(n, views):
        return None
    index = n.args[1] if isinstance(n.args[1], tuple) else (n.args[1],)
    dim = 1 if len(index) >= 2 and index[0] == slice(None) and type(index[1]) is int else 0
    if not all(r is Ellipsis or r == slice(None) for r in index[dim + 1:]):
        return None
    if not (type(index[dim]) is int and index[dim] == k):
        return None
    return 1 - dim if views[n.args[0]] else dim


def _is_step_index(n: fx.Node, views: dict[fx.Node, bool], k: int) -> bool:
    return _step_dim(n, views, k) is not None


def _input_views(nodes: list[fx.Node], values: dict[fx.Node, Any]) -> dict[fx.Node, bool]:
    """The model input and the views of it that forward indexes per step: identity conversions (`x.float()`,
    `x.to(device)`) keep its layout; `x.transpose(0, 1)`, `x.permute(1, 0, ...)`, `x.swapaxes(0, 1)` swap time
    and batch (True)."""
    views: dict[fx.Node, bool] = {}
    for n in nodes:
        if n.op == "placeholder":
            if not views:
                views[n] = False
            continue
        if n.op not in ("call_method", "call_function") or not n.args or n.args[0] not in views:
            continue
        src, value, before = n.args[0], values.get(n), values.get(n.args[0])
        if not isinstance(value, torch.Tensor) or not isinstance(before, torch.Tensor):
            continue
        name = n.target if n.op == "call_method" else getattr(n.target, "__name__", "")
        same = value.shape == before.shape and value.dtype == before.dtype and value.device == before.device
        if name in IDENTITY_METHODS and same:
            views[n] = views[src]
        elif swaps_time_and_batch(n, values) is src:
            views[n] = not views[src]
    return views


def _at(n: fx.Node) -> str:
    line = source_line(n)
    return f" (at {line})" if line else ""


def _code(n: fx.Node) -> str:
    """The user's line that computed `n` ("`code` (file.py:12)"), else fx's node name."""
    return source_line(n) or repr(n.name)


def _what(n: fx.Node) -> str:
    """A traced value as the user wrote it: its source line, else fx's node name."""
    line = source_line(n)
    return f"the value of {line}" if line else repr(n.name)


STEP_FORMS = ("`x[step]`, `x[step, ...]` (a time-major (T, B, ...) input) or `x[:, step]` (batch-first (B, T, ...))")


class _Loop:
    def __init__(self, gm: fx.GraphModule, values: dict[fx.Node, Any], state_index: Callable[[nn.Module, str], int | None],
                 is_neuron: Callable[[nn.Module], bool]) -> None:
        self.gm = gm
        self.values = values
        self.state_index = state_index
        self.is_neuron = is_neuron
        self.nodes = list(gm.graph.nodes)
        self.pos = {n: i for i, n in enumerate(self.nodes)}
        self.calls = [n for n in self.nodes if n.op == "call_module"]
        self.placeholder = next((n for n in self.nodes if n.op == "placeholder"), None)
        self.views = _input_views(self.nodes, values)

    def module(self, n: fx.Node) -> nn.Module:
        return self.gm.get_submodule(str(n.target))

    # -- where the loop is --------------------------------------------------------------------------
    def candidates(self) -> list[tuple[int, int, int]]:
        """(start call index, period, T) for each periodic run of module calls covering every neuron call."""
        targets = [str(n.target) for n in self.calls]
        neuron_idx = [i for i, n in enumerate(self.calls) if self.is_neuron(self.module(n))]
        lo, hi = (min(neuron_idx), max(neuron_idx)) if neuron_idx else (None, None)
        found = []
        for p in range(1, len(targets) // 2 + 1):
            i = 0
            while i + p < len(targets):
                if targets[i] != targets[i + p]:
                    i += 1
                    continue
                s = i
                while i + p < len(targets) and targets[i] == targets[i + p]:
                    i += 1
                length = i + p - s  # calls s .. i+p-1 are periodic
                T = length // p
                if T >= 2:
                    for a in range(s, s + length - T * p + 1):
                        if lo is None or (a <= lo and hi < a + T * p):
                            found.append((a, p, T))
        return found

    def assign(self, a: int, p: int, T: int) -> dict[fx.Node, int]:
        """The iteration of every node: module calls by block, other ops by what they read (or, reading
        nothing of the loop, by the next module call); PROLOGUE / EPILOGUE around the loop."""
        it: dict[fx.Node, int] = {}
        for j, n in enumerate(self.calls):
            it[n] = PROLOGUE if j < a else (j - a) // p if j < a + T * p else EPILOGUE
        end = self.pos[self.calls[a + T * p - 1]]
        next_call: dict[int, int] = {}
        nxt = EPILOGUE
        for n in reversed(self.nodes):
            if n.op == "call_module":
                nxt = it[n]
            next_call[self.pos[n]] = nxt
        for n in self.nodes:
            if n.op in ("placeholder", "get_attr"):
                it[n] = PROLOGUE
            elif n.op == "output":
                it[n] = EPILOGUE
            elif n.op != "call_module":
                reads: set[int] = set()
                fx.node.map_arg((n.args, n.kwargs), lambda a: reads.add(it[a]))
                loop_reads = {r for r in reads if 0 <= r < T}
                if EPILOGUE in reads:
                    it[n] = EPILOGUE
                elif len(loop_reads) > 1 and self.pos[n] > end:
                    it[n] = EPILOGUE  # reads several iterations after the loop: the record
                elif loop_reads:
                    it[n] = max(loop_reads)
                else:
                    it[n] = next_call[self.pos[n]]
        self._after_loop(it, a, p, T, end)
        self._hoist_arguments(it)
        self._hoist_invariant(it, T, self.pos[self.calls[a]])
        self._hoist_lazy_zeros(it, T)
        return it

    def _after_loop(self, it: dict[fx.Node, int], a: int, p: int, T: int, end: int) -> None:
        """Ops after the loop that read only the last step (`return self.fc_out(spk * 2)`) read like the last step's
        own trailing ops; the ones beyond the count that every step has after its last layer call are after the loop."""
        last_call0 = self.pos[self.calls[a + p - 1]]
        ops = ("call_function", "call_method")
        trailing0 = sum(1 for n in self.nodes if it[n] == 0 and self.pos[n] > last_call0 and n.op in ops)
        trailing = [n for n in self.nodes if it[n] == T - 1 and self.pos[n] > end and n.op in ops]
        for n in trailing[trailing0:]:
            it[n] = EPILOGUE

    def _hoist_arguments(self, it: dict[fx.Node, int]) -> None:
        """The checks torch.fx adds for forward's fixed arguments (`num_steps=25`: `eq`, `_assert`) run once."""
        fixed = {n for n in self.nodes if n.op == "placeholder" and n is not self.placeholder}
        for n in self.nodes:
            if n.op in ("call_function", "call_method"):
                reads: list[fx.Node] = []
                fx.node.map_arg((n.args, n.kwargs), reads.append)
                if reads and all(r in fixed for r in reads):
                    fixed.add(n)
                    it[n] = PROLOGUE

    def _hoist_invariant(self, it: dict[fx.Node, int], T: int, start: int) -> None:
        """An op that reads nothing of the loop (`x = F.relu(self.fc0(x))`, `x = x.flatten(1)` before it) and
        whose value more than one step uses is computed once, before the loop: the prologue, not step 0. One
        computed inside the loop (after its first layer call) and read by later steps is data crossing steps
        (`h = h * 0.5` every step): it stays in its step, where the crossing is refused by name."""
        invariant: set[fx.Node] = set()
        for n in self.nodes:
            if n.op in ("call_function", "call_method") and 0 <= it[n] < T:
                reads: list[fx.Node] = []
                fx.node.map_arg((n.args, n.kwargs), reads.append)
                if all(it[r] == PROLOGUE or r in invariant for r in reads):
                    invariant.add(n)
        for n in reversed(self.nodes):  # users first: each invariant op goes where its users are
            if n not in invariant:
                continue
            used = {it[u] for u in n.users if it[u] == PROLOGUE or 0 <= it[u] < T}
            if PROLOGUE in used or (len(used) > 1 and self.pos[n] < start):
                it[n] = PROLOGUE
            elif len(used) == 1:
                it[n] = used.pop()

    def _hoist_lazy_zeros(self, it: dict[fx.Node, int], T: int) -> None:
        """A zero state made from a shape inside the loop (`if mem is None: mem = torch.zeros_like(cur)`) is a
        constant start, like `init_leaky()` before the loop: the prologue. Made in every step, it restarts the
        neuron each step, which the restart check then refuses."""
        lazy: set[fx.Node] = set()
        lazy_sources = {n for n in self.nodes if n.op in ("call_function", "call_method") and n.target in _ZERO_MAKERS}
        for n in reversed(self.nodes):
            if not (0 <= it[n] < T) or n.op not in ("call_function", "call_method") or not n.users:
                continue
            value = self.values.get(n)
            if isinstance(value, torch.Tensor):
                src = n.args[0] if n.args else None
                # zeros_like(cur), or a conversion of a constant start (`self.lif.init_leaky().to(x.device)`)
                made = n.target in _ZERO_MAKERS or (
                    n.op == "call_method" and n.target in IDENTITY_METHODS and isinstance(src, fx.Node)
                    and (src.op == "get_attr" or src in lazy_sources))
                if not made or bool(torch.any(value != 0)):
                    continue
                if all(u.op == "call_module" and self.is_neuron(self.module(u)) and n not in u.args[:1]
                       and u.kwargs.get("input_") is not n for u in n.users):
                    lazy.add(n)
            elif all(u in lazy for u in n.users):
                lazy.add(n)  # a shape or size the zero state is made from
        for n in lazy:
            it[n] = PROLOGUE

    # -- is every iteration the first one again? -----------------------------------------------------
    def check(self, a: int, p: int, T: int) -> TimeLoop:
        it = self.assign(a, p, T)
        body = [[n for n in self.nodes if it[n] == k and n.op != "get_attr"] for k in range(T)]
        rel = {n: i for blk in body for i, n in enumerate(blk)}
        self._no_data_across_steps(it, T)
        first = body[0]
        for k in range(1, T):
            blk = body[k]
            if len(blk) != len(first) or any((n0.op, n0.target) != (nk.op, nk.target) for n0, nk in zip(first, blk)):
                raise _NotALoop(_differs(first, blk, k))
            for n0, nk in zip(first, blk):
                if _is_step_index(n0, self.views, 0) and _is_step_index(nk, self.views, k):
                    continue  # x[step]
                if (n0.target is operator.getitem and nk.target is operator.getitem and n0.args[0] is nk.args[0]
                        and isinstance(n0.args[0], fx.Node) and n0.args[0] not in self.views
                        and it[n0.args[0]] == PROLOGUE and n0.args[1] != nk.args[1]):
                    raise _NotALoop(f"the loop indexes {_what(n0.args[0])} one step at a time{_at(nk)}; that value is "
                                    "computed before the loop from the whole input, while the IR graph's "
                                    f"input is one step, read as {STEP_FORMS}; index the input itself and apply the op "
                                    "to the step inside the loop (e.g. self.fc1(x[step].flatten(1))); an encoder such as "
                                    "spikegen.rate belongs outside the model: pass its (T, B, ...) output in")
                if _indexes_input(n0, self.views) and n0.args[1] != nk.args[1]:
                    raise _NotALoop(f"the loop reads the input as `{index_expr(nk)}` in step {k} (`{index_expr(n0)}` in "
                                    f"step 0){_at(nk)}: the IR graph takes one step of the input, read as {STEP_FORMS}; "
                                    "index the input in one of these forms")
                self._same_args(n0, nk, k, it, rel)
        step_inputs = tuple(n0 for n0, n1 in zip(first, body[1]) if _is_step_index(n0, self.views, 0)
                            and _is_step_index(n1, self.views, 1))
        dims = {_step_dim(n, self.views, 0) for n in step_inputs}
        if len(dims) > 1:
            raise _NotALoop(f"the loop reads the input both as `x[step]` and `x[:, step]`{_at(step_inputs[0])}: the IR "
                            "graph's input is one step along one time dimension; read it one way")
        self._check_prologue(it, bool(step_inputs))
        self._check_whole_input(first, step_inputs)
        output, last_only, stack_dim, layout = self._output(it, body, rel, T)
        picked: dict[fx.Node, fx.Node] = {}
        tail = self._last_step_tail(output, it, T, picked) if it.get(output) == EPILOGUE else []
        nodes = [n for n in self.nodes if it[n] in (PROLOGUE, 0) and n not in layout] + tail
        last_alias = {n: body[0][rel[n]] for t in tail for n in _reads(t) if it.get(n) == T - 1 and n in rel}
        last_alias.update({n: body[0][rel[last]] for n, last in picked.items()})
        views = frozenset(v for v in self.views if v is not self.placeholder) if step_inputs else frozenset()
        return TimeLoop(num_steps=T, nodes=nodes, step_inputs=step_inputs, output=output, last_only=last_only,
                        stack_dim=stack_dim,
                        time_dim=dims.pop() if dims else 0, input_views=views, last_alias=last_alias)

    def _last_step_tail(self, result: fx.Node, it: dict, T: int, picked: dict) -> list[fx.Node]:
        """The ops after the loop that compute forward's result from the last step alone (`return self.fc_out(spk)`),
        in graph order; they join the step graph, whose output at the last step is then that result. Anything
        else they read (the record, an earlier step, a neuron called after the loop) is refused. `picked` gets
        the last step picked out of a record (`self.fc_out(torch.stack(rec)[-1])`): node -> that step's value."""
        tail: set[fx.Node] = set()
        stack = [result]
        while stack:
            n = stack.pop()
            if n in tail:
                continue
            if n.op == "call_module" and self.is_neuron(self.module(n)):
                raise _Refused(str(n.target), self.module(n), "it is called after the time loop, once, where the IR graph "
                               "(one step of the loop) would call it on every step: call it inside the loop")
            if n.op not in ("call_function", "call_method", "call_module"):
                raise _NotALoop(f"forward returns {_what(result)}, which the IR graph cannot compute from one step")
            tail.add(n)
            for a in _reads(n):
                last = last_of(a, self.values, T)
                if isinstance(last, fx.Node) and it.get(last) == T - 1:
                    picked[a] = last
                elif it.get(a) == EPILOGUE:
                    stack.append(a)
                elif it.get(a) not in (PROLOGUE, T - 1):
                    raise _NotALoop(_neither(_what(result)) + f"; it reads {_what(a)} of an earlier step")
        return [n for n in self.nodes if n in tail]

    def _check_whole_input(self, first: list[fx.Node], step_inputs: tuple[fx.Node, ...]) -> None:
        if not step_inputs:
            return
        for n in first:
            if n not in step_inputs and self._reads_placeholder(n):
                raise _NotALoop(f"{_what(n)} reads the whole input while the loop also reads x[step]; the IR graph has "
                                "one input: read x[step] only")

    def _no_data_across_steps(self, it: dict, T: int) -> None:
        """Only neuron states may go from one iteration to a later one (the record goes to the epilogue)."""
        for n in self.nodes:
            j = it[n]
            if not 0 <= j < T:
                continue
            for u in n.users:
                if not it[u] > j or it[u] == EPILOGUE:
                    continue
                if u.op == "call_module" and self.is_neuron(self.module(u)) and (not u.args or u.args[0] is not n):
                    continue  # a state argument: checked against the neuron's own state in _carried
                where = f"module {str(u.target)!r}" if u.op == "call_module" else _what(u)
                raise _Crossing(f"{where} reads {_what(n)}, computed in an earlier step of the loop: only a neuron's "
                                "own state may cross time steps in the IR")

    def _same_args(self, n0: fx.Node, nk: fx.Node, k: int, it: dict, rel: dict) -> None:
        params = self._params(nk)
        args0 = self._bind(n0, params)
        argsk = self._bind(nk, params)
        if args0.keys() != argsk.keys():
            raise _NotALoop(f"{_code(nk)} is called with other arguments than in step 0")
        for key in args0:
            a0, ak = args0[key], argsk[key]
            self._not_restarted(nk, key, ak, it, k)
            flat0: list = []
            flatk: list = []
            fx.node.map_aggregate(a0, flat0.append)
            fx.node.map_aggregate(ak, flatk.append)
            if len(flat0) != len(flatk):
                raise _NotALoop(f"{_code(nk)} takes a different argument {key!r} in step {k} than in step 0")
            for v0, vk in zip(flat0, flatk):
                self._same_value(n0, nk, key, v0, vk, k, it, rel)

    def _same_value(self, n0: fx.Node, nk: fx.Node, key: Any, v0: Any, vk: Any, k: int, it: dict, rel: dict) -> None:
        if isinstance(vk, fx.Node) and it[vk] == k - 1 and 0 <= it[vk]:
            self._carried(n0, nk, key, v0, vk, it, k)
            return
        if isinstance(v0, fx.Node) and isinstance(vk, fx.Node):
            if it[v0] == 0 and it[vk] == k and rel[v0] == rel[vk]:
                return
            if v0 is vk and it[v0] == PROLOGUE:
                return
            if v0.op == "get_attr" and vk.op == "get_attr" and _equal(self.values.get(v0), self.values.get(vk)):
                return
            raise _NotALoop(f"argument {key!r} of {_code(nk)} in step {k} is not step 0's {_what(v0)} again: every step "
                            "must compute the same thing (the IR graph is one step, repeated)")
        if isinstance(v0, fx.Node) or isinstance(vk, fx.Node) or not _equal(v0, vk):
            raise _NotALoop(f"argument {key!r} of {_code(nk)} is {vk!r} in step {k} and {v0!r} in step 0: every step must "
                            "compute the same thing (the IR graph is one step, repeated)")

    def _not_restarted(self, nk: fx.Node, key: Any, ak: Any, it: dict, k: int) -> None:
        """A neuron whose state argument is set anew in every iteration restarts on every step."""
        if nk.op != "call_module" or ak is None or not isinstance(key, str):
            return
        module = self.module(nk)
        if not self.is_neuron(module) or self.state_index(module, key) is None:
            return
        if isinstance(ak, fx.Node) and it[ak] != PROLOGUE:
            return
        if k > 1:  # `if step == 15: mem = self.lif.init_leaky()`: a restart part-way through the sequence
            raise _Refused(str(nk.target), module, f"in the time loop its state argument {key!r} is set anew in step {k} "
                           "(after carrying on in the steps before), so snnTorch restarts it there while the IR neuron "
                           f"carries its state on; initialise the state once, before the loop, and pass the returned {key} "
                           "back in. To restart part-way, export without the restart and call the executor's reset() at "
                           "that step")
        raise _Refused(str(nk.target), module, f"in the time loop its state argument {key!r} is set anew on every step, "
                       f"so snnTorch restarts it from that state at each step while the IR neuron carries its state on; "
                       f"initialise the state once, before the loop, and pass the returned {key} back in")

    def _carried(self, n0: fx.Node, nk: fx.Node, key: Any, v0: Any, vk: fx.Node, it: dict, k: int) -> None:
        """A value iteration k-1 hands to iteration k: only a neuron's own state, fed back to itself."""
        path = str(nk.target)
        if nk.op == "call_module" and self.is_neuron(self.module(nk)) and isinstance(key, str):
            want = self.state_index(self.module(nk), key)
            src = vk.args[0] if vk.op == "call_function" and vk.target is operator.getitem else None
            if (want is not None and isinstance(src, fx.Node) and src.op == "call_module" and str(src.target) == path
                    and vk.args[1] == want and (v0 is None or not isinstance(v0, fx.Node) or it[v0] == PROLOGUE)):
                return
            module = self.module(nk)
            raise _Refused(path, module, f"in the time loop its state argument {key!r} is not its own {key} from the "
                           f"previous step ({_what(vk)}); the IR neuron always continues from its own state")
        where = f"module {path!r}" if nk.op == "call_module" else _what(nk)
        raise _Crossing(f"{where} reads {_what(vk)}, computed in the previous step of the loop: only a neuron's own "
                        "state may cross time steps in the IR")

    def _params(self, n: fx.Node) -> list[str] | None:
        if n.op != "call_module":
            return None
        try:
            return [p for p in inspect.signature(self.module(n).forward).parameters]
        except (TypeError, ValueError):
            return None

    @staticmethod
    def _bind(n: fx.Node, params: list[str] | None) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for i, v in enumerate(n.args):
            out[params[i] if params and i < len(params) else i] = v
        out.update(n.kwargs)
        return out

    def _check_prologue(self, it: dict, indexed: bool) -> None:
        for n in self.nodes:
            if it[n] != PROLOGUE or n.op in ("placeholder", "get_attr"):
                continue
            if n.op == "call_module" and self.is_neuron(self.module(n)):
                raise _Refused(str(n.target), self.module(n), "it is called once before the time loop whose steps "
                               "the IR graph is: move it into the loop, or out of the model")
            if indexed and self._reads_placeholder(n):
                raise _NotALoop(f"{_what(n)} computes on the whole (T, B, ...) input before the loop; the IR graph "
                                "sees one step x[step] at a time: move it into the loop, applied to x[step]")

    def _reads_placeholder(self, n: fx.Node) -> bool:
        """`n` computes on the whole input (or a view of it that is not itself read one step at a time)."""
        if n in self.views:
            return False
        found: list[fx.Node] = []
        fx.node.map_arg((n.args, n.kwargs), found.append)
        return any(f in self.views for f in found)

    def _output(self, it: dict, body: list[list[fx.Node]], rel: dict, T: int) -> tuple[fx.Node, bool, int, frozenset]:
        """(the first step's node whose value forward returns, only the last step's value is returned, the dim of the
        returned record along which the steps are stacked, the nodes that only lay the steps out for the record)."""
        out = next(n for n in self.nodes if n.op == "output")
        result = out.args[0]
        if is_namedtuple_of_result(result):
            result = namedtuple_items(result)
        first = result[0] if isinstance(result, tuple) and result else result
        if isinstance(first, dict):
            raise _NotALoop("forward returns a dict; return the record (torch.stack(spk_rec, dim=0)) first, as a tensor "
                            "or the first item of a tuple")
        if isinstance(first, list):
            raise _NotALoop("the first value forward returns is a Python list of per-step values, which is not a tensor: "
                            "return torch.stack(spk_rec, dim=0)")
        while isinstance(result, (tuple, list)) and result:
            result = result[0]
        if isinstance(result, fx.Node) and it.get(result) == T - 1:
            return body[0][rel[result]], True, 0, frozenset()
        last = last_of(result, self.values, T)
        if isinstance(last, fx.Node) and it.get(last) == T - 1:
            return body[0][rel[last]], True, 0, frozenset()  # torch.stack(rec)[-1]: the last step's value
        record = record_of(result, self.values)
        if record is not None or stacks(result):
            items, dim = (record.items, record.dim) if record is not None else ([], None)
            if (type(dim) is int and 0 <= dim <= 1 and len(items) == T and all(isinstance(v, fx.Node) for v in items)
                    and all(it.get(v) == k for k, v in enumerate(items)) and len({rel[v] for v in items}) == 1):
                return body[0][rel[items[0]]], False, dim, frozenset(record.wrappers)
            raise _NotALoop(f"forward returns {_what(result)}, a record that is not one value per step stacked "
                            "along dim 0 (time-major) or dim 1 (batch-first) in step order")
        if isinstance(result, fx.Node) and it.get(result) == EPILOGUE and not stacks(result):
            return result, True, 0, frozenset()  # a function of the last step, checked by _last_step_tail
        name = _what(result) if isinstance(result, fx.Node) else repr(result)
        raise _NotALoop(_neither(name))


def _neither(name: str) -> str:
    return (f"the first value forward returns ({name}) is neither torch.stack(record, dim=0) of a per-step value nor "
            "the last step's value, nor computed from the last step alone (return the record first, and reduce it, "
            "e.g. .sum(0), outside the model)")


def _reads(n: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg((n.args, n.kwargs), found.append)
    return found


def _differs(first: list[fx.Node], blk: list[fx.Node], k: int) -> str:
    """Why step k does not repeat step 0: the first operation one of them runs and the other does not."""
    keys0 = [(n.op, n.target) for n in first]
    keysk = [(n.op, n.target) for n in blk]
    for tag, i0, i1, j0, j1 in difflib.SequenceMatcher(None, keys0, keysk, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i1 > i0:
            what = f"step 0 runs {_code(first[i0])}, which step {k} does not"
        else:
            what = f"step {k} runs {_code(blk[j0])}, which step 0 does not"
        break
    else:  # pragma: no cover - the blocks differ
        what = f"step {k} runs {len(blk)} operations, step 0 runs {len(first)}"
    return (f"{what}: every step must run the same operations (a branch on the step, such as `if step == 0:` or "
            "`if mem is None:` around anything but a state initialisation, makes the steps differ); do the one-off work "
            "before the loop, e.g. initialise states there (mem = self.lif.init_leaky())")


class _NotALoop(Exception):
    """The repeated calls are not a time loop the IR can hold as one step (the reason is the message)."""


class _Crossing(_NotALoop):
    """A value other than a neuron's own state crosses steps (recurrence written by hand)."""


class _Refused(Exception):
    def __init__(self, path: str, module: nn.Module, reason: str) -> None:
        super().__init__(reason)
        self.path, self.module, self.reason = path, module, reason


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001 - values that cannot be compared are not equal
        return False


_MAX_CHECKS = 32


def find_time_loop(
    gm: fx.GraphModule, values: dict[fx.Node, Any], *, is_neuron: Callable[[nn.Module], bool],
    state_index: Callable[[nn.Module, str], int | None], unsupported: Callable[[str, nn.Module, str], Exception],
) -> TimeLoop | None:
    """The time loop of a traced forward, reduced to one step; None when forward is one step already.

    Raises (via `unsupported(path, module, reason)` or UnsupportedModuleError) when the repeated calls
    include a neuron but do not form a loop whose steps are all the same, rather than exporting the
    unrolled copies as separate layers.
    """
    drop_state_copies(gm, is_neuron)  # mem = mem.detach(): the neuron's own state still
    loop = _Loop(gm, values, state_index, is_neuron)
    if loop.placeholder is None:
        return None
    reasons = []
    # Shortest period first: the loop body itself; longer periods are whole multiples of it (bounded: each
    # check walks the whole graph).
    for a, p, T in loop.candidates()[:_MAX_CHECKS]:
        try:
            return loop.check(a, p, T)
        except _NotALoop as exc:
            reasons.append((-T * p, p, str(exc), isinstance(exc, _Crossing)))
        except _Refused as exc:
            raise unsupported(exc.path, exc.module, exc.reason) from None
    repeated = _repeated_neurons(loop)
    if repeated:
        path, count = repeated[0]
        module = gm.get_submodule(path)
        once = _called_once_outside(loop, path)
        if once is not None:
            where, other = once
            raise unsupported(other, gm.get_submodule(other), f"it is called once, {where} the time loop in which {path!r} "
                              f"is called {count} times: the IR graph is one step of the loop, so every neuron must be "
                              "called once per step; call it inside the loop")
        later = _in_a_later_loop(loop, path)
        if later:
            raise unsupported(path, module, f"it is called {count} times in one loop over time and {later!r} in another "
                              "loop after it: the IR graph is one time step of one loop, so a second loop that reads the "
                              "first one's record has no IR form. Write one loop that calls every layer once per step "
                              "(pass each step's spikes straight on), or export the two parts as two models")
        (most, busy), (c, q) = max((c, q) for q, c in repeated), min((c, q) for q, c in repeated)
        if c < most:  # `if step > 0: spk2, mem2 = self.lif2(...)`: a neuron skipped in some steps
            raise unsupported(q, gm.get_submodule(q), f"it is called {c} times in the time loop, but {busy!r} {most} "
                              "times: a branch on the step (`if step > 0:`, `if step % 2 == 0:`) skips it in some steps, "
                              "and the IR graph is one step in which every layer runs. Call every neuron once in every "
                              "step (and keep the branch out of forward)")
        per_step = _per_step_layers(loop, count)
        if per_step is not None:
            first = per_step[0]
            raise unsupported(first, gm.get_submodule(first), f"the time loop calls a different module in each step "
                              f"({', '.join(repr(q) for q in per_step[:3])}{', ...' if len(per_step) > 3 else ''}: one "
                              f"per step, such as snn.BatchNormTT1d/BatchNormTT2d indexed by the step), while the IR graph "
                              "is one time step that every step repeats with the same layers; use one layer for every "
                              "step (e.g. nn.BatchNorm1d instead of snn.BatchNormTT1d)")
        best = min(reasons) if reasons else None
        if best is not None and -best[0] // best[1] >= 3:
            raise unsupported(path, module, f"it is called {count} times in one forward, in a loop over time whose steps "
                              f"are not one IR step repeated: {best[2]}. The IR graph is one time step: every step of the "
                              "loop must repeat the first one and pass on nothing but each neuron's own state"
                              + (" (for recurrent connections use snn.RLeaky or snn.RSynaptic, whose recurrence the IR "
                                 "carries)" if best[3] else ""))
        raise unsupported(path, module, f"it is called {count} times in one forward: in snnTorch every call continues "
                          "from the state the previous call left (one shared membrane), which one IR neuron cannot "
                          "express; give each call its own neuron module")
    return None


def _called_once_outside(loop: _Loop, path: str) -> tuple[str, str] | None:
    """("before" | "after", path) of a neuron called once outside the run of `path`'s calls."""
    calls = [(i, str(n.target)) for i, n in enumerate(loop.calls) if loop.is_neuron(loop.module(n))]
    mine = [i for i, p in calls if p == path]
    counts: dict[str, int] = {}
    for _, p in calls:
        counts[p] = counts.get(p, 0) + 1
    for i, p in calls:
        if counts[p] == 1 and (i < mine[0] or i > mine[-1]):
            return ("before" if i < mine[0] else "after"), p
    return None


def _in_a_later_loop(loop: _Loop, path: str) -> str | None:
    """A repeated neuron whose every call comes after the last call of `path`: a second time loop."""
    calls = [(i, str(n.target)) for i, n in enumerate(loop.calls) if loop.is_neuron(loop.module(n))]
    last = max(i for i, p in calls if p == path)
    for p, _ in _repeated_neurons(loop):
        if p != path and min(i for i, q in calls if q == p) > last:
            return p
    return None


def _per_step_layers(loop: _Loop, count: int) -> list[str] | None:
    """The items of one module list (`bn.0`, `bn.1`, ...) called once each, `count` of them, in a loop of `count` steps:
    a layer per step (`self.bn[step](cur)`, snnTorch's BatchNormTT), in call order; None when there is none."""
    items: dict[str, list[str]] = {}
    for n in loop.calls:
        parent, _, index = str(n.target).rpartition(".")
        if parent and index.isdigit():
            items.setdefault(parent, []).append(str(n.target))
    for paths in items.values():
        if len(paths) == count and len(set(paths)) == count:
            return paths
    return None


def _repeated_neurons(loop: _Loop) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for n in loop.calls:
        if loop.is_neuron(loop.module(n)):
            counts[str(n.target)] = counts.get(str(n.target), 0) + 1
    return [(p, c) for p, c in counts.items() if c > 1]


__all__ = ["TimeLoop", "find_time_loop", "STEP_FORMS", "UnsupportedModuleError"]
