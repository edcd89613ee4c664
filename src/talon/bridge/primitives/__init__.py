"""The bridge's side of primitives that live in their own modules: each module here holds one primitive's
runtime (register_runtime) and, where a library has the module, its exporter converter (register_converter,
by dotted class name, so that no module here imports snnTorch).

Every module of this package (not starting with "_") is imported at package import, in sorted order
(pkgutil.iter_modules), and `talon.bridge` imports this package: a new module registers itself with no
import line elsewhere.
"""

import importlib
import pkgutil

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
