"""HDF5 file-space settings that keep .t1c files close to the raw size of their arrays.

A .t1c file holds one HDF5 object per field (the existing SDK's layout), so HDF5's per-object
reserves, not the arrays, decide the size of a small model's file. Three of them are switched off
here, none of which changes what any reader sees:

- Dataset headers: HDF5 gives every dataset's object header room for attributes it may get later,
  about 200 bytes per dataset. HDF5 1.10.5 added a switch that sizes dataset headers to their messages
  (H5Fset_dset_no_attrs_hint; a dataset that gets an attribute later grows a continuation chunk).
- Group headers: HDF5 sizes a new group's header for 4 links of 8-byte names; a node group with more
  fields overflows into continuation chunks (some 50 bytes each), a smaller one leaves room unused.
  Each group is created with its real number of links and name length (H5Pset_est_link_info).
- Small raw data: HDF5 allocates arrays under 2 KiB from a 2 KiB "small data" block, whose unused
  tail stays in the file (1.5 KB of a 2.5 KB-array model). Size 0 allocates each array exactly
  (H5Pset_small_data_block_size).

h5py wraps none of these, so they are called through ctypes in the HDF5 library h5py itself loaded;
where that library lacks one, files are written as before, only larger.
"""

from __future__ import annotations

import ctypes
import os
from functools import lru_cache
from typing import Any

import h5py


@lru_cache(maxsize=None)
def _hdf5_function(name: str, *argtypes: Any) -> Any:
    try:
        fn = getattr(ctypes.CDLL(h5py.h5f.__file__), name)  # resolved in h5py's own libhdf5
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn


def minimize_dataset_headers(f: h5py.File) -> bool:
    """Size the object headers of datasets created from now on in `f` to their content; True when done."""
    fn = _hdf5_function("H5Fset_dset_no_attrs_hint", ctypes.c_int64, ctypes.c_bool)
    return fn is not None and fn(f.id.id, True) >= 0


def _estimate_links(plist: Any, names: list[bytes]) -> None:
    fn = _hdf5_function("H5Pset_est_link_info", ctypes.c_int64, ctypes.c_uint, ctypes.c_uint)
    if fn is not None and names:
        fn(plist.id, min(len(names), 65535), min(-(-sum(map(len, names)) // len(names)), 65535))


def group_plist(names: list[bytes], track_order: bool = False) -> Any:
    """A group creation property list sized for links named `names` (the group's header holds them),
    without timestamps: HDF5 stamps every new group's header with four times (access, modification,
    change, birth) unless told not to, so the same graph written a second later gave different bytes."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    if track_order:  # as h5py's create_group(track_order=True)
        gcpl.set_link_creation_order(h5py.h5p.CRT_ORDER_TRACKED | h5py.h5p.CRT_ORDER_INDEXED)
    _estimate_links(gcpl, names)
    return gcpl


def create_file(path: str | os.PathLike, userblock: int, root_links: list[bytes]) -> h5py.File:
    """Create (truncate) `path` for writing: HDF5 1.10+ structures, no timestamps, a `userblock`-byte user
    block, every reserve above off, the root group sized for `root_links`."""
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_V110, h5py.h5f.LIBVER_LATEST)
    small = _hdf5_function("H5Pset_small_data_block_size", ctypes.c_int64, ctypes.c_uint64)
    if small is not None:
        small(fapl.id, 0)
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    fcpl.set_userblock(userblock)
    _estimate_links(fcpl, root_links)
    name = os.fspath(path).encode("utf-8") if os.name == "nt" else os.fsencode(path)  # as h5py.File does: HDF5 takes UTF-8 on Windows
    f = h5py.File(h5py.h5f.create(name, h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl))
    minimize_dataset_headers(f)
    return f
