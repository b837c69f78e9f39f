"""Fluctuation of generation curves (DESIGN.md section 1): the array kernel.

The fluctuation of a curve c over ascending timesteps t: keep the samples with t > t_b
(the sharp rise near t = 0 is cut off), slide a window of L consecutive samples over them
(stride 1), take the variance inside each window (population variance, ddof = 0) and
average over the windows:

    F(c) = mean_w Var(c[w : w + L]),  w = 0 .. n - L,  n = #{t > t_b}

The editor's metrics use it here; `analysis.fluctuation` adds the measured defaults and the
labelled map over a cube.

`fluctuation_se` propagates the curves' standard errors (a cube's `rate_se`) to F by the delta
method; `grid_power` measures how much of a map's variance sits on the period of the model's
downsampling (the 8-pixel grid of the shipped model, whose three 2x downsamplings leave a
period-8 pattern in its maps).
"""
from __future__ import annotations

import numpy as np

from .errors import WorkbenchError

__all__ = ["fluctuation", "fluctuation_grad", "fluctuation_se", "kept_timesteps", "grid_power", "grid_power_chance"]


def kept_timesteps(timesteps, t_b: float) -> np.ndarray:
    """Boolean mask (N,) of the timesteps strictly above t_b."""
    return np.asarray(timesteps) > t_b


def fluctuation(curves: np.ndarray, timesteps, *, window: int, t_b: float, axis: int = 0,
                normalise: bool = False) -> np.ndarray:
    """Windowed variance of curves, averaged over windows.

    curves: array with time along `axis` (N samples, indexed like `timesteps`, ascending t),
    e.g. a cube (N, H, W) with axis=0 or curves (P, N) with axis=-1; rates in the model's units.
    timesteps: (N,) the DDIM timesteps of the samples. window: L >= 2 samples. t_b: only t > t_b
    is used. normalise: divide each curve by its sum over the kept samples first (shape only).
    Returns the array without `axis`, float64, units rate^2 (or dimensionless if normalised).
    """
    c = np.asarray(curves, dtype=np.float64)
    ts = np.asarray(timesteps)
    c = np.moveaxis(c, axis, -1)
    if ts.ndim != 1 or ts.shape[0] != c.shape[-1]:
        raise WorkbenchError(f"{ts.shape[0] if ts.ndim == 1 else ts.shape} timesteps for curves of length "
                             f"{c.shape[-1]}: pass one timestep per curve sample")
    if not np.isfinite(c).all():
        raise WorkbenchError("the curves contain NaN or inf: recompute the cube (it may be incomplete or corrupt)")
    keep = kept_timesteps(ts, t_b)
    n = int(keep.sum())
    if int(window) < 2:
        raise WorkbenchError(f"window L={window} is too short: a variance needs L >= 2 samples")
    if n < window:
        raise WorkbenchError(f"only {n} timesteps lie above t_b={t_b}, fewer than the window L={window}: "
                             "lower t_b or L, or use more DDIM steps")
    c = c[..., keep]
    if normalise:
        s = c.sum(-1, keepdims=True)
        if (s <= 0).any():
            raise WorkbenchError("a curve sums to zero above t_b, so it cannot be normalised: use normalise=False")
        c = c / s
    win = np.lib.stride_tricks.sliding_window_view(c, int(window), axis=-1)  # (..., n-L+1, L)
    return win.var(axis=-1).mean(axis=-1)


