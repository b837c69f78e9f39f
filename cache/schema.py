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
Coordinates (groups written since labelled groups, and added on reading older groups by
`label_group`): `step` (t) the DDIM step index in generation order, `y`, `x` the model grid,
`image_id` the image names, `key`, `source` and `done` per slot, and `source_y_bounds` /
`source_x_bounds` (image_id, y|x, bound) the source-image pixels each model pixel covers. Every
variable and coordinate carries `long_name` and `description` (numeric ones `units`; `VAR_ATTRS`);
the probe statistics carry `role = "probe_statistics"` (docs/format.md).
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

from pathlib import PurePath

import numpy as np
import xarray as xr

from workbench.errors import WorkbenchError

__all__ = ["SCHEMA_VERSION", "READABLE_VERSIONS", "STORE_FORMAT", "DIMS", "VAR_RATE", "VAR_IMAGE", "VAR_ALPHA",
           "VAR_TRAJECTORY", "VAR_DONE", "VAR_RATE_SE", "VAR_SUM_S", "VAR_SUM_SS", "EXTRA_VARS", "NO_SE_NOTE",
           "COORD_T", "ATTR_KEYS", "PARAM_ATTRS", "PARAM_DEFAULTS", "SLOT_ATTRS", "check_cube", "COORD_STEP", "COORD_KEY",
           "COORD_SOURCE", "COORD_Y_BOUNDS", "COORD_X_BOUNDS", "BOUND_DIM", "ROLE_ATTR", "PROBE_ROLE", "VAR_ATTRS",
           "GROUP_ATTRS", "slot_labels", "label_coords", "label_group", "step_index", "source_bounds"]

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
#: the DDIM step index along t: 0 = the first generation step (the largest timestep) ... N-1 = the last
COORD_STEP = "step"
COORD_KEY = "key"
COORD_SOURCE = "source"
#: source-image pixel rows / columns [start, stop) each model-grid row / column covers, per slot
COORD_Y_BOUNDS = "source_y_bounds"
COORD_X_BOUNDS = "source_x_bounds"
BOUND_DIM = "bound"
#: attribute marking the variables that are not results but what an exact refinement needs
ROLE_ATTR = "role"
PROBE_ROLE = "probe_statistics"

_RATE_DESC = ("per-pixel generation rate: the length of the image of a unit variation of one model-grid pixel under "
              "the Jacobian named by the attribute rate_definition (h: U-Net encoder, eps: noise prediction, step: the "
              "reverse step, projected: h on the k leading right singular vectors), averaged over the model's channels "
              "(channel_rule), at each DDIM timestep of the image's deterministic trajectory")
