"""What a simulation is fed: the documented default stimulus, encoders, and input normalisation.

`inputs` given to `simulate`/`profile` may be, for a graph with one Input node (or as a dict
{input name: ...} for several):

- a tensor of one sample's shape S, or (B, *S): the same input on every step;
- a (T, B, *S) sequence: step t gets inputs[t] (n_steps defaults to T; more steps than T is an error);
- an encoder: any callable `encoder(t) -> tensor (B, *S) or S` (see `ConstantEncoder`, `RateEncoder`);
- None: the default stimulus below.

Every stimulus must be finite: an array or sequence holding NaN or ±inf is refused up front (BackendError
naming the input, how many values are non-finite and the first one's index), and so is an encoder's
step that produces one, so no simulation, profile or energy figure is ever computed from them.

Default stimulus (deterministic, documented): for the k-th Input node (graph order) of sample shape S,
x = torch.rand((1, *S), generator=torch.Generator().manual_seed(k)) in float32, i.e. uniform in [0, 1)
with seed k, presented unchanged on every step (a static image shown for n_steps steps, batch 1).
An Input that declares spikes (`Input.spikes`) gets that x rate-coded instead: RateEncoder(x, seed=k).
A default stimulus that cannot fit the machine's memory (a file's Input shape can ask for terabytes) is
refused before it is drawn (talon.backend.memory_budget).

Spikes: `Stimulus.binary[name]` says whether input `name` is known to be spikes (every value 0 or 1):
True for arrays and sequences whose values are all 0 or 1, some of them 1 (all zeros is no evidence of
spikes), and for RateEncoder; False for other arrays and the uniform default; None for a user's encoder
(its values are known only as it runs).
`talon.backend.spike_inputs` turns that into how the run is priced.
"""

from __future__ import annotations

import math

from typing import Any, Callable

from talon.backend.memory_budget import check_default_stimulus
from talon.errors import BackendError

DEFAULT_SEED = 0


class ConstantEncoder:
    """The same tensor (B, *S) on every step."""

    def __init__(self, data: Any, name: str | None = None):
        import torch

        self.data = torch.as_tensor(data, dtype=torch.float32)
        check_finite(self.data, f"input {name!r}" if name is not None else "constant input")

    def __call__(self, t: int) -> Any:
        return self.data

    def __repr__(self) -> str:
        return f"ConstantEncoder(shape={tuple(self.data.shape)})"


class RateEncoder:
    """Bernoulli rate coding: step t emits 1 where u < data, u uniform from a generator seeded with
    `seed` and advanced once per step (so a run is reproducible step for step).

    `data` are firing probabilities: every value must be finite and in [0, 1]; anything else raises
    BackendError naming the range found (`name`, if given, says which input in that message)."""

    def __init__(self, data: Any, seed: int = DEFAULT_SEED, name: str | None = None):
        import torch

        rates = torch.as_tensor(data, dtype=torch.float32)
        what = f"rate-encoded input {name!r}" if name is not None else "rate-encoded input"
        if rates.numel():
            lo, hi = (float(v) for v in torch.aminmax(rates))  # one pass; NaN propagates into lo/hi
            if not (lo >= 0.0 and hi <= 1.0):
                check_finite(rates, what)
                n_out = int(((rates < 0) | (rates > 1)).sum())
                raise BackendError(
                    f"{what} holds values in [{lo:g}, {hi:g}] ({n_out} of {rates.numel()} outside [0, 1]); rate encoding "
                    f"takes firing probabilities in [0, 1]: scale the data into that range first (e.g. x / x.max() for "
                    f"non-negative data)"
                )
        self.rates = rates
        self.seed = int(seed)
        self._gen = torch.Generator().manual_seed(self.seed)
        self._next_t = 0

    def __call__(self, t: int) -> Any:
        import torch

        if t != self._next_t:  # random access (or a second run): replay from the seed
            self._gen = torch.Generator().manual_seed(self.seed)
            for _ in range(t):
                torch.rand(self.rates.shape, generator=self._gen)
        self._next_t = t + 1
        return (torch.rand(self.rates.shape, generator=self._gen) < self.rates).float()

    def __repr__(self) -> str:
        return f"RateEncoder(shape={tuple(self.rates.shape)}, seed={self.seed})"


