"""The one schema of a curve cube: dimension names, variables, attribute keys, versions.

A single-image cube opens as an `xarray.Dataset` with
  rate   (t, y, x)           float32  per-pixel generation rate on the model grid, t ascending
  image  (iy, ix, rgb)       uint8    the image the model saw (image_size of the model)
  timestep (t)               int64    coordinate: the DDIM timesteps (t_N ... t_1)
  alpha  (t)                 float64  a_t = alphas_cumprod at those timesteps
  trajectory (t, c, y, x)    float32  optional: the DDIM states on the model grid
and the attributes `ATTR_KEYS` (with the image bytes, they reproduce the cube).

On disk (see `cache.slots`), cubes live in multi-image groups: `rate`, `image` (and
`trajectory`) gain a leading `image_id` dimension, one preallocated slot per image; a
`done (image_id)` uint8 flag is set only after a slot is fully written. `timestep` and
`alpha` are shared by the group (one model, one schedule). Per-slot attributes (key,
source_image, source_size, name) are listed in the group attribute `slots`.
"""
from __future__ import annotations

import xarray as xr

from workbench.errors import WorkbenchError

__all__ = ["SCHEMA_VERSION", "READABLE_VERSIONS", "STORE_FORMAT", "DIMS", "VAR_RATE", "VAR_IMAGE", "VAR_ALPHA", "VAR_TRAJECTORY",
           "VAR_DONE", "COORD_T", "ATTR_KEYS", "PARAM_ATTRS", "SLOT_ATTRS", "check_cube"]

#: 1: the first layout; 2: CRC32C checksums on every chunk, every chunk of a slot written (cache.integrity)
SCHEMA_VERSION = "2"
#: versions this workbench reads (stores and groups of older versions stay readable, unprotected)
READABLE_VERSIONS = ("1", "2")
#: the `format` entry of a store's `store.json` (what makes a folder a cube store)
STORE_FORMAT = "genrate-workbench cube store"
DIMS = {"t": "t", "y": "y", "x": "x", "image": "image_id", "image_y": "iy", "image_x": "ix", "rgb": "rgb",
        "channel": "c"}
VAR_RATE = "rate"
VAR_IMAGE = "image"
VAR_ALPHA = "alpha"
VAR_TRAJECTORY = "trajectory"
VAR_DONE = "done"
COORD_T = "timestep"

#: attributes that, with the image bytes, reproduce a cube
ATTR_KEYS = ("model_fingerprint", "model_name", "rate_definition", "estimator", "K", "k", "seed", "steps",
             "channel_rule", "scale", "source_image", "source_size", "package_version", "schema_version", "key",
             "complete")
#: the attributes written by `CubeParams.as_attrs()`
PARAM_ATTRS = ("rate_definition", "estimator", "K", "k", "seed", "steps", "channel_rule")
#: attributes that differ between the images of one multi-image group
SLOT_ATTRS = ("key", "source_image", "source_size", "name")


def check_cube(ds: xr.Dataset) -> None:
    """Raise `WorkbenchError` unless `ds` is a single-image cube of this schema (rate (t, y, x), image, alpha)."""
    D = DIMS
    missing = [v for v in (VAR_RATE, VAR_IMAGE, VAR_ALPHA) if v not in ds.variables]
    missing += [] if COORD_T in ds.coords else [COORD_T]
    if missing:
        raise WorkbenchError(f"not a curve cube: missing {', '.join(missing)} (build cubes with "
                             "cache.build.compute_cube)")
    if ds[VAR_RATE].dims != (D["t"], D["y"], D["x"]):
        raise WorkbenchError(f"rate has dims {ds[VAR_RATE].dims}, expected ('t', 'y', 'x'): pass a single-image cube")
    if ds[VAR_IMAGE].dims != (D["image_y"], D["image_x"], D["rgb"]):
        raise WorkbenchError(f"image has dims {ds[VAR_IMAGE].dims}, expected ('iy', 'ix', 'rgb')")
    absent = [k for k in ("model_fingerprint", "key", "steps", "estimator") if k not in ds.attrs]
    if absent:
        raise WorkbenchError(f"the cube lacks the attributes {', '.join(absent)}: build it with "
                             "cache.build.compute_cube")