#: CF-style attributes of every variable and coordinate (units only on numeric ones; "1" = dimensionless)
VAR_ATTRS: dict[str, dict] = {
    VAR_RATE: {"units": "1", "long_name": "generation rate", "description": _RATE_DESC,
               "coverage_content_type": "modelResult", "ancillary_variables": VAR_RATE_SE},
    VAR_RATE_SE: {"units": "1", "long_name": "standard error of the generation rate",
                  "description": "Monte-Carlo standard error of rate (Hutchinson: sd of the probes' estimates / sqrt K "
                                 "through the square root); 0 for exact cubes, NaN where the estimator gives none (rsvd)",
                  "coverage_content_type": "qualityInformation"},
    VAR_IMAGE: {"units": "1", "long_name": "model input image",
                "description": "the RGB image the model saw (the source image resized to the model's image size), "
                               "uint8 0-255", "coverage_content_type": "referenceInformation"},
    VAR_ALPHA: {"units": "1", "long_name": "signal fraction a_t",
                "description": "alphas_cumprod of the noise schedule at each timestep (a_t = alpha_t^2 / "
                               "(alpha_t^2 + sigma_t^2))", "coverage_content_type": "referenceInformation"},
    VAR_TRAJECTORY: {"units": "1", "long_name": "DDIM trajectory",
                     "description": "the deterministic DDIM-inversion states x_t on the model grid (model channels c)",
                     "coverage_content_type": "modelResult"},
    VAR_DONE: {"units": "1", "long_name": "slot complete flag",
               "description": "1 once every array of the slot is written (set last, fsynced); 0 or absent: the slot "
                              "is empty or was being written by a stopped writer and must be ignored",
               "flag_values": [0, 1], "flag_meanings": "incomplete complete"},
    VAR_SUM_S: {"units": "1", "long_name": "probe statistics: sum of squared VJP entries",
                "description": "sum over the K Hutchinson probes of the squared VJP entries per model channel; not a "
                               "result: what an exact merge with more probes needs (workbench cubes --refine-to)",
                "coverage_content_type": "auxiliaryInformation", ROLE_ATTR: PROBE_ROLE},
    VAR_SUM_SS: {"units": "1", "long_name": "probe statistics: sum of channel-pair products",
                 "description": "sum over the K probes of the products of the squared VJP entries of channel pairs cc "
                                "(upper triangle, row-major); not a result: what the standard error of a refined cube "
                                "needs", "coverage_content_type": "auxiliaryInformation", ROLE_ATTR: PROBE_ROLE},
    COORD_T: {"units": "1", "long_name": "DDIM timestep",
              "description": "the diffusion timestep of each sample (the model's training noise level index), "
                             "ascending: index 0 is the least noisy"},
    COORD_STEP: {"units": "1", "long_name": "DDIM step index",
                 "description": "generation order of each timestep: 0 = the first DDIM step (largest timestep, pure "
                                "noise) ... N-1 = the last step (smallest timestep); step = N - 1 - t index"},
    DIMS["y"]: {"units": "1", "long_name": "model-grid row",
                "description": "row of the model grid (latent rows for latent models); the source pixels it covers are "
                               "in source_y_bounds"},
    DIMS["x"]: {"units": "1", "long_name": "model-grid column",
                "description": "column of the model grid; the source pixels it covers are in source_x_bounds"},
    DIMS["image"]: {"long_name": "image name",
                    "description": "the image of each slot: its file stem (category/stem where stems repeat in the "
                                   "group)"},
    COORD_KEY: {"long_name": "cube key", "description": "content key of the slot's cube (SHA-256 of image bytes, "
                                                        "model and parameters; cache.keys.cube_key)"},
    COORD_SOURCE: {"long_name": "source image", "description": "path of the source image file when it was computed"},
    COORD_Y_BOUNDS: {"units": "1", "long_name": "source-image rows of each model-grid row",
                     "description": "[start, stop) in source-image pixel rows (fractional) that model-grid row y "
                                    "covers: y * scale * H0 / iy, (y + 1) * scale * H0 / iy (H0 the source height)"},
    COORD_X_BOUNDS: {"units": "1", "long_name": "source-image columns of each model-grid column",
                     "description": "[start, stop) in source-image pixel columns (fractional) that model-grid column x "
                                    "covers: x * scale * W0 / ix, (x + 1) * scale * W0 / ix"},
}
#: group-level attributes that say what the group is
GROUP_ATTRS = {"title": "genrate-workbench curve cubes",
               "description": "per-pixel generation rates of diffusion models, one slot per image along image_id; "
                              "format: docs/format.md of genrate-workbench",
               "probe_statistics": f"{VAR_SUM_S} {VAR_SUM_SS}"}

#: attributes that, with the image bytes, reproduce a cube
ATTR_KEYS = ("model_fingerprint", "model_name", "rate_definition", "estimator", "K", "k", "seed", "steps",
             "channel_rule", "scale", "source_image", "source_size", "package_version", "schema_version", "key",
             "complete")
#: the attributes written by `CubeParams.as_attrs()`
PARAM_ATTRS = ("rate_definition", "estimator", "K", "k", "seed", "steps", "channel_rule", "inversion_fixed_point")
#: the value a parameter attribute has in cubes written before it existed
PARAM_DEFAULTS = {"inversion_fixed_point": 0}
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


def step_index(n: int) -> np.ndarray:
    """The DDIM step index (n,) int64 of timesteps in ascending order: n-1 ... 0 (0 = the first generation step)."""
    return np.arange(int(n) - 1, -1, -1, dtype=np.int64)


def source_bounds(n: int, model_image: int, scale: int, source: int) -> np.ndarray:
    """(n, 2) float64 [start, stop) source pixels of each of the n model-grid rows (or columns): a model
    pixel covers `scale` pixels of the model image (`model_image` pixels long), which is the source
    (`source` pixels long) squeezed to that size."""
    f = float(scale) * float(source) / float(model_image)
    e = np.arange(int(n) + 1, dtype=np.float64) * f
    return np.stack([e[:-1], e[1:]], axis=1)


