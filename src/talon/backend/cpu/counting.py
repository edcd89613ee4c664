"""Counting the non-zeros of a run's tensors (spikes, input events) in one cheap pass.

torch's ``ne(x, 0).sum()`` builds a bool tensor and sums it through a slow cast; numpy's count_nonzero
counts in one vectorised pass, three to four times faster on the CPU (docs/performance.md, "Fixed point,
fourth pass"). Both count what torch.count_nonzero counts: NaN yes, -0.0 no.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

_NUMPY_DTYPES = (torch.float64, torch.float32, torch.float16, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)


def count_nonzero(x: Tensor) -> Any:
    """The number of non-zero elements of `x`: a Python int on the CPU, a 0-d tensor elsewhere (no host
    synchronisation per call)."""
    if x.device.type == "cpu" and x.dtype in _NUMPY_DTYPES and not x.is_neg() and not x.is_conj():
        return int(np.count_nonzero(x.detach().numpy()))
    return torch.ne(x, 0).sum()
