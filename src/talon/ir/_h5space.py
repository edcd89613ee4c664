"""HDF5 file-space settings that keep .t1c files close to the raw size of their arrays.

HDF5 gives every dataset's object header room for attributes it may get later: about 200 bytes per
dataset, and a .t1c file holds one dataset per field (the existing SDK's layout), so for the tutorial's
6-node model that reserve alone is 5 KB. HDF5 1.10.5 added a switch that sizes dataset headers to their
messages (H5Fset_dset_no_attrs_hint; a dataset that gets an attribute later grows a continuation chunk,
as before). h5py does not wrap it, so it is called through ctypes in the HDF5 library h5py itself loaded;
where that library lacks it, files are written as before, only larger. Readers see no difference.
"""

from __future__ import annotations

import ctypes
from functools import lru_cache
from typing import Any

import h5py


@lru_cache(maxsize=1)
def _no_attrs_hint() -> Any:
    try:
        fn = ctypes.CDLL(h5py.h5f.__file__).H5Fset_dset_no_attrs_hint  # resolved in h5py's own libhdf5
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int64, ctypes.c_bool]
    fn.restype = ctypes.c_int
    return fn


def minimize_dataset_headers(f: h5py.File) -> bool:
    """Size the object headers of datasets created from now on in `f` to their content; True when done."""
    fn = _no_attrs_hint()
    return fn is not None and fn(f.id.id, True) >= 0
