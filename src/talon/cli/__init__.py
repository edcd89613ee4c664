"""The `talon` command line (click + rich) over the TALON library.

`main` is the console-script entry point. Every command module imports only click at module level;
library imports happen inside commands, so `talon analyze` and `talon lint` never import torch.
See docs/cli.md for every command and its --json schema.
"""

from talon.cli.app import cli, main

__all__ = ["cli", "main"]
