"""snnTorch shim: makes ``snntorch.export_talonir`` and ``snntorch.import_talonir`` importable.

snntorch is a regular package we do not own, so the two names cannot be added as files inside it.
Instead ``t1c_talon_snntorch.pth`` (installed at the site-packages root by the t1c-talon wheel) imports
this module, which appends a meta-path finder that answers for exactly those two names and hands back
the talon modules themselves (``snntorch.export_talonir is talon.bridge.export_talonir``).

This runs at every interpreter start-up, so it imports only ``sys`` (already loaded): importlib.abc
alone would pull in importlib.resources, tempfile and typing (~15 ms). Nothing of talon, torch or
snntorch is imported until one of the two names is.
"""

import sys

ALIASES = {
    "snntorch.export_talonir": "talon.bridge.export_talonir",
    "snntorch.import_talonir": "talon.bridge.import_talonir",
}


class _AliasLoader:
    """Loads an alias by importing its talon target and returning that very module object."""

    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        __import__(self.target)
        return sys.modules[self.target]

    def exec_module(self, module):
        pass  # the target module already ran when create_module imported it


class TalonSnntorchFinder:
    """Meta-path finder (duck-typed importlib.abc.MetaPathFinder) for the names in ``ALIASES``."""

    _t1c_talon_snntorch = True  # marks our finder so a second install() can recognise it

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname not in ALIASES:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, _AliasLoader(ALIASES[fullname]))

    @classmethod
    def invalidate_caches(cls):
        pass


def install():
    """Append the finder once; appended, not prepended, so a real module of that name would win."""
    if not any(getattr(f, "_t1c_talon_snntorch", False) for f in sys.meta_path):
        sys.meta_path.append(TalonSnntorchFinder)


install()