#: is_binary reads a tensor in blocks of this many elements, the first one short: data that is not
#: binary (most real-valued inputs) is usually told apart in its first few values, not after a full pass.
_BINARY_FIRST, _BINARY_BLOCK = 4096, 1 << 20


def is_binary(x: Any) -> bool:
    """Every element of tensor `x` is 0 or 1 (an empty tensor counts as binary)."""
    return binary_ones(x) is not None


def binary_ones(x: Any) -> int | None:
    """The number of ones of tensor `x` when every element is 0 or 1, else None (found in the same
    passes as the check, so a caller that needs both reads `x` once)."""
    flat = x.reshape(-1)
    n, start, size, ones = flat.numel(), 0, _BINARY_FIRST, 0
    while start < n:
        block = _binary_block_ones(flat[start : start + size])
        if block is None:
            return None
        ones, start, size = ones + block, start + size, _BINARY_BLOCK
    return ones


def _binary_block_ones(block: Any) -> int | None:
    """The ones of `block` if ((block == 0) | (block == 1)).all(), else None. A large float CPU block
    takes two vectorised counts: every non-zero element is 1 exactly when the non-zeros (NaN counted,
    -0.0 not: torch's count) are as many as the elements equal to 1 (three times faster than torch's
    three passes and bool tensors)."""
    import torch

    if block.device.type == "cpu" and block.dtype in (torch.float32, torch.float64) and block.numel() >= _BINARY_NUMPY_FROM \
            and not block.is_neg():
        import numpy as np

        ones = int(np.count_nonzero(block.detach().numpy() == 1))
        return ones if int(_count_nonzero(block)) == ones else None
    if not bool(((block == 0) | (block == 1)).all()):
        return None
    return int(torch.count_nonzero(block))


def _count_nonzero(x: Any) -> Any:
    """torch.count_nonzero(x), a large float CPU tensor counted on its bits (talon.backend.cpu.counting:
    several times cheaper than torch's count or `any`, which go through a bool cast)."""
    from talon.backend.cpu.counting import count_nonzero

    return count_nonzero(x)


#: blocks of at least this many elements are checked by two numpy counts (below: torch's comparison,
#: fewer steps for a short block)
_BINARY_NUMPY_FROM = 1 << 14


def first_non_binary(x: Any) -> tuple[tuple[int, ...], float]:
    """(index, value) of the first element of tensor `x` that is neither 0 nor 1 (x must hold one)."""
    flat = int((~((x == 0) | (x == 1))).reshape(-1).nonzero()[0])
    return tuple(int(i) for i in _unravel(flat, tuple(x.shape))), float(x.reshape(-1)[flat])


def sum_is_finite(x: Any) -> bool:
    """The sum of float tensor `x` is finite, in its own type or else in float64: then no element is NaN or
    ±inf (one read of the data; False leaves the element-wise check to the caller). Read as a Python float:
    no tensor op per call."""
    import torch

    return math.isfinite(float(x.sum())) or math.isfinite(float(x.sum(dtype=torch.float64)))


def check_finite(x: Any, what: str) -> None:
    """Raise BackendError unless every element of tensor `x` is finite, and within float32's range (a
    float64 value beyond it becomes inf in a float32 run); `what` names it ("input 'x'")."""
    import torch

    if not x.is_floating_point() and not x.is_complex():
        return
    # One read of the data in the common case: a sum is finite only when no element is NaN or ±inf. The sum
    # in x's own type is several times faster than a float64 one (whose cast is slow) but may overflow:
    # when it is not finite, the float64 sum decides (float32 or narrower values cannot overflow it).
    # float64 data also needs the range check below.
    if x.dtype != torch.float64 and x.is_floating_point() and sum_is_finite(x):
        return
    finite = torch.isfinite(x)
    if x.dtype == torch.float64:
        finite &= x.abs() <= torch.finfo(torch.float32).max
    if bool(finite.all()):
        return
    bad = ~finite
    flat = int(bad.reshape(-1).nonzero()[0])
    index = tuple(int(i) for i in _unravel(flat, tuple(x.shape)))
    value = x.reshape(-1)[flat].item()
    kinds = "NaN, ±inf, or beyond float32's range" if x.dtype == torch.float64 else "NaN or ±inf"
    raise BackendError(
        f"{what} holds {int(bad.sum())} non-finite value(s) ({kinds}) out of {x.numel()}; the first is {value} at "
        f"index {index}: replace or mask them with finite values before simulating or profiling"
    )


