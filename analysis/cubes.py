"""Curve cubes for analysis: compute one directly with the engine, or open them from a store.

Until (and beside) `cache.store.CubeStore`, `compute_cube` builds the same `xarray.Dataset`
the cache schema describes (`rate (t, y, x)` with coordinate `timestep`, `image (iy, ix, rgb)`,
`alpha (t)`, attrs incl. `source_image`, `source_size`) from `workbench.ddim.invert` +
`workbench.estimators.rate_cube`. `open_cubes(path)` yields (name, Dataset) pairs from a
`CubeStore` directory, a folder of `*.zarr` cubes written by `save_cube`, or one `.zarr` cube.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import xarray as xr

from workbench.errors import WorkbenchError

__all__ = ["compute_cube", "save_cube", "open_cube", "open_cubes", "cube_name", "cubes_for", "params_tag"]


def compute_cube(adapter, image, *, definition: str = "h", estimator: str = "hutchinson", K: int = 32,
                 seed: int = 0, steps: int = 50, channel: int | None = None,
                 progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
    """Invert `image` (path or PIL) and estimate every pixel's rate at every DDIM timestep.

    Returns a Dataset with `rate` (t, y, x) float32 (model grid, t ascending, coordinate
    `timestep`), `alpha` (t), `image` (iy, ix, rgb) uint8 at the model's image size, and the
    cache schema's attributes (`source_image`, `source_size` = [H0, W0], estimator, K, ...).
    """
    import torch
    from cache import schema
    from workbench.images import read_image, to_uint8
    from workbench.estimators import rate_cube
    from workbench.pipeline import prepare_image
    from workbench.rates import RateSpec

    pil = read_image(image) if not hasattr(image, "convert") else image.convert("RGB")
    prep = prepare_image(adapter, pil, steps=steps)
    spec = RateSpec(definition, k=K, channel=channel)
    cube = rate_cube(adapter, prep.trajectory, spec, estimator=estimator, K=K, seed=seed, progress=progress)
    if not torch.isfinite(cube).all():
        raise WorkbenchError("the rate cube has NaN/inf values: check the model weights and --dtype (use float32)")
    sched = prep.trajectory.schedule
    D = schema.DIMS
    ds = xr.Dataset(
        {schema.VAR_RATE: ((D["t"], D["y"], D["x"]), cube.numpy().astype(np.float32)),
         schema.VAR_ALPHA: ((D["t"],), sched.alphas.double().cpu().numpy()),
         schema.VAR_IMAGE: ((D["image_y"], D["image_x"], D["rgb"]), to_uint8(prep.pixels))},
        coords={schema.COORD_T: ((D["t"],), sched.timesteps.cpu().numpy().astype(np.int64))},
        attrs={"model_fingerprint": adapter.fingerprint(), "model_name": adapter.name, "rate_definition": definition,
               "estimator": estimator, "K": K, "k": K, "seed": seed, "steps": steps,
               "channel_rule": "mean" if channel is None else f"channel {channel}", "scale": adapter.scale,
               "source_image": str(getattr(image, "filename", image)), "source_size": list(prep.source_size),
               "schema_version": schema.SCHEMA_VERSION, "complete": 1})
    return ds


def cube_name(ds: xr.Dataset) -> str:
    """The stem of the cube's source image (what exported maps are named after)."""
    src = ds.attrs.get("source_image") or ds.attrs.get("key") or "cube"
    return Path(str(src)).stem


def save_cube(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a cube Dataset as a Zarr directory (written to `path.partial`, then renamed)."""
    import shutil

    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
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


def open_cubes(path: str | Path) -> Iterator[tuple[str, xr.Dataset]]:
    """(name, Dataset) for every complete cube under `path` (a CubeStore, a folder of .zarr, or one cube)."""
    path = Path(path)
    if not path.exists():
        raise WorkbenchError(f"no such cube store or cube: {path} (check the path)")
    if path.suffix == ".zarr":
        ds = open_cube(path)
        yield cube_name(ds), ds
        return
    try:
        from cache.store import CubeStore  # the cache engineer's store, when present
    except ImportError:
        CubeStore = None
    zarrs = sorted(p for p in path.glob("*.zarr") if p.is_dir())
    nested = sorted(p for p in path.glob("*/*.zarr") if p.is_dir())  # cubes_for's store/<params_tag>/NAME.zarr
    if not zarrs and nested and CubeStore is None:
        for p in nested:
            yield p.stem, open_cube(p)
        return
    if CubeStore is not None and not zarrs:
        store = CubeStore(path)
        keys = list(store.keys())
        if not keys:
            raise WorkbenchError(f"{path} holds no cubes: compute some first (workbench cubes ...)")
        for key in keys:
            ds = store.open(key)
            yield cube_name(ds), ds
        return
    if not zarrs:
        raise WorkbenchError(f"{path} holds no .zarr cubes: pass a cube store folder or a .zarr cube")
    for p in zarrs:
        yield p.stem, open_cube(p)


def params_tag(definition: str = "h", estimator: str = "hutchinson", K: int = 32, seed: int = 0, steps: int = 50,
               channel: int | None = None) -> str:
    """A folder-safe name of the parameters a cube was computed with, e.g. 'h-hutchinson-K32-seed0-steps50'."""
    return f"{definition}-{estimator}-K{K}-seed{seed}-steps{steps}" + ("" if channel is None else f"-c{channel}")


def _matches(ds: xr.Dataset, adapter, p: dict) -> bool:
    a = ds.attrs
    return (a.get("complete", 0) == 1 and a.get("model_fingerprint") == adapter.fingerprint()
            and a.get("rate_definition") == p["definition"] and a.get("estimator") == p["estimator"]
            and int(a.get("K", -1)) == p["K"] and int(a.get("seed", -1)) == p["seed"]
            and int(a.get("steps", -1)) == p["steps"])


def cubes_for(images: list, adapter, *, store: str | Path, definition: str = "h", estimator: str = "hutchinson",
              K: int = 32, seed: int = 0, steps: int = 50, channel: int | None = None,
              progress: Callable[[int, int], None] | None = None,
              cube_progress: Callable[[int, int], None] | None = None) -> list[xr.Dataset]:
    """The cube of every image (paths), computed once and reused from `store`.

    With the cache package's `CubeStore` the store is content-addressed (image bytes, model, params);
    otherwise cubes live in `store/<params_tag>/<image stem>.zarr` and are reused when their attributes
    match the model fingerprint and parameters. `progress(done, total)` counts images,
    `cube_progress` the timesteps of the cube being computed.
    """
    p = dict(definition=definition, estimator=estimator, K=K, seed=seed, steps=steps, channel=channel)
    try:
        from cache.params import CubeParams
        from cache.store import CubeStore
    except ImportError:
        CubeStore = None
    out = []
    if CubeStore is not None:
        st = CubeStore(store)
        params = CubeParams(**p)
        for i, img in enumerate(images):
            out.append(st.get_or_compute(adapter, img, params, progress=cube_progress))
            if progress:
                progress(i + 1, len(images))
        return out
    folder = Path(store) / params_tag(**p)
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        dst = folder / (Path(img).stem + ".zarr")
        ds = None
        if dst.exists():
            try:
                ds = open_cube(dst)
            except WorkbenchError:
                ds = None
            if ds is not None and not _matches(ds, adapter, p):
                ds = None
        if ds is None:
            ds = compute_cube(adapter, img, progress=cube_progress, **p)
            save_cube(ds, dst)
        out.append(ds)
        if progress:
            progress(i + 1, len(images))
    return out
