"""Curve cubes: content-addressed, crash-safe Zarr stores of per-pixel generation rates, read as xarray.

Modules: `schema` (names and versions), `params` (CubeParams), `keys` (content keys), `build`
(compute one cube), `slots` (the on-disk multi-image groups), `store` (CubeStore), `batch`
(resumable batch precompute, local or dask.distributed), `sources` (image folders and data set
layouts), `anytime` (a cube refined batch by batch, each batch's cube shown), `accessor` (`ds.curves`,
`tree.curves`), `open` (`open_store`: a whole store as one xarray DataTree). Importing `cache`
registers the accessors. The on-disk format: docs/format.md.
"""
from __future__ import annotations

from . import accessor as _accessor  # noqa: F401  (registers ds.curves)
from .params import CubeParams

__all__ = ["CubeParams", "CubeStore", "open_store"]


def __getattr__(name: str):
    if name == "CubeStore":
        from .store import CubeStore

        return CubeStore
    if name == "open_store":
        from .open import open_store

        return open_store
    raise AttributeError(name)
