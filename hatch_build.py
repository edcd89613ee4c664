"""Hatch build hook: ships the snnTorch shim (see src/_t1c_talon_snntorch.py) in editable wheels too.

The normal wheel gets the two root files from ``[tool.hatch.build.targets.wheel.force-include]``; some
hatchling versions drop that table for editable builds, so this names the files explicitly there.
Our .pth sorts after hatchling's own ``_t1c_talon.pth`` (which puts src/ on sys.path).
"""

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SHIM_FILES = {
    "src/_t1c_talon_snntorch.py": "_t1c_talon_snntorch.py",
    "src/t1c_talon_snntorch.pth": "t1c_talon_snntorch.pth",
}


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if self.target_name == "wheel" and version == "editable":
            build_data["force_include_editable"].update(SHIM_FILES)
