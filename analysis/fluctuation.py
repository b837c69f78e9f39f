"""Fluctuation of generation curves (DESIGN.md section 1), in two layers.

The fluctuation of a curve c over ascending timesteps t: keep the samples with t > t_b
(the sharp rise near t = 0 is cut off), slide a window of L consecutive samples over them
(stride 1), take the variance inside each window (population variance, ddof = 0) and
average over the windows:

    F(c) = mean_w Var(c[w : w + L]),  w = 0 .. n - L,  n = #{t > t_b}

`fluctuation` is the array kernel (any array, time along `axis`); `fluctuation_map` is the
labelled wrapper over a cube's `rate (t, y, x)` DataArray, returning a (y, x) map whose
attributes record `window`, `t_b` and `normalise`.

`fluctuation_significance` adds, from the cube's `rate_se`, each pixel's own uncertainty
(delta method, `workbench.fluctuation.fluctuation_se`) and a z-score of its departure from the
map's median: z = (F - median F) / se(F), with a two-sided normal p-value. `grid_power` is the
fraction of a map's variance on the model's downsampling grid (8 px on the shipped model).

`curve="accumulated"` (on `fluctuation` and `fluctuation_map`) takes the fluctuation of the accumulated
curve instead of the per-step one (workbench.curve_kinds: the running integral of the rate over the
generation with the DDIM step widths).
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from workbench.curve_kinds import curve_of
from workbench.errors import WorkbenchError
from workbench.fluctuation import fluctuation as _fluctuation, fluctuation_se as _fluctuation_se
from workbench.fluctuation import grid_power, grid_power_chance, kept_timesteps

__all__ = ["DEFAULT_WINDOW", "DEFAULT_T_B", "DEFAULT_NORMALISE", "SE_CORRELATION", "fluctuation", "fluctuation_map",
           "kept_timesteps", "fluctuation_significance", "significance_arrays", "grid_power", "grid_power_chance",
           "error_correlation"]

#: Defaults chosen by measurement (README.md, "Choosing L and t_b"): `workbench experiment tune
#: --images dev:17` swept L in {3,5,8,12,20} x t_b in {0,...,600} x normalise on 17 OSIE *training* images
#: (never the 50 held-out ones) with the shipped model, rate h, Hutchinson K=32, 50 steps, and kept the best
#: mean AUC-Judd of the fluctuation map: L=3, t_b=0, curves normalised (0.494 +- 0.016; every setting was at
#: or below chance, so the choice matters little on this model).
DEFAULT_WINDOW = 3
DEFAULT_T_B = 0
DEFAULT_NORMALISE = True

#: correlation of the rate errors of adjacent timesteps assumed by the significance (the same probes
#: serve every timestep, so errors are positively correlated; 0 = independent, the conservative choice
#: for the normalised fluctuation). Measured by `python -m bench.bench_estimators` (docs/estimators.md).
SE_CORRELATION = 0.0
#: a cube variable's CF attributes describe the rate, not a map derived from it
_CF = ("units", "long_name", "description", "coverage_content_type", "ancillary_variables", "role")


def fluctuation(curves: np.ndarray, timesteps, *, window: int = DEFAULT_WINDOW, t_b: float = DEFAULT_T_B,
                axis: int = 0, normalise: bool = DEFAULT_NORMALISE, curve: str = "rate") -> np.ndarray:
    """`workbench.fluctuation.fluctuation` with the measured defaults: per-step curves with time along
    `axis` (indexed like `timesteps`, ascending t) -> the array without `axis`, float64. `curve`:
    'rate' (the per-step curves as given) or 'accumulated' (their running integral first)."""
    c = curve_of(curve, curves, timesteps, axis=axis) if curve != "rate" else curves
    return _fluctuation(c, timesteps, window=window, t_b=t_b, axis=axis, normalise=normalise)


def fluctuation_map(rate, timesteps=None, window: int = DEFAULT_WINDOW, t_b: float = DEFAULT_T_B, *,
                    normalise: bool = DEFAULT_NORMALISE, dim: str = "t", curve: str = "rate"):
    """Fluctuation map of a cube.

    rate: an `xarray.DataArray` (t, y, x) with coordinate `timestep` (a cube's `rate`), or an
    array (N, H, W) with `timesteps` (N,). curve: 'rate' or 'accumulated' (module docstring).
    Returns a DataArray (y, x) with attrs `window`, `t_b`, `normalise`, `curve` (or an (H, W)
    ndarray for array input).
    """
    if isinstance(rate, xr.DataArray):
        ts = np.asarray(rate["timestep"].values if timesteps is None else timesteps)
        out = xr.apply_ufunc(fluctuation, rate, kwargs=dict(timesteps=ts, window=window, t_b=t_b, axis=-1,
                                                            normalise=normalise, curve=curve),
                             input_core_dims=[[dim]], dask="parallelized", output_dtypes=[np.float64])
        out.name = "fluctuation"
        out.attrs.update(**{k: v for k, v in rate.attrs.items() if isinstance(v, (str, int, float)) and k not in _CF},
                         window=int(window), t_b=float(t_b), normalise=int(bool(normalise)), curve=str(curve),
                         long_name=f"fluctuation of the {'accumulated' if curve == 'accumulated' else 'per-step'} "
                                   "curve", units="1")
        return out
    if timesteps is None:
        raise WorkbenchError("fluctuation_map of a plain array needs its timesteps: pass timesteps=")
    return fluctuation(rate, timesteps, window=window, t_b=t_b, axis=0, normalise=normalise, curve=curve)


def significance_arrays(rate: np.ndarray, rate_se: np.ndarray, timesteps, *, window: int = DEFAULT_WINDOW,
                        t_b: float = DEFAULT_T_B, normalise: bool = DEFAULT_NORMALISE,
                        correlation: float = SE_CORRELATION, axis: int = 0) -> dict[str, np.ndarray]:
    """Array kernel of `fluctuation_significance`: rate and rate_se (N, H, W) with time on `axis` ->
    {"fluctuation", "fluctuation_se", "z", "p_value"}, each (H, W) float64."""
    from scipy.stats import norm

    F = fluctuation(rate, timesteps, window=window, t_b=t_b, axis=axis, normalise=normalise)
    se = _fluctuation_se(rate, rate_se, timesteps, window=window, t_b=t_b, axis=axis, normalise=normalise,
                         correlation=correlation)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (F - np.median(F)) / se
    return {"fluctuation": F, "fluctuation_se": se, "z": z, "p_value": 2 * norm.sf(np.abs(z))}


def fluctuation_significance(rate, rate_se, timesteps=None, window: int = DEFAULT_WINDOW, t_b: float = DEFAULT_T_B,
                             *, normalise: bool = DEFAULT_NORMALISE, correlation: float = SE_CORRELATION,
                             dim: str = "t"):
    """Fluctuation map with its uncertainty and significance.

    rate, rate_se: a cube's `rate` and `rate_se` DataArrays (t, y, x) (timestep coordinate), or arrays
    (N, H, W) with `timesteps`. Per pixel: `fluctuation` F, its standard error `fluctuation_se` (delta
    method through the windowed variance and the normalisation, adjacent-timestep error correlation
    `correlation`), `z` = (F - median F) / se (how many of its own SEs a pixel sits above (+) or below
    (-) the image's typical fluctuation) and `p_value` (two-sided, normal). Returns an
    `xarray.Dataset` (y, x) with attrs window, t_b, normalise, correlation (a dict of (H, W) arrays
    for array input). |z| > 2 marks the pixels whose fluctuation the estimate resolves.
    """
    kw = dict(window=window, t_b=t_b, normalise=normalise, correlation=correlation)
    if isinstance(rate, xr.DataArray):
        ts = np.asarray(rate["timestep"].values if timesteps is None else timesteps)
        r = rate.transpose(dim, ...)
        se = rate_se.transpose(dim, ...)
        out = significance_arrays(np.asarray(r.values), np.asarray(se.values), ts, axis=0, **kw)
        coords = {k: v for k, v in r.coords.items() if dim not in v.dims and k != "timestep"}
        ds = xr.Dataset({k: (r.dims[1:], v) for k, v in out.items()}, coords=coords)
        ds.attrs.update(window=int(window), t_b=float(t_b), normalise=int(bool(normalise)),
                        correlation=float(correlation))
        return ds
    if timesteps is None:
        raise WorkbenchError("fluctuation_significance of plain arrays needs their timesteps: pass timesteps=")
    return significance_arrays(np.asarray(rate), np.asarray(rate_se), timesteps, axis=0, **kw)


def error_correlation(rate_a: np.ndarray, rate_b: np.ndarray, se_a: np.ndarray, se_b: np.ndarray, *,
                      axis: int = 0) -> float:
    """Lag-1 correlation of the rate errors between adjacent timesteps, from two independent halves
    of the probes (e.g. the split halves of `--until-stable`): arrays (N, H, W) with time on `axis`.
    The half difference d = a - b has the errors' correlation structure; standardised by its SE
    sqrt(se_a^2 + se_b^2), the estimate is sum d_t d_t+1 / sqrt(sum d_t^2 sum d_t+1^2) over pixels and
    timesteps. Pass it as `correlation=` to `fluctuation_significance` (an AR(1) model of the errors)."""
    a, b = (np.moveaxis(np.asarray(v, dtype=np.float64), axis, 0) for v in (rate_a, rate_b))
    sa, sb = (np.moveaxis(np.asarray(v, dtype=np.float64), axis, 0) for v in (se_a, se_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (a - b) / np.sqrt(sa ** 2 + sb ** 2)
    z = np.where(np.isfinite(z), z, 0.0).reshape(z.shape[0], -1)
    x, y = z[:-1], z[1:]
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else 0.0