def _unravel(flat: int, shape: tuple[int, ...]) -> list[int]:
    out = []
    for dim in reversed(shape):
        out.append(flat % dim)
        flat //= dim
    return out[::-1]


def default_stimulus(shape: tuple[int, ...], index: int = 0) -> Any:
    import torch

    try:
        return torch.rand((1, *shape), generator=torch.Generator().manual_seed(DEFAULT_SEED + index), dtype=torch.float32)
    except (RuntimeError, MemoryError) as exc:  # a shape from a file can ask for terabytes, or overflow the size
        raise BackendError(f"the default stimulus of Input #{index} (shape {tuple(shape)}: {math.prod(shape):,} values) cannot be "
                           f"allocated ({str(exc).splitlines()[0][:160]}); check the Input's shape") from None


class Stimulus:
    """Normalised inputs: `step(t)` returns {input name: (B, *S) float tensor}; `n_steps`, `batch_size`."""

    def __init__(self, sources: dict[str, Callable[[int], Any]], shapes: dict[str, tuple[int, ...]], n_steps: int, description: str, sequences: dict[str, Any],
                 binary: dict[str, bool | None] | None = None):
        self.sources = sources
        self.binary = dict(binary or {})  # see the module docstring
        self.shapes = shapes
        self.n_steps = n_steps
        self.description = description
        self.sequences = sequences  # name -> (T, B, *S) tensor when the whole run is known up front
        first = self.step(0) if n_steps > 0 else {n: default_stimulus(s) for n, s in shapes.items()}
        sizes = {n: int(x.shape[0]) for n, x in first.items()}
        if len(set(sizes.values())) > 1:
            raise BackendError(f"inputs disagree on the batch size: {sizes}")
        self.batch_size = next(iter(sizes.values()), 1)
        if self.batch_size == 0:
            raise BackendError(f"the inputs hold no samples (batch size 0: shapes {[tuple(x.shape) for x in first.values()]}); give at least one")

    def step(self, t: int) -> dict[str, Any]:
        import torch

        out = {}
        for name, src in self.sources.items():
            x = torch.as_tensor(src(t))
            shape = self.shapes[name]
            if tuple(x.shape) == tuple(shape):
                x = x.unsqueeze(0)
            if tuple(x.shape[1:]) != tuple(shape):
                raise BackendError(f"input {name!r} at step {t} has shape {tuple(x.shape)}; expected (B, *{tuple(shape)})")
            if name not in self.sequences and not isinstance(src, (ConstantEncoder, RateEncoder)):
                # a user's encoder, step by step (arrays, sequences and our encoders were checked once, up front)
                check_finite(x, f"input {name!r} (from its encoder, step {t})")
            out[name] = x.to(torch.float32) if not x.is_floating_point() else x
        return out

    def sequence(self, name: str) -> Any:
        """(T, B, *S) for input `name` over the whole run."""
        import torch

        if name in self.sequences:
            return self.sequences[name][: self.n_steps]
        return torch.stack([self.step(t)[name] for t in range(self.n_steps)])


