"""Per-pixel features of generation curves: what a readout may use to predict fixations.

From a cube's rate (N, H, W) over ascending timesteps t (N,), every feature is an (H, W) map on the
model grid:

  fluct_L{L}           log of the fluctuation (`analysis.fluctuation`, curves normalised to sum 1,
                       t > t_b) with window L, for several L
  mean_t{a}-{b}        log of the mean rate over a <= t < b (thirds of the schedule by default)
  log_mean             log of the mean rate over all t
  peak_t               the timestep of the curve's maximum
  peak_height          log of the curve's maximum over its mean (how peaked)
  curvature            mean |second difference| of the normalised curve (per unit t^2, x 1e6)
  late_early           log(mean rate over t >= t_mid / mean rate over t < t_mid), t_mid = the median t

`timestep_maps` gives the log rate map at every timestep (for the bits-vs-t curve). Logs use
log(max(r, tiny)): rates are positive and roughly log-normal across pixels.

`curve="accumulated"` computes the same features on the accumulated curve (workbench.curve_kinds: the
running integral of the rate over the generation with the DDIM step widths) instead of the per-step
curve, without `peak_t` and `peak_height`: an accumulated curve is monotone, so its peak is always the
last step (the smallest timestep) and those maps would be constant.
"""
from __future__ import annotations

import numpy as np

from workbench.curve_kinds import check_kind, curve_of
from workbench.errors import WorkbenchError

from .fluctuation import DEFAULT_T_B, fluctuation

__all__ = ["curve_features", "timestep_maps", "DEFAULT_WINDOWS", "feature_names"]

DEFAULT_WINDOWS = (3, 5, 8, 12)
_TINY = 1e-30


def _check(rate, timesteps) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rate, dtype=np.float64)
    t = np.asarray(timesteps, dtype=np.float64)
    if r.ndim != 3 or t.shape != (r.shape[0],):
        raise WorkbenchError(f"curve features need rate (N, H, W) and timesteps (N,), got {r.shape} and {t.shape}")
    if r.shape[0] < 3:
        raise WorkbenchError(f"curve features need at least 3 timesteps, the cube has {r.shape[0]}")
    if not np.all(np.diff(t) > 0):
        raise WorkbenchError("the cube's timesteps must be strictly ascending")
    return r, t


def _ranges(t: np.ndarray, n: int = 3) -> list[tuple[float, float]]:
    edges = np.linspace(t.min(), t.max() + 1, n + 1)
    return [(float(np.floor(a)), float(np.floor(b))) for a, b in zip(edges[:-1], edges[1:])]


#: features left out of the accumulated curve's set (constant for a monotone curve)
_MONOTONE_CONSTANT = ("peak_t", "peak_height")


def feature_names(timesteps, *, windows=DEFAULT_WINDOWS, curve: str = "rate") -> list[str]:
    """The names `curve_features` returns for these timesteps (and curve kind), in order."""
    t = np.asarray(timesteps, dtype=np.float64)
    n_kept = int((t > DEFAULT_T_B).sum())
    names = [f"fluct_L{L}" for L in windows if 2 <= L <= n_kept]
    names += [f"mean_t{a:.0f}-{b:.0f}" for a, b in _ranges(t)]
    names += ["log_mean", "peak_t", "peak_height", "curvature", "late_early"]
    return names if check_kind(curve) == "rate" else [n for n in names if n not in _MONOTONE_CONSTANT]


def curve_features(rate, timesteps, *, windows=DEFAULT_WINDOWS, t_b: float = DEFAULT_T_B,
                   curve: str = "rate") -> dict[str, np.ndarray]:
    """All curve features of a cube (module docstring): rate (N, H, W) per-step, timesteps (N,) ->
    name -> (H, W) float64 map, in a fixed order; `curve` 'rate' or 'accumulated' (features of the
    accumulated curve, without peak_t and peak_height)."""
    r, t = _check(rate, timesteps)
    if check_kind(curve) != "rate":
        r = curve_of(curve, r, t, axis=0)
    out = {}
    n_kept = int((t > t_b).sum())
    for L in windows:
        if 2 <= L <= n_kept:
            out[f"fluct_L{L}"] = np.log(np.maximum(fluctuation(r, t, window=L, t_b=t_b, axis=0, normalise=True),
                                                   _TINY))
    for a, b in _ranges(t):
        sel = (t >= a) & (t < b)
        out[f"mean_t{a:.0f}-{b:.0f}"] = np.log(np.maximum(r[sel].mean(0), _TINY))
    mean = np.maximum(r.mean(0), _TINY)
    out["log_mean"] = np.log(mean)
    out["peak_t"] = t[np.argmax(r, axis=0)]
    out["peak_height"] = np.log(np.maximum(r.max(0), _TINY) / mean)
    c = r / np.maximum(r.sum(0, keepdims=True), _TINY)
    d1 = np.diff(c, axis=0) / np.diff(t)[:, None, None]
    d2 = np.diff(d1, axis=0) / ((t[2:] - t[:-2]) / 2)[:, None, None]
    out["curvature"] = np.abs(d2).mean(0) * 1e6
    mid = float(np.median(t))
    late, early = r[t >= mid].mean(0), r[t < mid].mean(0)
    out["late_early"] = np.log(np.maximum(late, _TINY) / np.maximum(early, _TINY))
    if curve != "rate":
        for n in _MONOTONE_CONSTANT:
            del out[n]
    return out


def timestep_maps(rate, timesteps) -> tuple[np.ndarray, np.ndarray]:
    """The log rate map at every timestep: ((N, H, W) float64, timesteps (N,))."""
    r, t = _check(rate, timesteps)
    return np.log(np.maximum(r, _TINY)), t
