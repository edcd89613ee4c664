"""TALON: carry spiking neural networks from snnTorch/PyTorch to neuromorphic hardware."""

__version__ = "0.1.0"
