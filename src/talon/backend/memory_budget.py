"""Whether a simulation's memory fits the machine, checked before anything is allocated.

A tiny .t1c file can ask for huge state (an `Upsample(scale_factor=8192)` in a 7 KB file asks for 34 GB
per step); allocating it fails deep inside torch, or, under memory overcommit, the process is killed. So
the CPU simulator estimates what a run needs from the cost table (`talon.sdk.cost`: each node's
activation and state elements, one source of truth for shapes) and refuses a run that cannot fit with a
BackendError naming the largest nodes, the total, the memory available and a way forward.

The estimate of one run (`RunFootprint.need`), in bytes of `dtype_bytes` per value and B samples:
* working set of one chunk of `chunk` steps: every node's outputs that are not views of another's
  (the executor holds them until the chunk ends; a graph Input's are the chunk of stimulus) for `chunk`
  steps, plus every node's state;
* recordings over all T steps (the graph's outputs, recorded spikes and membranes): with one chunk,
  spikes and outputs are the chunk's own tensors, membranes extra; with several chunks the pieces are
  kept and joined at the end, which holds them twice.
It is compared with the memory available (`available_bytes`: MemAvailable of /proc/meminfo, else
psutil's, at most a container's memory cgroup limit less its usage; else unknown and only the fixed
ceiling below applies). Runs whose estimate is at most
`UNCHECKED_BYTES` are not checked (any machine running torch has that much; reading the memory figure
would cost more than such a run's bookkeeping). Independent of the machine, a tensor of more elements
than torch can index (2**63 - 1) is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from talon.errors import BackendError

#: Estimates up to this many bytes are not compared with the available memory (see the module docstring).
UNCHECKED_BYTES = 64 * 1024 * 1024
#: The most elements one torch tensor can hold (its sizes are int64).
TORCH_MAX_ELEMENTS = 2**63 - 1
_MEMINFO = "/proc/meminfo"


#: (limit, usage) files of the container's memory cgroup: v2, then v1
_CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
)


def available_bytes() -> int | None:
    """The memory the machine can give now (bytes): MemAvailable of /proc/meminfo, else psutil's
    `virtual_memory().available` if psutil is installed, else None (unknown); in a container whose memory
    cgroup sets a limit, at most that limit less what the container uses (beyond it the OOM killer acts,
    whatever the machine has free)."""
    machine = _meminfo_available()
    if machine is None:
        try:
            import psutil  # type: ignore[import-not-found]
        except ImportError:
            psutil = None
        machine = int(psutil.virtual_memory().available) if psutil is not None else None
    container = _cgroup_available()
    if container is None:
        return machine
    return container if machine is None else min(machine, container)


def _meminfo_available() -> int | None:
    try:
        with open(_MEMINFO, "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available() -> int | None:
    """The memory cgroup's limit less its usage, where a limit is set (None: no cgroup file, or no limit)."""
    for limit_path, usage_path in _CGROUP_FILES:
        try:
            with open(limit_path, "rb") as f:
                limit = f.read().strip()
            with open(usage_path, "rb") as f:
                usage = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if limit == b"max" or not limit.isdigit() or int(limit) >= 1 << 60:  # v1 writes "no limit" as ~2**63
            return None
        return max(0, int(limit) - usage)
    return None


