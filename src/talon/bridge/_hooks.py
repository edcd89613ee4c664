"""Forward hooks the exported graph would drop: watched while the sample runs, refused when they change a value.

torch.fx traces `forward`. The hooks `Module.__call__` runs around it (`register_forward_hook`,
`register_forward_pre_hook`, and torch's global module hooks) are not part of the trace when the module is a
leaf of it (every layer TALON converts, every snnTorch neuron) or the model itself, so a hook that replaces or
edits a value (`lambda m, args, out: out * 2`) would silently be missing from the graph. The export runs the
sample through the traced graph, which calls leaf modules through `__call__`; `watched` wraps each of their hooks
(and the model's own, called once on the sample afterwards) to see whether it returned other tensors than it was
given or wrote to them in place (their version counters): that does not depend on the sample's values. Hooks that
only look (recording activations) and torch's weight reparametrisations (weight_norm, spectral_norm, pruning: they
set the weight the converter then reads) return None and write nothing, and pass.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn
from torch.nn.modules import module as torch_module

from talon.errors import UnsupportedModuleError

__all__ = ["watched", "call_model_hooks", "HookWatch"]


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _snapshot(value: Any) -> list[tuple[torch.Tensor, int | None]]:
    """Each tensor of `value` with its version counter (None for an inference tensor, which keeps none)."""
    out = []
    for t in _tensors(value):
        try:
            version = t._version
        except RuntimeError:
            version = None
        out.append((t, version))
    return out


def _replaced(result: Any, before: list[tuple[torch.Tensor, int | None]]) -> bool:
    """A hook's non-None result is a change unless it hands back the very tensors it was given."""
    got = _tensors(result)
    return len(got) != len(before) or any(t is not b for t, (b, _) in zip(got, before))


def _copies(before: list[tuple[torch.Tensor, int | None]]) -> list[torch.Tensor | None]:
    """Copies of the tensors without a version counter (inference tensors), to compare by value instead."""
    return [t.detach().clone() if version is None else None for t, version in before]


def _written(before: list[tuple[torch.Tensor, int | None]], copies: list[torch.Tensor | None]) -> bool:
    """Any of the tensors written in place since the snapshot (by version counter, else by value)."""
    for (t, version), old in zip(before, copies):
        if old is None:
            if t._version != version:
                return True
        elif not (torch.equal(t, old) or (t.is_floating_point()
                                          and bool(torch.isclose(t, old, rtol=0, atol=0, equal_nan=True).all()))):
            return True
    return False


def _hook_name(hook: Callable) -> str:
    name = getattr(hook, "__qualname__", None) or type(hook).__qualname__
    code = getattr(hook, "__code__", None)
    return f"{name} ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})" if code is not None else name


class HookWatch:
    """The hooks that changed a value while the sample ran: (module path, 'forward' | 'pre-forward', hook, how)."""

    def __init__(self) -> None:
        self.changed: list[tuple[str, str, Callable, str]] = []

    def _pre(self, path: str, hook: Callable) -> Callable:
        return self._watcher(path, hook, "pre-forward", "input", lambda args: args)

    def _post(self, path: str, hook: Callable) -> Callable:
        return self._watcher(path, hook, "forward", "output", lambda args: args[-1])

    def _watcher(self, path: str, hook: Callable, kind: str, noun: str, given: Callable[[tuple], Any]) -> Callable:
        """`hook` wrapped to note whether it changed what it was `given` (its arguments after the module)."""
        def watch(module: nn.Module, *args: Any) -> Any:
            before = _snapshot(given(args))
            values = _copies(before)
            result = hook(module, *args)
            if result is not None and _replaced(result, before):
                self.changed.append((path, kind, hook, f"returns another {noun}"))
            elif _written(before, values):
                self.changed.append((path, kind, hook, f"writes to the {noun} in place"))
            return result
        return watch

    def refuse(self, api: str) -> None:
        if not self.changed:
            return
        path, kind, hook, how = self.changed[0]
        where = {"": "the model itself", "<global>": "every module (a global hook, "
                 "torch.nn.modules.module.register_module_forward_hook)"}.get(path, f"module {path!r}")
        raise UnsupportedModuleError(
            f"{api}: the {kind} hook {_hook_name(hook)} of {where} {how}; torch.fx traces forward, not "
            "the hooks around it, so the exported graph would compute without it. Put what the hook computes into "
            "forward (or into a module of your own with a converter, custom_map), or remove the hook "
            "(handle.remove()) before exporting; hooks that only record values (and return None) are fine")


def _wrap(hooks: dict, make: Callable[[Callable], Callable], saved: list) -> None:
    for key, hook in list(hooks.items()):
        saved.append((hooks, key, hook))
        hooks[key] = make(hook)


@contextmanager
def watched(leaves: dict[str, nn.Module]) -> Iterator[HookWatch]:
    """Wrap the hooks of `leaves` (module path -> module) and torch's global module hooks while the block runs
    the sample; `call_model_hooks` then runs the model's own. Every hook is put back afterwards."""
    watch = HookWatch()
    saved: list = []
    try:
        for path, m in leaves.items():
            _wrap(m._forward_pre_hooks, lambda h, p=path: watch._pre(p, h), saved)
            _wrap(m._forward_hooks, lambda h, p=path: watch._post(p, h), saved)
        _wrap(torch_module._global_forward_pre_hooks, lambda h: watch._pre("<global>", h), saved)
        _wrap(torch_module._global_forward_hooks, lambda h: watch._post("<global>", h), saved)
        yield watch
    finally:
        for hooks, key, hook in reversed(saved):
            hooks[key] = hook


def call_model_hooks(watch: HookWatch, model: nn.Module, sample: torch.Tensor, output: Any) -> None:
    """The model's own forward hooks (and torch's global ones), which its `__call__` runs and the trace of its
    forward does not, called once on (a copy of) the sample and forward's output."""
    pre = [(h, False) for h in torch_module._global_forward_pre_hooks.values()]
    pre += [(h, k in model._forward_pre_hooks_with_kwargs) for k, h in model._forward_pre_hooks.items()]
    post = [(h, k in torch_module._global_forward_hooks_with_kwargs) for k, h in torch_module._global_forward_hooks.items()]
    post += [(h, k in model._forward_hooks_with_kwargs) for k, h in model._forward_hooks.items()]
    args = (sample.detach().clone(),)
    with torch.no_grad():
        for hook, with_kwargs in pre:
            watch._pre("", hook)(model, args, *([{}] if with_kwargs else []))
        for hook, with_kwargs in post:
            watch._post("", hook)(model, args, *([{}] if with_kwargs else []), _copy(output))


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_copy(v) for v in value))
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v) for v in value)
    return value
