"""Compute one curve cube: DDIM-invert an image and estimate every pixel's rate at every timestep."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr
from PIL import Image

from workbench.errors import WorkbenchError

from . import schema
from .keys import cube_attrs, image_bytes
from .params import CubeParams

__all__ = ["compute_cube", "cube_from_arrays", "estimate_cube", "probe_stats_of", "has_probe_stats"]


def cube_from_arrays(rate: np.ndarray, timesteps: np.ndarray, alphas: np.ndarray, image: np.ndarray, *,
                     attrs: dict, rate_se: np.ndarray | None = None, stats=None) -> xr.Dataset:
    """Assemble a single-image cube Dataset from arrays: rate (N, H, W), timesteps (N,), alphas (N,),
    image (iy, ix, 3) uint8, and the attributes (`cache.schema.ATTR_KEYS`); optionally `rate_se`
    (N, H, W) and the probe statistics `stats` (workbench.uncertainty.ProbeStats, sums (N, C|CC, H, W))."""
    D = schema.DIMS
    data = {schema.VAR_RATE: ((D["t"], D["y"], D["x"]), np.asarray(rate, dtype=np.float32)),
            schema.VAR_ALPHA: ((D["t"],), np.asarray(alphas, dtype=np.float64)),
            schema.VAR_IMAGE: ((D["image_y"], D["image_x"], D["rgb"]), np.asarray(image, dtype=np.uint8))}
    attrs = dict(attrs)
    if rate_se is not None:
        data[schema.VAR_RATE_SE] = ((D["t"], D["y"], D["x"]), np.asarray(rate_se, dtype=np.float32))
    if stats is not None:
        data[schema.VAR_SUM_S] = ((D["t"], D["channel"], D["y"], D["x"]), _numpy(stats.sum_s, np.float64))
        data[schema.VAR_SUM_SS] = ((D["t"], D["pair"], D["y"], D["x"]), _numpy(stats.sum_ss, np.float64))
        attrs["probe_first"] = int(stats.first)
    return xr.Dataset(data, coords={schema.COORD_T: ((D["t"],), np.asarray(timesteps, dtype=np.int64))}, attrs=attrs)


def _numpy(t, dtype) -> np.ndarray:
    return np.asarray(t.cpu().numpy() if hasattr(t, "cpu") else t, dtype=dtype)


def probe_stats_of(ds: xr.Dataset):
    """The probe statistics (workbench.uncertainty.ProbeStats) stored in a cube, or None (older schema,
    or an estimator other than hutchinson)."""
    import torch

    from workbench.uncertainty import ProbeStats

    if schema.VAR_SUM_S not in ds or schema.VAR_SUM_SS not in ds:
        return None
    return ProbeStats(K=int(ds.attrs["K"]), first=int(ds.attrs.get("probe_first", 0)),
                      sum_s=torch.from_numpy(np.asarray(ds[schema.VAR_SUM_S].values, dtype=np.float64)),
                      sum_ss=torch.from_numpy(np.asarray(ds[schema.VAR_SUM_SS].values, dtype=np.float64)))


def has_probe_stats(params: CubeParams) -> bool:
    """True when cubes of `params` carry probe statistics (Hutchinson, not the projected rate): refinable."""
    return params.estimator == "hutchinson" and params.definition != "projected"


def estimate_cube(adapter, trajectory, params: CubeParams, *, base=None,
                  progress: Callable[[int, int], None] | None = None):
    """(rate, rate_se, stats) of a trajectory: (N, H, W) float32 tensors and the probe statistics
    (None for estimators without them). Hutchinson cubes: rate and SE from the K probes'
    statistics (workbench.estimators.cube_rates_se); with `base` (the statistics of an earlier cube
    of the same image and parameters with fewer probes) only the missing probes run and merge
    exactly (`refine_cube_stats`). Other estimators: SE 0 for exact, NaN (unknown) otherwise."""
    import torch

    from workbench.estimators import cube_chunk, cube_rates_se, hutchinson_cube_stats, rate_cube, refine_cube_stats
    from workbench.rates import RateSpec

    spec = RateSpec(params.definition, k=params.K, channel=params.channel)
    try:
        if has_probe_stats(params):
            chunk = cube_chunk(adapter, trajectory.schedule, trajectory.states[0], spec, "hutchinson", params.K)
            if base is None:
                stats = hutchinson_cube_stats(adapter, trajectory, spec, K=params.K, seed=params.seed, chunk=chunk,
                                              progress=progress)
            else:
                stats = refine_cube_stats(adapter, trajectory, base, params.K, spec, seed=params.seed, chunk=chunk,
                                          progress=progress)
            r = cube_rates_se(stats, spec.channel)
            return r.rate.float(), r.rate_se.float(), stats
        cube = rate_cube(adapter, trajectory, spec, estimator=params.estimator, K=params.K, seed=params.seed,
                         progress=progress)
    except ValueError as exc:  # e.g. a channel index the model does not have
        raise WorkbenchError(str(exc)) from None
    se = torch.zeros_like(cube) if params.estimator == "exact" else torch.full_like(cube, float("nan"))
    return cube, se, None


def compute_cube(adapter, image: str | Path | Image.Image, params: CubeParams = CubeParams(), *,
                 progress: Callable[[int, int], None] | None = None, base: xr.Dataset | None = None) -> xr.Dataset:
    """Invert `image` (path or PIL) with `params.steps` DDIM steps and estimate every pixel's rate.

    Returns a single-image Dataset: `rate` and `rate_se` (t, y, x) float32 on the model grid (t
    ascending, coordinate `timestep` int64), `alpha` (t) float64, `image` (iy, ix, rgb) uint8 at the
    model's image size, for Hutchinson cubes the probe statistics, attributes per
    `cache.schema.ATTR_KEYS` (incl. `key`, `complete`=1). `base`: a stored cube of the same image,
    model and parameters but fewer probes (K < params.K) with probe statistics: only the missing
    probes are run and merged exactly (refinement; the result equals computing params.K at once).
    `progress(done, total)` is called after each timestep of the rate estimation.
    """
    import torch

    from workbench.images import read_image, to_rgb, to_uint8
    from workbench.pipeline import prepare_image

    raw = image_bytes(image)
    pil = to_rgb(image) if isinstance(image, Image.Image) else read_image(image)
    prep = prepare_image(adapter, pil, steps=params.steps)
    base_stats = None
    if base is not None:
        base_stats = probe_stats_of(base)
        if base_stats is None or not has_probe_stats(params) or int(base.attrs["K"]) > params.K:
            raise WorkbenchError("this cube cannot be refined (no probe statistics, or more probes than asked): "
                                 "compute it afresh")
    cube, se, stats = estimate_cube(adapter, prep.trajectory, params, base=base_stats, progress=progress)
    if not torch.isfinite(cube).all():
        raise WorkbenchError("the rate cube has NaN/inf values: check the model weights and --dtype (use float32)")
    sched = prep.trajectory.schedule
    attrs = cube_attrs(adapter, params, raw=raw, source=image, source_size=prep.source_size)
    return cube_from_arrays(cube.cpu().numpy(), sched.timesteps.cpu().numpy(), sched.alphas.double().cpu().numpy(),
                            to_uint8(prep.pixels), attrs=attrs, rate_se=se.cpu().numpy(), stats=stats)