def human_bytes(n: int | float) -> str:
    """`n` bytes in B, KB, MB, GB, TB (powers of 1000), three significant digits."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


@dataclass(frozen=True)
class RunFootprint:
    """Per sample and per step, what a graph's run holds (from its cost table; computed once per graph)."""

    step_elements: int  # outputs of every node that is no view, held for a chunk
    state_elements: int  # state of every node, held across the run
    widest_output: int  # the most output elements of one node
    widest_state: int  # the most state elements of one node
    costs: Mapping[str, Any]  # the cost table it was summed from (named in the error)

    @classmethod
    def of(cls, costs: Mapping[str, Any]) -> "RunFootprint":
        step = state = wide_out = wide_state = 0
        for c in costs.values():
            if not c.view:
                step += c.activation_elements
            state += c.state_elements
            wide_out, wide_state = max(wide_out, c.activation_elements), max(wide_state, c.state_elements)
        return cls(step, state, wide_out, wide_state, costs)

    def need(self, *, batch: int, chunk: int, n_steps: int, dtype_bytes: int, recorded: int = 0, traced: int = 0) -> int:
        """Bytes of a run of `n_steps` steps in chunks of `chunk`: `recorded` elements per sample and step
        kept over the whole run out of the chunk's own tensors (outputs, spikes), `traced` elements of
        extra tensors (membranes)."""
        working = batch * (chunk * self.step_elements + self.state_elements)
        kept = batch * n_steps * (recorded + traced)
        if chunk >= n_steps:  # one chunk: outputs and spikes are the chunk's own tensors
            total = working + batch * n_steps * traced
        else:  # pieces kept beside the working set, then joined (held twice)
            total = max(working + kept, 2 * kept)
        return total * dtype_bytes


def check_run(
    graph: Any, footprint: RunFootprint, *, batch: int, chunk: int, n_steps: int, dtype_bytes: int,
    recorded: Iterable[str] = (), traced: Iterable[str] = (), chunk_given: bool = False, what: str = "the simulation",
) -> None:
    """Raise BackendError when the run cannot fit (see the module docstring); return at once when it fits.

    `recorded`: nodes whose outputs are kept over all steps (the graph's outputs, recorded spikes);
    `traced`: nodes whose membranes are recorded."""
    costs = footprint.costs
    recorded, traced = tuple(recorded), tuple(traced)
    rec = sum(costs[n].activation_elements for n in recorded if n in costs)
    tr = sum(costs[n].activation_elements for n in traced if n in costs)
    need = footprint.need(batch=batch, chunk=chunk, n_steps=n_steps, dtype_bytes=dtype_bytes, recorded=rec, traced=tr)
    widest = batch * max(footprint.widest_output * chunk, footprint.widest_state)  # the largest tensor of one chunk
    if widest > TORCH_MAX_ELEMENTS or need // dtype_bytes > TORCH_MAX_ELEMENTS:
        raise BackendError(f"{what} cannot run: {_largest_nodes(graph, costs, batch, dtype_bytes)}: the run asks for "
                           f"{need // dtype_bytes:,} values (one tensor of {widest:,}), more than torch can index "
                           f"({TORCH_MAX_ELEMENTS:,}); check those nodes' shapes (a file's Upsample scale or Input shape)")
    if need <= UNCHECKED_BYTES:
        return
    avail = available_bytes()
    if avail is None or need <= avail:
        return
    working = batch * (chunk * footprint.step_elements + footprint.state_elements) * dtype_bytes
    kept = ""
    if rec or tr:
        twice = ", held twice when its chunks are joined" if chunk < n_steps else ""
        kept = f" + {human_bytes(batch * n_steps * (rec + tr) * dtype_bytes)} of outputs kept over all steps{twice}"
    raise BackendError(
        f"{what} needs about {human_bytes(need)} ({human_bytes(working)} per chunk of {chunk} step(s){kept}; {batch} sample(s), "
        f"{n_steps} step(s), {dtype_bytes * 8}-bit values) but this machine has {human_bytes(avail)} available; largest: "
        f"{_largest_nodes(graph, costs, batch, dtype_bytes)}; {_way_forward(footprint, batch, chunk, n_steps, dtype_bytes, rec, tr, avail, chunk_given)}"
    )


