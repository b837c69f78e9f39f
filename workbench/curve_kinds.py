"""Curve kinds: the per-step generation curve and the accumulated curve (array kernels, NumPy only).

A cube holds the **per-step** curve r(t_i): the generation rate at each DDIM timestep, indexed
like the schedule (ascending t: index 0 = t_N, the least noisy; index N-1 = t_1, pure noise).

The **accumulated** curve (the revised paper's generation curve, "Varying Manifolds in Diffusion",
OpenReview 2025) is the running integral of the rate over the generation, in step order (from
the largest timestep down), with the DDIM step widths as the integration weights:

    A(t_i) = sum_{j >= i} r(t_j) * dt_j,    dt_j = t_j - t_{j-1}   (j >= 1),   dt_0 = t_1 - t_0

a left Riemann sum: each generation step contributes its rate at the timestep it starts from
times its width (the width of the last step, t_0 -> the clean sample, is the grid's spacing, as
diffusers' DDIM takes prev_timestep = t - T // steps). It is stored in the same ascending-t order
as the rate, so A at the largest timestep is the first step's contribution and A at the smallest
timestep is the whole integral. Units: rate x timesteps. It is non-decreasing in generation order,
so where the per-step curve shows *when* a pixel changes fast, the accumulated curve shows *how
much* it has changed by each step; its fluctuation measures departures from a steady build-up
rather than the jitter of the rate itself.
"""
from __future__ import annotations

import numpy as np

from .errors import WorkbenchError

__all__ = ["CURVE_KINDS", "check_kind", "step_widths", "accumulated", "accumulated_se", "curve_of"]

#: the curve kinds every curve reader offers ("rate" = the per-step curve stored in cubes)
CURVE_KINDS = ("rate", "accumulated")


def check_kind(kind: str) -> str:
    """`kind` if it is one of CURVE_KINDS, else a one-line WorkbenchError naming the choices."""
    if kind not in CURVE_KINDS:
        raise WorkbenchError(f"unknown curve kind {kind!r}: choose {' or '.join(CURVE_KINDS)}")
    return kind


def step_widths(timesteps) -> np.ndarray:
    """The DDIM step widths (N,) float64 of ascending timesteps (N,): dt_i = t_i - t_{i-1}, and dt_0 =
    t_1 - t_0 (the grid's spacing; a single timestep t_0 gets max(t_0, 1))."""
    t = np.asarray(timesteps, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise WorkbenchError(f"step widths need a 1-D array of timesteps, got shape {t.shape}")
    if t.size == 1:
        return np.array([max(float(t[0]), 1.0)])
    d = np.diff(t)
    if not (d > 0).all():
        raise WorkbenchError("the timesteps must be strictly ascending (t_N ... t_1) to integrate over them")
    return np.concatenate([d[:1], d])


def accumulated(curves, timesteps, *, axis: int = -1) -> np.ndarray:
    """The accumulated curve of per-step curves (module docstring): same shape as `curves` (time on
    `axis`, indexed like `timesteps`, ascending t), float64; A[i] = sum_{j >= i} r[j] dt_j."""
    c = np.moveaxis(np.asarray(curves, dtype=np.float64), axis, -1)
    w = step_widths(timesteps)
    if c.shape[-1] != w.shape[0]:
        raise WorkbenchError(f"{w.shape[0]} timesteps for curves of length {c.shape[-1]}: pass one timestep per "
                             "curve sample")
    out = np.cumsum((c * w)[..., ::-1], axis=-1)[..., ::-1]
    return np.moveaxis(out, -1, axis)


def accumulated_se(curves_se, timesteps, *, axis: int = -1) -> np.ndarray:
    """Standard error of `accumulated` from the rates' standard errors: sum_{j >= i} se_j dt_j, the
    bound for fully correlated errors (a cube's probes serve every timestep, so its errors are
    positively correlated; independent errors would give the smaller sqrt(sum (se_j dt_j)^2))."""
    return accumulated(curves_se, timesteps, axis=axis)


def curve_of(kind: str, curves, timesteps, *, axis: int = -1) -> np.ndarray:
    """Per-step curves (time on `axis`) as curves of `kind`: 'rate' unchanged (float64), 'accumulated'
    integrated (`accumulated`)."""
    if check_kind(kind) == "rate":
        return np.asarray(curves, dtype=np.float64)
    return accumulated(curves, timesteps, axis=axis)