def make_stimulus(inputs: Any, input_shapes: dict[str, tuple[int, ...]], n_steps: int | None, default_steps: int = 10, *, spike_inputs: Any = ()) -> Stimulus:
    """Normalise `inputs` (see the module docstring) for a graph whose Input nodes have `input_shapes`;
    `spike_inputs` names the Inputs that declare spikes (their default stimulus is rate-coded)."""
    import torch

    names = list(input_shapes)
    if not names:
        raise BackendError("the graph has no Input node to feed")
    if inputs is None:
        steps = default_steps if n_steps is None else n_steps
        _check_steps(steps)
        spiking = set(spike_inputs)
        check_default_stimulus(input_shapes)  # before allocating: a file's Input shape can ask for terabytes
        defaults: dict[str, Callable[[int], Any]] = {}
        for i, (n, s) in enumerate(input_shapes.items()):
            x = default_stimulus(s, i)
            defaults[n] = RateEncoder(x, seed=DEFAULT_SEED + i, name=n) if n in spiking else ConstantEncoder(x)
        what = "default: uniform [0,1) seed k per input k, constant over steps, batch 1"
        if spiking:
            what += f"; rate-coded (seed k) for the spike inputs {sorted(spiking)}"
        return Stimulus(defaults, input_shapes, steps, what, {}, {n: n in spiking for n in names})
    if not isinstance(inputs, dict):
        if len(names) != 1:
            raise BackendError(f"the graph has {len(names)} Input nodes {names}: pass inputs as a dict {{name: tensor or encoder}}")
        inputs = {names[0]: inputs}
    unknown = set(inputs) - set(names)
    missing = set(names) - set(inputs)
    if unknown or missing:
        raise BackendError(f"inputs must cover exactly the Input nodes {names}; unknown {sorted(unknown)}, missing {sorted(missing)}")
    sources: dict[str, Callable[[int], Any]] = {}
    sequences: dict[str, Any] = {}
    binary: dict[str, bool | None] = {}
    lengths: list[int] = []
    kinds = []
    for name in names:
        value, shape = inputs[name], tuple(input_shapes[name])
        if callable(value) and not isinstance(value, torch.Tensor):
            sources[name] = value
            binary[name] = True if isinstance(value, RateEncoder) else None
            kinds.append(f"{name}: encoder {value!r}")
            continue
        try:
            x = torch.as_tensor(value)
        except Exception as exc:
            raise BackendError(f"input {name!r} is neither a tensor, an array nor an encoder: {exc}") from None
        if not x.is_floating_point():
            x = x.to(torch.float32)
        if tuple(x.shape[-len(shape):] if shape else ()) != shape:
            raise BackendError(f"input {name!r} has shape {tuple(x.shape)}; its trailing dimensions must be the Input shape {shape}")
        ones = binary_ones(x)
        if ones is None:  # 0 and 1 are finite: only other values need the check
            check_finite(x, f"input {name!r}")  # once, here: the encoders below do not check again
        binary[name] = bool(ones)  # all zeros is no evidence of spikes
        lead = x.dim() - len(shape)
        if lead == 0:
            x = x.unsqueeze(0)
            lead = 1
        if lead == 1:
            sources[name] = ConstantEncoder(x, name)
            kinds.append(f"{name}: constant {tuple(x.shape)}")
        elif lead == 2:
            sequences[name] = x
            sources[name] = _SequenceSource(name, x)
            lengths.append(int(x.shape[0]))
            kinds.append(f"{name}: sequence {tuple(x.shape)}")
        else:
            raise BackendError(f"input {name!r} has shape {tuple(x.shape)}: expected S, (B, *S) or (T, B, *S) with S = {shape}")
    if n_steps is None:
        n_steps = min(lengths) if lengths else default_steps
    _check_steps(n_steps)
    for name, seq in sequences.items():
        if seq.shape[0] < n_steps:
            raise BackendError(f"input {name!r} holds {seq.shape[0]} steps but n_steps={n_steps}")
    return Stimulus(sources, input_shapes, n_steps, "; ".join(kinds), sequences, binary)


class _SequenceSource:
    def __init__(self, name: str, seq: Any):
        self.name, self.seq = name, seq

    def __call__(self, t: int) -> Any:
        return self.seq[t]


def _check_steps(n_steps: Any) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise BackendError(f"n_steps must be a positive integer, got {n_steps!r}")