def _largest_nodes(graph: Any, costs: Mapping[str, Any], batch: int, dtype_bytes: int, top: int = 2) -> str:
    """The `top` nodes of most elements per step, with their type, output shape and bytes per step."""
    own = [n for n in costs if not costs[n].view] or list(costs)  # a view's outputs are another node's
    size = lambda n: costs[n].activation_elements + costs[n].state_elements  # noqa: E731
    ranked = sorted(own, key=lambda n: -size(n))[:top]
    ranked = [n for n in ranked if size(n) * 10 >= size(ranked[0])]  # the others are no part of the problem
    shapes = _output_shapes(graph)
    parts = []
    for n in ranked:
        c = costs[n]
        shape = shapes.get(n)
        shown = f"output {shape}" if shape is not None else f"{c.activation_elements:,} outputs"
        state = f" + {human_bytes(c.state_elements * batch * dtype_bytes)} of state" if c.state_elements else ""
        parts.append(f"node {n!r} ({c.type_name}, {shown}) {human_bytes(c.activation_elements * batch * dtype_bytes)} per step{state}")
    return ", ".join(parts)


def _output_shapes(graph: Any) -> dict[str, tuple]:
    """Each node's first output shape (per sample), as shape inference gives it (only on the error path)."""
    from talon.sdk._graph import infer_shapes

    try:
        return {n: tuple(outs[0]) for n, (_, outs) in infer_shapes(graph).items() if outs}
    except Exception:  # shapes are only for the message: the cost table was built from them already
        return {}


def _way_forward(fp: RunFootprint, batch: int, chunk: int, n_steps: int, dtype_bytes: int, rec: int, tr: int, avail: int,
                 chunk_given: bool) -> str:
    """What to change: the largest chunk_steps that fits, a smaller batch, fewer recordings; or, when one
    step of one sample does not fit, the graph itself."""
    one = fp.need(batch=1, chunk=1, n_steps=1, dtype_bytes=dtype_bytes, recorded=rec, traced=tr)
    if one > avail:
        return (f"one step of one sample alone needs {human_bytes(one)}: check the shapes of the nodes named (a file's "
                f"Upsample scale or Input shape may be wrong), or run on a machine with more memory")
    ways = []
    if chunk > 1:
        fits = [k for k in _halvings(chunk) if fp.need(batch=batch, chunk=k, n_steps=n_steps, dtype_bytes=dtype_bytes, recorded=rec, traced=tr) <= avail]
        ways.append(f"fewer steps per chunk (chunk_steps={fits[0]} fits)" if fits else f"fewer steps per chunk (chunk_steps=, now {chunk}{', given' if chunk_given else ''})")
    if batch > 1:
        ways.append(f"a smaller batch (now {batch})")
    if rec or tr:
        ways.append(f"fewer steps (now {n_steps}) or fewer recorded nodes (record=; the graph's outputs are always kept)")
    return "to fit, use " + " or ".join(ways) if ways else "run on a machine with more memory"


def _halvings(chunk: int) -> list[int]:
    """chunk // 2, chunk // 4, ..., 1."""
    out, k = [], chunk // 2
    while k >= 1:
        out.append(k)
        k //= 2
    return out or [1]


def check_default_stimulus(shapes: Mapping[str, tuple[int, ...]], dtype_bytes: int = 4) -> None:
    """Raise BackendError when the default stimulus of the Inputs of `shapes` (one sample each; Input #k is
    the k-th) cannot be allocated: more elements than torch can index, or more bytes than the machine has
    available."""
    sizes = [math.prod(int(d) for d in s) for s in shapes.values()]
    if not sizes:
        return
    k = max(range(len(sizes)), key=sizes.__getitem__)
    name, shape = list(shapes)[k], tuple(list(shapes.values())[k])
    which = f"Input #{k} {name!r}"
    if sizes[k] > TORCH_MAX_ELEMENTS:
        raise BackendError(f"the default stimulus of {which} (shape {shape}) would hold {sizes[k]:,} values, more than torch "
                           f"can index; check the Input's shape")
    need = sum(sizes) * dtype_bytes
    if need <= UNCHECKED_BYTES:
        return
    avail = available_bytes()
    if avail is not None and need > avail:
        raise BackendError(f"the default stimulus needs {human_bytes(need)} ({which}, shape {shape}: "
                           f"{human_bytes(sizes[k] * dtype_bytes)}) but this machine has {human_bytes(avail)} available; "
                           f"check the Input's shape, or run on a machine with more memory")
