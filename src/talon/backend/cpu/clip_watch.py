"""Saying so where fixed-point simulation saturates a value (docs/fixed_point.md section 2).

Saturation is part of the hardware rule, but a value the calibrated formats cannot hold is a value the
chip would change: the user has to know. While a fixed-point run is watched (`watching()`), every site
that saturates (graph inputs, synaptic accumulators and outputs, requantising nodes, neuron membranes
and synaptic currents) reports the extremes of the values it was about to clamp, and at the end of the
run one `FixedPointSaturationWarning` names every node and value that left its format, with the
furthest value reached and the format's range.

What the rule itself allows is not reported: with the power-of-two rule (section 5) a calibrated
activation lies below `2^(b-1)` in integer units and may round half up to exactly `2^(b-1)`, one LSB past
the top, and saturate to `2^(b-1) - 1`; so a value rounded half up is reported when it reaches
`2^(b-1)` before rounding (beyond any calibrated range) or rounds below `-2^(b-1)`, while an accumulator
or a membrane (rounded up) is reported at any saturation. Only extremes (one `aminmax` per tensor) are kept,
as 0-d tensors, read once when the run ends.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

import torch

from talon.backend.cpu.fixed_format import Format
from talon.backend.saturation_report import FixedPointSaturationWarning, describe, message, silent_top

__all__ = ["FixedPointSaturationWarning", "ClipLog", "watching", "active", "fold", "note_pair", "note_input", "note_half_up",
           "note_ceil", "note_synaptic"]  # fmt: skip


class ClipLog:
    """The extremes each watched (node, value) reached, in integer units of its format: (node, what) ->
    [format, lowest allowed, highest allowed, [(min, max) 0-d tensors]]."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], list[Any]] = {}

    def add(self, node: str, what: str, fmt: Format, lo: float, hi: float, pair: Any) -> None:
        entry = self.seen.get((node, what))
        if entry is None:
            entry = self.seen[(node, what)] = [fmt, lo, hi, []]
        pairs = entry[3]
        pairs.append(pair)
        if len(pairs) >= _FOLD_AT:  # a long run keeps one pair per value, not one per step
            pairs[:] = [fold(pairs)]

    def clipped(self) -> list[tuple[str, str, Format, float]]:
        """(node, what, format, furthest value reached, in real units) of every value that saturated."""
        out = []
        for (node, what), (fmt, lo, hi, pairs) in self.seen.items():
            low, high = (float(v) for v in fold(pairs))
            if high > hi or low < lo:  # NaN compares False: a NaN is refused elsewhere, not reported here
                far = high if high - hi >= lo - low else low
                out.append((node, what, fmt, math.ldexp(far, -fmt.frac)))
        return out

    def warn(self) -> None:
        """One FixedPointSaturationWarning naming every value that saturated (nothing when none did),
        attributed to the first caller outside the talon package (the user's simulate/profile call)."""
        clipped = self.clipped()
        if not clipped:
            return
        parts = [describe(node, what, fmt.bits, fmt.frac, far) for node, what, fmt, far in clipped]
        warnings.warn(message(parts), FixedPointSaturationWarning, stacklevel=_user_stacklevel())


#: pairs kept per watched value before they are folded into one
_FOLD_AT = 256


def fold(pairs: list) -> tuple[Any, Any]:
    """One (min, max) pair, float64 0-d tensors, for a list of them (one stack per side: a conversion per
    element only where the pairs' dtypes differ)."""
    lows, highs = [p[0] for p in pairs], [p[1] for p in pairs]
    if len({t.dtype for t in lows} | {t.dtype for t in highs}) > 1:
        lows, highs = [t.to(torch.float64) for t in lows], [t.to(torch.float64) for t in highs]
    return torch.stack(lows).min().to(torch.float64), torch.stack(highs).max().to(torch.float64)


_PACKAGE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # .../talon


