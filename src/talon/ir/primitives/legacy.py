"""Primitives of the existing SDK's detection models, kept so its files read and write losslessly.

These are stored and validated like any primitive but have no shape rule or runtime here: tools that
need one say so by name.
"""

from __future__ import annotations

import numpy as np

from talon.errors import PrimitiveError
from talon.ir.node import Node, Shape, array, integer, ints, primitive, real


class _StorageOnly(Node):
    max_inputs = None

    def infer_output_shapes(self, input_shapes: list[Shape]) -> list[Shape]:
        raise PrimitiveError(f"{self.type_name} is an existing-SDK detection block that TALON stores but cannot shape or run")



@primitive
class SGhostConv(_StorageOnly):
    """Ghost convolution: a primary conv plus a cheap depthwise conv whose outputs are concatenated."""

    primary_weight: np.ndarray = array()
    primary_bias: np.ndarray = array()
    cheap_weight: np.ndarray = array()
    cheap_bias: np.ndarray = array()
    primary_stride: tuple = ints((1, 1), length=2)
    primary_padding: tuple = ints((0, 0), length=2)
    cheap_stride: tuple = ints((1, 1), length=2)
    cheap_padding: tuple = ints((1, 1), length=2)


@primitive
class SGhostEncoderLite(_StorageOnly):
    """Stem conv followed by a ghost conv."""

    conv1_weight: np.ndarray = array()
    conv1_bias: np.ndarray = array()
    ghost_primary_weight: np.ndarray = array()
    ghost_primary_bias: np.ndarray = array()
    ghost_cheap_weight: np.ndarray = array()
    ghost_cheap_bias: np.ndarray = array()
    stride: int = integer(2, minimum=1)


@primitive
class GhostBasicBlock1(_StorageOnly):
    """Strided ghost residual block (cv0, cv2 and a cvres shortcut)."""

    cv0_primary_weight: np.ndarray = array()
    cv0_primary_bias: np.ndarray = array()
    cv0_cheap_weight: np.ndarray = array()
    cv0_cheap_bias: np.ndarray = array()
    cv2_primary_weight: np.ndarray = array()
    cv2_primary_bias: np.ndarray = array()
    cv2_cheap_weight: np.ndarray = array()
    cv2_cheap_bias: np.ndarray = array()
    cvres_primary_weight: np.ndarray = array()
    cvres_primary_bias: np.ndarray = array()
    cvres_cheap_weight: np.ndarray = array()
    cvres_cheap_bias: np.ndarray = array()
    stride: int = integer(2, minimum=1)


@primitive
class GhostBasicBlock2(_StorageOnly):
    """Ghost residual block with identity shortcut (cv0, cv2)."""

    cv0_primary_weight: np.ndarray = array()
    cv0_primary_bias: np.ndarray = array()
    cv0_cheap_weight: np.ndarray = array()
    cv0_cheap_bias: np.ndarray = array()
    cv2_primary_weight: np.ndarray = array()
    cv2_primary_bias: np.ndarray = array()
    cv2_cheap_weight: np.ndarray = array()
    cv2_cheap_bias: np.ndarray = array()


@primitive
class SDDetect(_StorageOnly):
    """Three-scale detection head: box branch cv2_* and class branch cv3_*."""

    cv2_w0: np.ndarray = array()
    cv2_b0: np.ndarray = array()
    cv2_w1: np.ndarray = array()
    cv2_b1: np.ndarray = array()
    cv2_w2: np.ndarray = array()
    cv2_b2: np.ndarray = array()
    cv3_w0: np.ndarray = array()
    cv3_b0: np.ndarray = array()
    cv3_w1: np.ndarray = array()
    cv3_b1: np.ndarray = array()
    cv3_w2: np.ndarray = array()
    cv3_b2: np.ndarray = array()
    num_classes: int = integer(minimum=1)
    reg_max: int = integer(16, minimum=1)
    stride: int = integer(8, minimum=1)


@primitive
class DFLDecode(_StorageOnly):
    """Distribution-focal-loss box decoding: expectation over `reg_max` bins."""

    dfl_weights: np.ndarray = array()
    reg_max: int = integer(16, minimum=1)


@primitive
class Dist2BBox(_StorageOnly):
    """Distances to bounding boxes at a feature stride."""

    stride: int = integer(minimum=1)


@primitive
class NMS(_StorageOnly):
    """Non-maximum suppression of detections."""

    score_threshold: float = real(0.25)
    iou_threshold: float = real(0.45)
    max_detections: int = integer(300, minimum=1)
