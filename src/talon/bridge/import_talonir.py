"""snnTorch-facing name for the importer: snntorch.import_talonir resolves here."""

from talon.bridge.executor import ir_to_torch as import_from_ir

__all__ = ["import_from_ir"]
