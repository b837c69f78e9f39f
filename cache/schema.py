"""The one schema of a curve cube: dimension names, variables, attribute keys, versions.

A cube opens as an `xarray.Dataset` with
  rate   (t, y, x)           float32  per-pixel generation rate on the model grid, t ascending
  image  (iy, ix, rgb)       uint8    the image the model saw (image_size of the model)
  timestep (t)               int64    coordinate: the DDIM timesteps (t_N ... t_1)
  alpha  (t)                 float64  a_t = alphas_cumprod at those timesteps
  trajectory (t, c, y, x)    float32  optional: the DDIM states on the model grid
Multi-image stores add a leading `image_id` dimension to every variable.
"""
from __future__ import annotations

__all__ = ["SCHEMA_VERSION", "DIMS", "VAR_RATE", "VAR_IMAGE", "VAR_ALPHA", "VAR_TRAJECTORY", "COORD_T",
           "ATTR_KEYS"]

SCHEMA_VERSION = "1"
DIMS = {"t": "t", "y": "y", "x": "x", "image": "image_id", "image_y": "iy", "image_x": "ix", "rgb": "rgb",
        "channel": "c"}
VAR_RATE = "rate"
VAR_IMAGE = "image"
VAR_ALPHA = "alpha"
VAR_TRAJECTORY = "trajectory"
COORD_T = "timestep"

#: attributes that, with the image bytes, reproduce a cube
ATTR_KEYS = ("model_fingerprint", "model_name", "rate_definition", "estimator", "K", "k", "seed", "steps",
             "channel_rule", "scale", "source_image", "source_size", "package_version", "schema_version", "key",
             "complete")