def fluctuation_grad(curves: np.ndarray, timesteps, *, window: int, t_b: float, axis: int = 0,
                     normalise: bool = False) -> np.ndarray:
    """dF/dc: the gradient of `fluctuation` with respect to every curve sample, same shape as
    `curves` (0 at the samples with t <= t_b). Windowed variance: dF/dc_j = (2 / (W L)) sum over the
    W windows w containing j of (c_j - mean_w); normalised curves c/S add the chain rule through S."""
    fluctuation(curves, timesteps, window=window, t_b=t_b, axis=axis, normalise=normalise)  # checks
    c = np.moveaxis(np.asarray(curves, dtype=np.float64), axis, -1)
    keep = kept_timesteps(timesteps, t_b)
    ck = c[..., keep]
    S = ck.sum(-1, keepdims=True)
    cn = ck / S if normalise else ck
    n, L = cn.shape[-1], int(window)
    Wn = n - L + 1
    win = np.lib.stride_tricks.sliding_window_view(cn, L, axis=-1)  # (..., Wn, L)
    dev = win - win.mean(-1, keepdims=True)
    g = np.zeros_like(cn)
    for j in range(L):  # window w covers samples w .. w+L-1; sample w+j gets dev[..., w, j]
        g[..., j:j + Wn] += dev[..., :, j]
    g *= 2.0 / (Wn * L)
    if normalise:
        g = (g - (g * cn).sum(-1, keepdims=True)) / S
    out = np.zeros_like(c)
    out[..., keep] = g
    return np.moveaxis(out, -1, axis)


def fluctuation_se(curves: np.ndarray, curves_se: np.ndarray, timesteps, *, window: int, t_b: float,
                   axis: int = 0, normalise: bool = False, correlation: float = 0.0) -> np.ndarray:
    """Standard error of `fluctuation` from the curves' standard errors (same shape as `curves`), by
    the delta method: sqrt(g^T Sigma g) with g = `fluctuation_grad` and Sigma_jk = se_j se_k rho^|j-k|
    (rho = `correlation` between the errors of adjacent samples; 0 treats them as independent).
    Units of F; the array without `axis`."""
    g = np.moveaxis(fluctuation_grad(curves, timesteps, window=window, t_b=t_b, axis=axis, normalise=normalise),
                    axis, -1)
    se = np.moveaxis(np.asarray(curves_se, dtype=np.float64), axis, -1)
    if se.shape != g.shape:
        raise WorkbenchError(f"curves_se has shape {se.shape[:-1] + se.shape[-1:]} but the curves {g.shape}: "
                             "pass one standard error per curve sample")
    a = g * se
    if not correlation:
        return np.sqrt((a * a).sum(-1))
    n = a.shape[-1]
    R = float(correlation) ** np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    return np.sqrt(np.clip(np.einsum("...i,ij,...j->...", a, R, a), 0, None))


def grid_power_chance(n: int, period: int) -> float:
    """The expected `grid_power` of n independent values spread evenly over the period^2 phases: (G-1)/(n-1)."""
    return (period * period - 1) / max(1, n - 1)


def grid_power(values: np.ndarray, period: int = 8, *, ys=None, xs=None, log: bool = True) -> float:
    """Fraction of a map's variance that sits on a grid of `period` pixels (eta^2 of the phase
    (y mod period, x mod period)): sum over phases of n_phase (mean_phase - mean)^2 over the total
    sum of squares. For a full map (H, W) with H, W multiples of the period this is exactly the
    fraction of the centred map's spectral power at the harmonics of 1/period (Parseval). For
    scattered samples pass values (P,) with their pixel rows `ys` and columns `xs`. log: take the
    log of the (positive) values first (fluctuation maps are heavy-tailed). White noise gives about
    `grid_power_chance(n, period)`: compare with it."""
    v = np.asarray(values, dtype=np.float64)
    if ys is None:
        if v.ndim != 2:
            raise WorkbenchError(f"grid_power of a map needs a 2-D (H, W) array, got shape {v.shape}: "
                                 "or pass scattered values with ys= and xs=")
        H, W = v.shape
        yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
        v, ys, xs = v.ravel(), yy.ravel(), xx.ravel()
    ys, xs = np.asarray(ys).ravel(), np.asarray(xs).ravel()
    v = v.ravel()
    if log:
        if (v <= 0).any():
            raise WorkbenchError("grid_power(log=True) needs positive values: pass log=False")
        v = np.log(v)
    phase = (ys % period) * period + (xs % period)
    n = np.bincount(phase, minlength=period * period)
    sums = np.bincount(phase, weights=v, minlength=period * period)
    mu = v.mean()
    used = n > 0
    between = (n[used] * (sums[used] / n[used] - mu) ** 2).sum()
    total = ((v - mu) ** 2).sum()
    return float(between / total) if total > 0 else 0.0
