"""State carried between the time chunks of one ``run()`` call, which its runtime may update in place.

``GraphExecutor.run`` cuts time into chunks and hands each stateful runtime's state from one chunk to
the next. A runtime's ``run_seq`` may return its state as a ``Carried`` tuple naming itself as owner:
given that very object back, it may step its tensors in place instead of copying them (and reuse what
it attached, such as the last step's reset mask), because nothing else holds it. Wherever a state
leaves the chunk loop (the caller's result, the kept state, an observer) the executor ``disown``s it
into a plain tuple first, so a state anyone else can see is never modified: the guarantee of
docs/runtime.md ("steps never modify a state they were given") is unchanged.
"""

from __future__ import annotations

from typing import Any


class Carried(tuple):
    """A state tuple owned by the runtime `owner` until the executor disowns it (tuple subclasses take
    no __slots__, so its attributes live in an instance dict)."""

    owner: Any
    extra: Any

    @classmethod
    def of(cls, owner: Any, values: tuple, extra: Any = None) -> "Carried":
        carried = cls(values)
        carried.owner, carried.extra = owner, extra
        return carried


def owned_by(state: Any, owner: Any) -> bool:
    """True when `state` is a Carried that `owner` returned and may now update in place."""
    return type(state) is Carried and state.owner is owner


def disown(state: Any) -> Any:
    """A state without Carried tuples (nested graphs' state dicts included): what may leave run()."""
    if type(state) is Carried:
        return tuple(state)
    if isinstance(state, dict):
        return {k: disown(v) for k, v in state.items()}
    return state
