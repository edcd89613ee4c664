"""Built-in primitives, one module per family; importing this package registers them all."""

from talon.ir.primitives.io import Input, Output
from talon.ir.primitives.linear import Affine, Linear, Scale, SpikingAffine
from talon.ir.primitives.conv import Conv1d, Conv2d, SConv, SDConv, SepConv2d
from talon.ir.primitives.pooling import AvgPool2d, MaxPool2d, SumPool2d, Upsample
from talon.ir.primitives.neurons import IF, LI, LIF, RESET_MODES, CubaLIF, Delay, Integrator, Threshold
from talon.ir.primitives.alpha import Alpha
# Helpers, not primitives (kept out of __all__): talon.bridge and talon.ir.nir call them as primitives.X.
from talon.ir.primitives.neurons import NeuronCoefficients as NeuronCoefficients, coefficients as coefficients, in_time_unit as in_time_unit
from talon.ir.primitives.activations import ELU, GELU, PReLU, ReLU, Sigmoid, Softmax, Tanh
from talon.ir.primitives.norm import BatchNorm1d, BatchNorm2d, Dropout, LayerNorm
from talon.ir.primitives.structure import ChannelSplit, Concat, Flatten, HybridRegion, Skip
from talon.ir.primitives.legacy import (
    DFLDecode,
    Dist2BBox,
    GhostBasicBlock1,
    GhostBasicBlock2,
    NMS,
    SDDetect,
    SGhostConv,
    SGhostEncoderLite,
)

__all__ = [
    "Input", "Output", "Affine", "Linear", "Scale", "SpikingAffine", "Conv1d", "Conv2d", "SConv", "SDConv",
    "SepConv2d", "AvgPool2d", "MaxPool2d", "SumPool2d", "Upsample", "IF", "LI", "LIF", "RESET_MODES", "CubaLIF",
    "Delay", "Integrator", "Threshold", "Alpha", "ELU", "GELU", "PReLU", "ReLU", "Sigmoid", "Softmax", "Tanh",
    "BatchNorm1d", "BatchNorm2d", "Dropout", "LayerNorm", "ChannelSplit", "Concat", "Flatten", "HybridRegion",
    "Skip", "DFLDecode", "Dist2BBox", "GhostBasicBlock1", "GhostBasicBlock2", "NMS", "SDDetect", "SGhostConv",
    "SGhostEncoderLite",
]
