"""Fluctuation of generation curves (DESIGN.md section 1): the array kernel.

The fluctuation of a curve c over ascending timesteps t: keep the samples with t > t_b
(the sharp rise near t = 0 is cut off), slide a window of L consecutive samples over them
(stride 1), take the variance inside each window (population variance, ddof = 0) and
average over the windows:

    F(c) = mean_w Var(c[w : w + L]),  w = 0 .. n - L,  n = #{t > t_b}

The editor's metrics use it here; `analysis.fluctuation` adds the measured defaults and the
labelled map over a cube.
"""
from __future__ import annotations

import numpy as np

from .errors import WorkbenchError

__all__ = ["fluctuation", "kept_timesteps"]


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
