"""Fluctuation of generation curves (DESIGN.md section 1), in two layers.

The fluctuation of a curve c over ascending timesteps t: keep the samples with t > t_b
(the sharp rise near t = 0 is cut off), slide a window of L consecutive samples over them
(stride 1), take the variance inside each window (population variance, ddof = 0) and
average over the windows:

    F(c) = mean_w Var(c[w : w + L]),  w = 0 .. n - L,  n = #{t > t_b}

`fluctuation` is the array kernel (any array, time along `axis`); `fluctuation_map` is the
labelled wrapper over a cube's `rate (t, y, x)` DataArray, returning a (y, x) map whose
attributes record `window`, `t_b` and `normalise`.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from workbench.errors import WorkbenchError
from workbench.fluctuation import fluctuation as _fluctuation, kept_timesteps

__all__ = ["DEFAULT_WINDOW", "DEFAULT_T_B", "DEFAULT_NORMALISE", "fluctuation", "fluctuation_map", "kept_timesteps"]

#: Defaults chosen by measurement (README.md, "Choosing L and t_b"): `workbench experiment tune
#: --images dev:17` swept L in {3,5,8,12,20} x t_b in {0,...,600} x normalise on 17 OSIE *training* images
#: (never the 50 held-out ones) with the shipped model, rate h, Hutchinson K=32, 50 steps, and kept the best
#: mean AUC-Judd of the fluctuation map: L=3, t_b=0, curves normalised (0.494 +- 0.016; every setting was at
#: or below chance, so the choice matters little on this model).
DEFAULT_WINDOW = 3
DEFAULT_T_B = 0
DEFAULT_NORMALISE = True


def fluctuation(curves: np.ndarray, timesteps, *, window: int = DEFAULT_WINDOW, t_b: float = DEFAULT_T_B,
                axis: int = 0, normalise: bool = DEFAULT_NORMALISE) -> np.ndarray:
    """`workbench.fluctuation.fluctuation` with the measured defaults: curves with time along `axis`
    (indexed like `timesteps`, ascending t) -> the array without `axis`, float64."""
    return _fluctuation(curves, timesteps, window=window, t_b=t_b, axis=axis, normalise=normalise)


def fluctuation_map(rate, timesteps=None, window: int = DEFAULT_WINDOW, t_b: float = DEFAULT_T_B, *,
                    normalise: bool = DEFAULT_NORMALISE, dim: str = "t"):
    """Fluctuation map of a cube.

    rate: an `xarray.DataArray` (t, y, x) with coordinate `timestep` (a cube's `rate`), or an
    array (N, H, W) with `timesteps` (N,). Returns a DataArray (y, x) with attrs
    `window`, `t_b`, `normalise` (or an (H, W) ndarray for array input).
    """
    if isinstance(rate, xr.DataArray):
        ts = np.asarray(rate["timestep"].values if timesteps is None else timesteps)
        out = xr.apply_ufunc(fluctuation, rate, kwargs=dict(timesteps=ts, window=window, t_b=t_b, axis=-1,
                                                            normalise=normalise),
                             input_core_dims=[[dim]], dask="parallelized", output_dtypes=[np.float64])
        out.name = "fluctuation"
        out.attrs.update(window=int(window), t_b=float(t_b), normalise=int(bool(normalise)),
                         **{k: v for k, v in rate.attrs.items() if isinstance(v, (str, int, float))})
        return out
    if timesteps is None:
        raise WorkbenchError("fluctuation_map of a plain array needs its timesteps: pass timesteps=")
    return fluctuation(rate, timesteps, window=window, t_b=t_b, axis=0, normalise=normalise)