def _user_stacklevel() -> int:
    """The stacklevel of warnings.warn, called from ClipLog.warn, that names the first frame outside talon."""
    frame, level = sys._getframe(1), 1  # ClipLog.warn's frame is level 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE + os.sep):
        frame, level = frame.f_back, level + 1
    return level


_LOG: ContextVar[ClipLog | None] = ContextVar("talon_clip_log", default=None)


@contextmanager
def watching() -> Iterator[ClipLog]:
    """Watch every saturation of the fixed-point runs inside the block into the yielded ClipLog."""
    log = ClipLog()
    token = _LOG.set(log)
    try:
        yield log
    finally:
        _LOG.reset(token)


def active() -> ClipLog | None:
    """The ClipLog of the run in progress, or None when no run is watched."""
    return _LOG.get()


def note_pair(node: str, what: str, fmt: Format, pair: Any) -> None:
    """Record (min, max) of values in integer units of `fmt`, before their saturation to it."""
    log = _LOG.get()
    if log is not None:
        log.add(node, what, fmt, fmt.lo, fmt.hi, pair)


def _scaled_extremes(x: Any, frac: int) -> tuple[Any, Any] | None:
    if not isinstance(x, torch.Tensor) or not x.numel():
        return None
    lo, hi = torch.aminmax(x.detach())
    up = math.ldexp(1.0, frac)
    return lo.to(torch.float64) * up, hi.to(torch.float64) * up


def note_half_up(node: str, what: str, x: Any, fmt: Format) -> None:
    """A value rounded half up to `fmt` (real units): saturated beyond the rule's one LSB at the top."""
    log = _LOG.get()
    if log is None:
        return
    ext = _scaled_extremes(x, fmt.frac)
    if ext is not None:  # rounding is monotone: the extremes' rounded values are the rounded extremes
        log.add(node, what, fmt, fmt.lo, _BELOW_TOP(fmt), (torch.floor(ext[0] + 0.5), ext[1]))


def note_ceil(node: str, what: str, x: Any, fmt: Format) -> None:
    """A value rounded up to `fmt` (real units): any saturation is reported."""
    log = _LOG.get()
    if log is None:
        return
    ext = _scaled_extremes(x, fmt.frac)
    if ext is not None:
        log.add(node, what, fmt, fmt.lo, fmt.hi, (torch.ceil(ext[0]), torch.ceil(ext[1])))


def note_input(node: str, x: Any, fmt: Format) -> None:
    """A graph input rounded half up to its format."""
    note_half_up(node, "input", x, fmt)


def note_synaptic(plan: Any, acc: Any) -> None:
    """A synaptic layer's exact accumulator value (real units), before saturation to acc_bits and rounding
    to its output format."""
    log = _LOG.get()
    if log is None or plan.acc_bits is None or plan.acc_frac is None:
        return
    ext = _scaled_extremes(acc, plan.acc_frac)
    if ext is None:
        return
    acc_fmt = Format(plan.acc_bits, plan.acc_frac)
    log.add(plan.name, "accumulator", acc_fmt, acc_fmt.lo, acc_fmt.hi, ext)
    # the output rounds the saturated accumulator half up: its extremes are those of the clamped extremes
    fmt = plan.out_format
    lo = torch.clamp(ext[0], acc_fmt.lo, acc_fmt.hi)
    hi = torch.clamp(ext[1], acc_fmt.lo, acc_fmt.hi)
    shift = math.ldexp(1.0, fmt.frac - plan.acc_frac)
    log.add(plan.name, "output", fmt, fmt.lo, _BELOW_TOP(fmt), (torch.floor(lo * shift + 0.5), hi * shift))


def _BELOW_TOP(fmt: Format) -> float:  # noqa: N802
    """The largest value (integer units, before rounding half up) the rule lets saturate silently
    (talon.backend.saturation_report.silent_top: below 2^(b-1), which a calibrated range never reaches)."""
    return silent_top(fmt.bits)
