"""Curve cubes for analysis: obtained through the cache (`cache.store.CubeStore`), or opened from disk.

`cubes_for(images, adapter, store=...)` returns every image's cube, computed once by
`cache.build.compute_cube` and reused from the content-addressed store afterwards.
`open_cubes(path)` yields (name, Dataset) pairs from a `CubeStore` folder, a folder of single-cube
`*.zarr` directories (`save_cube`), or one `.zarr` cube.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterator

import xarray as xr

from cache.build import compute_cube
from cache.params import CubeParams
from cache.store import STORE_FILE, CubeStore
from workbench.errors import WorkbenchError
from workbench.progress import ProgressFn, emit

__all__ = ["compute_cube", "save_cube", "open_cube", "open_cubes", "cube_name", "cubes_for"]


def cube_name(ds: xr.Dataset) -> str:
    """The stem of the cube's source image (what exported maps are named after)."""
    src = ds.attrs.get("source_image") or ds.attrs.get("key") or "cube"
    return Path(str(src)).stem


def save_cube(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a cube Dataset as a Zarr directory (written to `path.partial`, then renamed)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    for p in (tmp, path):  # replaced only when it is a Zarr folder (a cube written here), never anything else
        is_zarr = p.is_dir() and not p.is_symlink() and any((p / m).is_file() for m in ("zarr.json", ".zgroup"))
        if p.exists() and not is_zarr:
            raise WorkbenchError(f"{p} exists and is not a Zarr cube: move it away or save the cube elsewhere")
    if tmp.exists():
        shutil.rmtree(tmp)
    ds.to_zarr(tmp, mode="w", consolidated=False)
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    return path


def open_cube(path: str | Path) -> xr.Dataset:
    """Open one `.zarr` cube (loaded into memory); a missing or foreign folder is a one-line error."""
    path = Path(path)
    try:
        ds = xr.open_zarr(path, consolidated=False).load()
    except Exception as exc:  # zarr raises many types for a folder that is not a store
        raise WorkbenchError(f"{path} is not a readable cube ({type(exc).__name__}): pass a .zarr cube or a "
                             "cube store folder") from None
    if "rate" not in ds:
        raise WorkbenchError(f"{path} has no 'rate' variable: it is not a curve cube")
    return ds


def open_cubes(path: str | Path, *, params: dict | None = None) -> Iterator[tuple[str, xr.Dataset]]:
    """(name, Dataset) for every complete cube under `path` (a CubeStore, a folder of .zarr, or one cube).

    `params` (e.g. {"rate_definition": "h", "estimator": "hutchinson"}) keeps only a store's cubes whose
    attributes match."""
    path = Path(path)
    if not path.exists():
        raise WorkbenchError(f"no such cube store or cube: {path} (check the path)")
    if path.suffix == ".zarr":
        ds = open_cube(path)
        yield cube_name(ds), ds
        return
    if (path / STORE_FILE).exists():
        store = CubeStore(path, create=False)
        rows = [r for r in store.index() if not params or all(r.get(k) == v for k, v in params.items())]
        if not rows:
            raise WorkbenchError(f"{path} holds no complete cubes" + (f" with {params}" if params else "") +
                                 ": compute some first (workbench cubes ...)")
        for r in rows:
            yield r["name"], store.open(r["key"]).load()
        return
    zarrs = sorted(p for p in path.glob("*.zarr") if p.is_dir())
    if not zarrs:
        raise WorkbenchError(f"{path} is neither a cube store nor a folder of .zarr cubes: pass a store folder")
    for p in zarrs:
        yield p.stem, open_cube(p)


def cubes_for(images: list, adapter, *, store: str | Path, params: CubeParams = CubeParams(),
              progress: ProgressFn | None = None) -> list[xr.Dataset]:
    """The cube of every image (paths) under `params`, loaded in memory: from the `CubeStore` at
    `store` when it is there, else computed (`cache.build.compute_cube`) and stored.
    `progress` gets `Progress` events of phase "images" (done of the images) and the events of a cube
    being computed (`cache.build.compute_cube`)."""
    st = CubeStore(store)
    out = []
    for i, img in enumerate(images):
        out.append(st.get_or_compute(adapter, img, params, progress=progress).load())
        emit(progress, "images", i + 1, len(images))
    return out
