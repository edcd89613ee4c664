"""Modules whose computation torch.fx cannot see, refused by path before anything runs.

TorchScript modules (`torch.jit.script`, `torch.jit.trace`) hold compiled code, not a Python forward to trace;
`torch.compile` wraps a module in an OptimizedModule whose numerics are those of the generated kernels, not
eager PyTorch's; `nn.DataParallel` / `DistributedDataParallel` wrap the model in `.module`; and a forward assigned
on an instance (`model.fc.forward = my_forward`) is ignored by torch.fx, which traces the class's forward, and by
the converters, which convert the class. Exporting any of them would crash or compute something else, so each is
named with the module to export instead.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from talon.errors import UnsupportedModuleError

__all__ = ["check_wrapped"]


def _label(path: str, module: nn.Module) -> str:
    t = type(module)
    where = "the model" if path == "" else f"module {path!r}"
    return f"{where} ({t.__module__}.{t.__qualname__})"


def _reason(path: str, module: nn.Module) -> str | None:
    inner = "model" if path == "" else f"model.{path}"
    if isinstance(module, torch.jit.ScriptModule):
        return ("is a TorchScript module (torch.jit.script / torch.jit.trace), compiled code that torch.fx cannot trace; "
                "export the nn.Module it was made from")
    if hasattr(module, "_orig_mod") and type(module).__name__ == "OptimizedModule":
        return ("is a torch.compile wrapper, whose generated kernels may round differently from eager PyTorch; export "
                f"the module it compiles, {inner}._orig_mod (TALON reproduces the eager model bit for bit)")
    if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        return f"is a {type(module).__name__} wrapper; export the model it wraps, {inner}.module"
    if "forward" in vars(module):
        return ("has its forward replaced on the instance (module.forward = ...), which torch.fx ignores: it traces "
                "the class's forward and converts the class; put that forward in a subclass (and give it a converter "
                "through custom_map if it is a layer), or export the module without the replacement")
    return None


def check_wrapped(model: nn.Module, api: str, custom: Callable[[str, nn.Module], bool] = lambda p, m: False) -> None:
    """Raise UnsupportedModuleError for the first module of `model` (itself included) fx would not see as it runs;
    a module the call's custom_map converts (`custom(path, module)`), and what it contains, is the converter's."""
    mapped: list[str] = []
    for path, module in model.named_modules():
        if any(path == p or path.startswith(p + ".") for p in mapped):
            continue
        if path and custom(path, module):
            mapped.append(path)
            continue
        reason = _reason(path, module)
        if reason is not None:
            raise UnsupportedModuleError(f"{api}: cannot export {_label(path, module)}: it {reason}")
