"""The one schema of a curve cube: dimension names, variables, attribute keys, versions.

A single-image cube opens as an `xarray.Dataset` with
  rate   (t, y, x)           float32  per-pixel generation rate on the model grid, t ascending
  image  (iy, ix, rgb)       uint8    the image the model saw (image_size of the model)
  timestep (t)               int64    coordinate: the DDIM timesteps (t_N ... t_1)
  alpha  (t)                 float64  a_t = alphas_cumprod at those timesteps
  trajectory (t, c, y, x)    float32  optional: the DDIM states on the model grid
  rate_se (t, y, x)          float32  standard error of `rate` (schema >= 3; NaN where the estimator gives
                                      none: rsvd; 0 for exact)
  probe_sum_s (t, c, y, x)   float64  Hutchinson cubes (schema >= 3): sum over the K probes of the squared
  probe_sum_ss (t, cc, y, x) float64  VJP entries and of their channel-pair products (workbench.uncertainty
                                      .ProbeStats): what an exact merge with more probes needs (`--refine-to`)
and the attributes `ATTR_KEYS` (with the image bytes, they reproduce the cube), plus `probe_first`
(index of the first probe) on cubes with probe statistics. A cube of an older schema opens without
`rate_se` and with the attribute `note` saying so.

On disk (see `cache.slots`), cubes live in multi-image groups: `rate`, `image` (and
`trajectory`) gain a leading `image_id` dimension, one preallocated slot per image; a
`done (image_id)` uint8 flag is set only after a slot is fully written. `timestep` and
`alpha` are shared by the group (one model, one schedule). Per-slot attributes (key,
source_image, source_size, name) are listed in the group attribute `slots`.
"""
from __future__ import annotations

import xarray as xr

from workbench.errors import WorkbenchError

__all__ = ["SCHEMA_VERSION", "READABLE_VERSIONS", "STORE_FORMAT", "DIMS", "VAR_RATE", "VAR_IMAGE", "VAR_ALPHA",
           "VAR_TRAJECTORY", "VAR_DONE", "VAR_RATE_SE", "VAR_SUM_S", "VAR_SUM_SS", "EXTRA_VARS", "NO_SE_NOTE",
           "COORD_T", "ATTR_KEYS", "PARAM_ATTRS", "SLOT_ATTRS", "check_cube"]

#: 1: the first layout; 2: CRC32C checksums on every chunk, every chunk of a slot written (cache.integrity);
#: 3: rate_se, and the probe statistics of Hutchinson cubes (refinable)
SCHEMA_VERSION = "3"
#: versions this workbench reads (stores and groups of older versions stay readable: 1 unprotected, 1-2 without SE)
READABLE_VERSIONS = ("1", "2", "3")
#: the `format` entry of a store's `store.json` (what makes a folder a cube store)
STORE_FORMAT = "genrate-workbench cube store"
DIMS = {"t": "t", "y": "y", "x": "x", "image": "image_id", "image_y": "iy", "image_x": "ix", "rgb": "rgb",
        "channel": "c", "pair": "cc"}
VAR_RATE = "rate"
VAR_IMAGE = "image"
VAR_ALPHA = "alpha"
VAR_TRAJECTORY = "trajectory"
VAR_DONE = "done"
VAR_RATE_SE = "rate_se"
VAR_SUM_S = "probe_sum_s"
VAR_SUM_SS = "probe_sum_ss"
#: per-slot variables besides rate and image, in the order they are written
EXTRA_VARS = (VAR_RATE_SE, VAR_SUM_S, VAR_SUM_SS, VAR_TRAJECTORY)
#: on a cube opened without rate_se
NO_SE_NOTE = ("written before standard errors (cube schema < 3): no rate_se; recompute the cube (workbench cubes "
              "into a new store) to get them")
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
