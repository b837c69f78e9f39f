"""What the Explore dashboard shows of a cube, as plain functions a notebook can call.

A clicked pixel's curve, optionally normalised to its shape (divided by its sum over t > t_b), with
its standard error divided by the same sum (the sum's own error ignored); the one-sided
significance of the fluctuation map (z of `analysis.fluctuation.significance_arrays`: how many of
its own standard errors a pixel's F lies above or below the image's median F); and the one name
the dashboards give F. The view calls exactly these, so a script gets the numbers it shows.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = ["Z_SIGNIFICANT", "SIDES", "curve_scale", "pixel_curve", "significant", "significance_text",
           "fluctuation_name"]

#: the significance masks keep pixels with z beyond this (one-sided: about 2.3 % by chance per side)
Z_SIGNIFICANT = 2.0
#: the two one-sided tests, with what each keeps
SIDES = {"higher": "F significantly higher than the image median",
         "lower": "F significantly lower than the image median"}


def curve_scale(curve: np.ndarray, timesteps: np.ndarray, t_b: float, normalise: bool) -> float:
    """What a raw curve (N,) is divided by: its sum over t > t_b when `normalise` and positive, else 1."""
    if not normalise:
        return 1.0
    s = float(np.asarray(curve, dtype=np.float64)[np.asarray(timesteps) > t_b].sum())
    return s if s > 0 else 1.0


def pixel_curve(ds: xr.Dataset, y: int, x: int, *, t_b: float, normalise: bool,
                with_se: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Grid pixel (y, x) of cube `ds`: (curve (N,), standard error (N,) or None) in float64, both divided
    by `curve_scale`. The SE is None when the cube has no `rate_se` or `with_se` is False."""
    raw = np.asarray(ds["rate"].values[:, y, x], dtype=np.float64)
    scale = curve_scale(raw, np.asarray(ds["timestep"].values), t_b, normalise)
    se = None
    if with_se and "rate_se" in ds:
        se = np.asarray(ds["rate_se"].values[:, y, x], dtype=np.float64) / scale
    return raw / scale, se


def significant(z: np.ndarray, side: str, threshold: float = Z_SIGNIFICANT) -> np.ndarray:
    """bool (H, W): pixels whose F is significantly higher (z > threshold) or lower (z < -threshold) than
    the image's median F (one-sided); NaN z (no SE) is never significant."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {sorted(SIDES)}, got {side!r}")
    z = np.asarray(z, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return z > threshold if side == "higher" else z < -threshold


def significance_text(side: str, threshold: float = Z_SIGNIFICANT) -> str:
    """'F significantly higher than the image median (one-sided z > 2)' and its 'lower' twin."""
    sign = ">" if side == "higher" else "<"
    bound = f"{threshold:g}" if side == "higher" else f"−{threshold:g}"
    return f"{SIDES[side]} (one-sided z {sign} {bound})"


def fluctuation_name(normalise: bool) -> str:
    """The one name of F in titles and colour bars: what its number is the variance of."""
    return "F = variance of the normalised curve" if normalise else "F = variance of the rate (rate²)"
