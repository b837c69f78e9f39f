"""`open_store(path)`: every group of a cube store as one `xarray.DataTree` (the store's single entry point).

    tree = cache.open_store("store")          # DataTree: one node per group (/b-..., /c-...)
    tree["b-0123"].ds                         # a labelled group: rate (image_id, t, y, x), coordinates
    tree.curves.select(image="bird")          # one complete cube (t, y, x) from whichever group holds it

Each node is what plain `xarray.open_zarr(<store>/groups/<gid>.zarr)` shows (docs/format.md), read
through the store's checksum verification (cache.integrity) and, for groups written before labels,
labelled in memory (cache.schema.label_group). Slots whose `done` coordinate is 0 are incomplete:
`node.ds.where(node.ds.done == 1, drop=True)` keeps the complete ones. The root carries the store's
`store.json` as attributes. Nothing is loaded until read.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import xarray as xr

from workbench.errors import WorkbenchError

from . import slots
from .store import STORE_FILE, CubeStore

__all__ = ["open_store"]


def open_store(path: str | os.PathLike) -> xr.DataTree:
    """Every group of the cube store at `path` as a lazy `xarray.DataTree` (module docstring): node
    `/<gid>` = the labelled multi-image group Dataset. A folder that is not a cube store raises
    WorkbenchError; an empty store gives a tree with no children."""
    store = CubeStore(path, create=False)  # checks the marker and the schema version
    groups = {}
    for p in sorted(store.groups_dir.glob("*.zarr")):
        if p.is_dir():
            groups[p.name[: -len(".zarr")]] = slots.open_group(p)
    try:
        meta = json.loads((Path(store.path) / STORE_FILE).read_text())
    except (OSError, ValueError):
        raise WorkbenchError(f"{store.path / STORE_FILE} became unreadable while opening the store") from None
    tree = xr.DataTree.from_dict(groups)
    tree.attrs = {k: v for k, v in meta.items() if isinstance(v, (str, int, float))}
    return tree
