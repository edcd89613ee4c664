"""snnTorch-facing name for the exporter: snntorch.export_talonir resolves here."""

from talon.bridge.export import export_to_ir

__all__ = ["export_to_ir"]
