"""Compute one curve cube: DDIM-invert an image and estimate every pixel's rate at every timestep."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr
from PIL import Image

from workbench.errors import WorkbenchError

from . import schema
from .keys import cube_key, dtype_name, image_bytes, model_identity
from .params import CubeParams

__all__ = ["compute_cube", "cube_from_arrays", "package_version"]


def package_version() -> str:
    """The installed workbench version (recorded in every cube)."""
    import workbench

    return str(getattr(workbench, "__version__", "unknown"))


def cube_from_arrays(rate: np.ndarray, timesteps: np.ndarray, alphas: np.ndarray, image: np.ndarray, *,
                     attrs: dict) -> xr.Dataset:
    """Assemble a single-image cube Dataset from arrays: rate (N, H, W), timesteps (N,), alphas (N,),
    image (iy, ix, 3) uint8, and the attributes (`cache.schema.ATTR_KEYS`)."""
    D = schema.DIMS
    ds = xr.Dataset(
        {schema.VAR_RATE: ((D["t"], D["y"], D["x"]), np.asarray(rate, dtype=np.float32)),
         schema.VAR_ALPHA: ((D["t"],), np.asarray(alphas, dtype=np.float64)),
         schema.VAR_IMAGE: ((D["image_y"], D["image_x"], D["rgb"]), np.asarray(image, dtype=np.uint8))},
        coords={schema.COORD_T: ((D["t"],), np.asarray(timesteps, dtype=np.int64))},
        attrs=dict(attrs))
    return ds


def compute_cube(adapter, image: str | Path | Image.Image, params: CubeParams = CubeParams(), *,
                 progress: Callable[[int, int], None] | None = None) -> xr.Dataset:
    """Invert `image` (path or PIL) with `params.steps` DDIM steps and estimate every pixel's rate.

    Returns a single-image Dataset: `rate` (t, y, x) float32 on the model grid (t ascending,
    coordinate `timestep` int64), `alpha` (t) float64, `image` (iy, ix, rgb) uint8 at the model's
    image size, attributes per `cache.schema.ATTR_KEYS` (incl. `key`, `complete`=1).
    `progress(done, total)` is called after each timestep of the rate estimation.
    """
    import torch

    from workbench.estimators import rate_cube
    from workbench.images import read_image, to_rgb, to_uint8
    from workbench.pipeline import prepare_image
    from workbench.rates import RateSpec

    raw = image_bytes(image)
    pil = to_rgb(image) if isinstance(image, Image.Image) else read_image(image)
    prep = prepare_image(adapter, pil, steps=params.steps)
    spec = RateSpec(params.definition, k=params.K, channel=params.channel)
    try:
        cube = rate_cube(adapter, prep.trajectory, spec, estimator=params.estimator, K=params.K, seed=params.seed,
                         progress=progress)
    except ValueError as exc:  # e.g. a channel index the model does not have
        raise WorkbenchError(str(exc)) from None
    if not torch.isfinite(cube).all():
        raise WorkbenchError("the rate cube has NaN/inf values: check the model weights and --dtype (use float32)")
    sched = prep.trajectory.schedule
    fp = adapter.fingerprint()
    source = getattr(image, "filename", "") if isinstance(image, Image.Image) else str(Path(image).resolve())
    attrs = {"model_fingerprint": fp, "model_name": str(getattr(adapter, "name", "model")),
             **params.as_attrs(), "scale": int(adapter.scale), "dtype": dtype_name(adapter),
             "source_image": str(source or ""),
             "source_size": [int(v) for v in prep.source_size], "package_version": package_version(),
             "schema_version": schema.SCHEMA_VERSION, "key": cube_key(raw, model_identity(adapter), params),
             "complete": 1}
    return cube_from_arrays(cube.cpu().numpy(), sched.timesteps.cpu().numpy(), sched.alphas.double().cpu().numpy(),
                            to_uint8(prep.pixels), attrs=attrs)