def slot_labels(slots: list[dict]) -> list[str]:
    """The image names of a group's slots (the `image_id` coordinate): the name, or `category/name` where
    names repeat in the group, or `name#i` where even that repeats."""
    names = [str(s.get("name") or PurePath(str(s.get("source_image") or s.get("key", ""))).stem) for s in slots]
    if len(set(names)) == len(names):
        return names
    out = []
    for s, n in zip(slots, names):
        parent = PurePath(str(s.get("source_image", ""))).parent.name
        out.append(f"{parent}/{n}" if names.count(n) > 1 and parent else n)
    seen: dict[str, int] = {}
    for i, n in enumerate(out):
        if out.count(n) > 1:
            seen[n] = seen.get(n, 0) + 1
            out[i] = f"{n}#{seen[n]}"
    return out


def label_coords(slots: list[dict], *, n_t: int, shape: tuple[int, int], image_shape: tuple[int, int],
                 scale: int) -> dict[str, tuple]:
    """The label coordinates of a group (all but `timestep` and `done`): name -> (dims, values)."""
    D = DIMS
    H, W = (int(v) for v in shape)
    iy, ix = (int(v) for v in image_shape)
    sizes = [[int(v) for v in (s.get("source_size") or [iy, ix])][:2] for s in slots]
    sizes = [sz if len(sz) == 2 and min(sz) > 0 else [iy, ix] for sz in sizes]
    return {
        COORD_STEP: ((D["t"],), step_index(n_t)),
        D["y"]: ((D["y"],), np.arange(H, dtype=np.int64)),
        D["x"]: ((D["x"],), np.arange(W, dtype=np.int64)),
        D["image"]: ((D["image"],), np.array(slot_labels(slots), dtype=object)),
        COORD_KEY: ((D["image"],), np.array([str(s.get("key", "")) for s in slots], dtype=object)),
        COORD_SOURCE: ((D["image"],), np.array([str(s.get("source_image", "")) for s in slots], dtype=object)),
        COORD_Y_BOUNDS: ((D["image"], D["y"], BOUND_DIM),
                         np.stack([source_bounds(H, iy, scale, h0) for h0, _ in sizes])),
        COORD_X_BOUNDS: ((D["image"], D["x"], BOUND_DIM),
                         np.stack([source_bounds(W, ix, scale, w0) for _, w0 in sizes])),
    }


def label_group(ds: xr.Dataset) -> xr.Dataset:
    """A multi-image group Dataset with every label coordinate and CF attribute (docs/format.md): groups
    written before labels get them here, from the group attribute `slots`, so that old and new groups
    read alike. Nothing is read from disk; labels already present are kept."""
    D = DIMS
    slots = ds.attrs.get("slots")
    if not isinstance(slots, list) or VAR_RATE not in ds or D["image"] not in ds.dims:
        return ds
    missing = {}
    scale = int(ds.attrs.get("scale", 1) or 1)
    coords = label_coords(slots, n_t=ds.sizes[D["t"]], shape=(ds.sizes[D["y"]], ds.sizes[D["x"]]),
                          image_shape=(ds.sizes[D["image_y"]], ds.sizes[D["image_x"]]), scale=scale)
    for name, (dims, values) in coords.items():
        if name not in ds.variables and len(values) == ds.sizes[dims[0]]:
            missing[name] = (dims, values)
    out = ds.assign_coords(missing) if missing else ds
    if VAR_DONE in out.data_vars:
        out = out.set_coords(VAR_DONE)
    for name, attrs in VAR_ATTRS.items():
        if name in out.variables:
            for k, v in attrs.items():
                if k != "ancillary_variables" or v in out.variables:
                    out[name].attrs.setdefault(k, v)
    for k, v in GROUP_ATTRS.items():
        out.attrs.setdefault(k, v)
    return out


def value_problem(var: str, values: np.ndarray) -> str | None:
    """Why `values` of per-slot array `var` cannot be a cube's (None when they can)."""
    v = np.asarray(values)
    if var == VAR_RATE:
        if not np.isfinite(v).all():
            return "it holds NaN/inf rates"
        if (v < 0).any():
            return "it holds negative rates"
    elif var == VAR_RATE_SE:  # NaN = no standard error (rSVD, cubes stored without one)
        if np.isinf(v).any():
            return "it holds infinite standard errors"
        if (v < 0).any():
            return "it holds negative standard errors"
    elif var in (VAR_SUM_S, VAR_SUM_SS):
        if not np.isfinite(v).all():
            return "it holds NaN/inf probe statistics"
        if var == VAR_SUM_S and (v < 0).any():
            return "it holds negative sums of squares"
    return None
