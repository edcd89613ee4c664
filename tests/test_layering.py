"""The layering of ../shared/ARCHITECTURE.md, checked on the source's syntax trees.

Every `import` statement counts, those inside functions included (an in-function import is for start-up
time or an optional dependency, never to hide a cycle). Two checks: what each package may import, and no
import cycle between talon's modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "talon"

# What each part of talon must never import (a name or a dotted prefix of one). Layer 0 imports nothing
# of talon's; talon.ir, talon.sdk, talon.mapping, talon.viz and talon.io never touch torch.
ABOVE_IR = ("talon.sdk", "talon.mapping", "talon.bridge", "talon.backend", "talon.viz", "talon.io", "talon.cli",
            "talon.eval", "talon.eval_data", "talon.pipeline", "talon.report", "talon.sweep")
TORCH = ("torch", "snntorch", "torchvision")
LAYER3 = ("talon.eval", "talon.eval_data", "talon.pipeline", "talon.report", "talon.sweep")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "talon.errors": ("talon",),
    "talon._json": ("talon",),
    "talon._versions": ("talon",),
    "talon._text": ("talon",),
    "talon._registry": TORCH + ("talon.ir",) + ABOVE_IR,
    "talon._html": ("talon",),
    "talon.ir": TORCH + ABOVE_IR,
    "talon.sdk": TORCH + ("talon.mapping", "talon.bridge", "talon.backend", "talon.viz", "talon.io", "talon.cli") + LAYER3,
    "talon.mapping": TORCH + ("talon.bridge", "talon.backend", "talon.viz", "talon.io", "talon.cli") + LAYER3,
    "talon.io": TORCH + ("talon.sdk", "talon.mapping", "talon.bridge", "talon.backend", "talon.viz", "talon.cli") + LAYER3,
    "talon.bridge": ("talon.sdk", "talon.mapping", "talon.backend", "talon.viz", "talon.io", "talon.cli") + LAYER3,
    "talon.backend": ("talon.viz", "talon.cli") + LAYER3,
    "talon.viz": TORCH + ("talon.bridge", "talon.backend", "talon.cli") + LAYER3,
    "talon.eval": ("talon.cli",), "talon.eval_data": ("talon.cli",), "talon.pipeline": ("talon.cli",),
    "talon.report": ("talon.cli",), "talon.sweep": ("talon.cli",),
}
# snnTorch is known to talon.bridge's snnTorch module alone.
SNNTORCH_HOME = "talon.bridge.snntorch"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """Absolute names of everything module `name` imports, at any depth of its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            # `from talon.ir import format` imports a module; `from talon.ir import Graph` a name in one
            found.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return found


IMPORTS = {name: _imports(name) for name in MODULES}


def _matches(imported: str, prefix: str) -> bool:
    return imported == prefix or imported.startswith(prefix + ".")


def _rule(module: str) -> tuple[str, tuple[str, ...]] | None:
    owners = [key for key in FORBIDDEN if _matches(module, key)]
    return (max(owners, key=len), FORBIDDEN[max(owners, key=len)]) if owners else None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_keeps_to_its_layer(module):
    rule = _rule(module)
    bad = sorted(i for i in IMPORTS[module] if rule and any(_matches(i, f) for f in rule[1]) and not _matches(i, rule[0]))
    assert not bad, f"{module} ({rule[0] if rule else ''}) imports {bad}: see ARCHITECTURE.md's layer table"


def test_snntorch_is_imported_by_the_bridge_snntorch_module_alone():
    users = sorted(m for m, imports in IMPORTS.items() if any(_matches(i, "snntorch") for i in imports))
    assert users == [SNNTORCH_HOME]


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    # A package and the modules inside it import each other by design (`from talon.ir import Graph`
    # in a talon.ir module): edges between a module and its own packages do not count.
    graph = {m: sorted(t for t in IMPORTS[m] if t in MODULES and t != m and not _matches(m, t) and not _matches(t, m))
             for m in MODULES}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                scc = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    scc.append(w)
                    if w == v:
                        break
                if len(scc) > 1:
                    found.append(sorted(scc))
    return found


def test_no_import_cycles_between_modules():
    assert _cycles() == []
