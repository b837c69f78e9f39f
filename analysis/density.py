"""Fixation densities on an analysis grid: fixation counts, the centre-bias density, and any
saliency map turned into a density with a few parameters fitted by maximum likelihood.

The grid. Every image is scored on one grid of `GRID = (48, 64)` equal-area cells spanning the whole
image (whatever its size; 12.5 px cells for OSIE's 800x600). Fixations are binned into cells by
their normalised position; maps are brought to the grid with `analysis.datasets.resize_map`.
Log-likelihoods relative to the uniform density (`analysis.infogain`) do not depend on the cell
area, so images of different sizes are comparable.

The centre bias (the baseline of the information gain). A Gaussian kernel density estimate of the
*training* images' fixations in normalised coordinates, mixed with a uniform density:

    q = (1 - eps) * blur_s(H) / sum(blur_s(H)) + eps / C,   H = histogram of training fixations

its bandwidth s (a fraction of the image side) and eps chosen by leave-images-out cross-validation
on the training images (Kümmerer et al. 2015 use the same kind of baseline).

A map as a density (`MapDensity`). For a map m on the grid, per image:

    z = standardise(blur_sigma(m))              (zero mean, unit sd over the image's cells)
    p = (1 - w) * softmax(alpha * z) + w * q     (q: the centre bias)

sigma (cells) from a small grid, alpha and w by maximum likelihood on training images only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.optimize import minimize
from scipy.special import logsumexp

from workbench.errors import WorkbenchError

from .datasets import resize_map
from .infogain import log_likelihood

__all__ = ["GRID", "fixation_counts", "to_grid", "standardise", "CentreBias", "fit_centre_bias",
           "MapDensity", "fit_map_density", "map_log_density"]

#: cells (rows, columns) of the analysis grid
GRID = (48, 64)


def fixation_counts(fixations: np.ndarray, grid: tuple[int, int] = GRID) -> np.ndarray:
    """Fixations per grid cell (h, w) float64 from a binary (or count) fixation map (H0, W0) at the
    image's resolution: pixel (y, x) falls in cell (floor(y h / H0), floor(x w / W0))."""
    f = np.asarray(fixations)
    if f.ndim != 2:
        raise WorkbenchError(f"a fixation map must be 2-D (H, W), got shape {f.shape}")
    h, w = grid
    H0, W0 = f.shape
    ys, xs = np.nonzero(f)
    weight = f[ys, xs].astype(np.float64)
    out = np.zeros((h, w), dtype=np.float64)
    np.add.at(out, ((ys * h) // H0, (xs * w) // W0), weight)
    return out


def to_grid(m: np.ndarray, grid: tuple[int, int] = GRID) -> np.ndarray:
    """A map (any 2-D size) on the analysis grid, float64 (`resize_map`: bilinear, antialiased)."""
    return resize_map(np.asarray(m, dtype=np.float32), grid).astype(np.float64)


def standardise(m: np.ndarray) -> np.ndarray:
    """(m - mean) / sd over all cells; a constant map gives zeros. float64, same shape."""
    a = np.asarray(m, dtype=np.float64)
    sd = a.std()
    return (a - a.mean()) / sd if sd > 1e-12 * max(1.0, float(np.abs(a).max())) else np.zeros_like(a)


def logsumexp_rows(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(a))) along `axis`, kept as a length-1 axis (stable; cheaper than scipy's for small arrays)."""
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return m + np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True))


def _blur(m: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_filter(m, sigma, mode="nearest") if sigma > 0 else m


# ------------------------------------------------------------------------------- centre bias
@dataclass(frozen=True)
class CentreBias:
    """A centre-bias density: the training fixations' normalised positions (u = row, v = column in
    [0, 1)) and counts, Gaussian bandwidth `bandwidth` (fraction of the side) and uniform weight `eps`."""

    points: np.ndarray  # (P, 3): u, v, count
    bandwidth: float
    eps: float

    def log_density(self, grid: tuple[int, int] = GRID) -> np.ndarray:
        """Natural-log cell probabilities (h, w) on `grid` (they sum to 1)."""
        return _kde_log_density(self.points, grid, self.bandwidth, self.eps)


def _points_of(counts: np.ndarray) -> np.ndarray:
    h, w = counts.shape
    ys, xs = np.nonzero(counts)
    return np.stack([(ys + 0.5) / h, (xs + 0.5) / w, counts[ys, xs]], 1).astype(np.float64)


def _kde_log_density(points: np.ndarray, grid: tuple[int, int], bandwidth: float, eps: float) -> np.ndarray:
    h, w = grid
    hist = np.zeros((h, w), dtype=np.float64)
    if len(points):
        iy = np.minimum((points[:, 0] * h).astype(np.int64), h - 1)
        ix = np.minimum((points[:, 1] * w).astype(np.int64), w - 1)
        np.add.at(hist, (iy, ix), points[:, 2])
    k = gaussian_filter(hist, (bandwidth * h, bandwidth * w), mode="constant")
    k = k / k.sum() if k.sum() > 0 else np.full_like(k, 1.0 / k.size)
    with np.errstate(divide="ignore"):
        return np.log((1 - eps) * k + eps / k.size)


def fit_centre_bias(train_counts: list[np.ndarray], *, bandwidths=(0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.14, 0.2),
                    eps_values=(0.0001, 0.001, 0.01, 0.05, 0.1, 0.2), folds: int = 5) -> CentreBias:
    """Fit the centre-bias KDE on training fixation counts (one (h, w) grid per image): bandwidth and
    eps maximise the mean per-image log-likelihood of held-out folds of images."""
    if len(train_counts) < 2:
        raise WorkbenchError("the centre bias needs fixations of at least 2 training images")
    grid = np.shape(train_counts[0])
    pts = [_points_of(np.asarray(c, dtype=np.float64)) for c in train_counts]
    k = min(folds, len(pts))
    fold = np.arange(len(pts)) % k
    best, best_ll = None, -np.inf
    for bw in bandwidths:
        for eps in eps_values:
            ll = []
            for f in range(k):
                rest = np.concatenate([p for p, g in zip(pts, fold) if g != f])
                lq = _kde_log_density(rest, grid, bw, eps)
                ll += [log_likelihood(lq, c) for c, g in zip(train_counts, fold) if g == f]
            if np.mean(ll) > best_ll:
                best, best_ll = (bw, eps), float(np.mean(ll))
    return CentreBias(np.concatenate(pts), float(best[0]), float(best[1]))


# ------------------------------------------------------------------------------ map density
@dataclass(frozen=True)
class MapDensity:
    """Parameters of a map's density: blur `sigma` (grid cells), softmax gain `alpha`, centre-bias
    weight `w` in the mixture, and the training log-likelihood (bits/fixation) they reached."""

    sigma: float
    alpha: float
    w: float
    train_ll: float = float("nan")


def map_log_density(m: np.ndarray, params: MapDensity, log_cb: np.ndarray) -> np.ndarray:
    """log p (h, w) of the map `m` (on the grid of `log_cb`) under `params` (module docstring)."""
    z = standardise(_blur(np.asarray(m, dtype=np.float64), params.sigma))
    s = params.alpha * z
    log_map = s - logsumexp(s)
    w = float(np.clip(params.w, 0.0, 1.0))
    if w == 0:
        return log_map
    if w == 1:
        return np.asarray(log_cb, dtype=np.float64)
    return np.logaddexp(np.log1p(-w) + log_map, np.log(w) + log_cb)


def _mean_ll(Z: np.ndarray, N: np.ndarray, Q: np.ndarray, alpha: float, w: float) -> float:
    """Mean per-image log-likelihood (bits over uniform) of the mixture; Z, N, Q: (I, C)."""
    S = alpha * Z
    LP = np.logaddexp(np.log1p(-w) + S - logsumexp_rows(S), np.log(w) + Q)
    return float(((N * LP).sum(1) / N.sum(1) + np.log(Z.shape[1])).mean() / np.log(2.0))


def fit_map_density(maps: list[np.ndarray], counts: list[np.ndarray], log_cbs: list[np.ndarray], *,
                    sigmas=(0.0, 1.0, 2.0, 4.0)) -> MapDensity:
    """Maximum-likelihood `MapDensity` on training images: maps, fixation counts and centre-bias
    log-densities, all on the same grid, one per image. sigma from `sigmas` (cells), then alpha and
    w (in (0, 1)) by L-BFGS on the mean per-image log-likelihood."""
    if not maps or len(maps) != len(counts) or len(maps) != len(log_cbs):
        raise WorkbenchError(f"fit_map_density: {len(maps)} maps, {len(counts)} counts, {len(log_cbs)} centre biases")
    best = None
    N = np.stack([np.asarray(c, dtype=np.float64).ravel() for c in counts])
    Q = np.stack([np.asarray(q, dtype=np.float64).ravel() for q in log_cbs])
    for sg in sigmas:
        Z = np.stack([standardise(_blur(np.asarray(m, dtype=np.float64), sg)).ravel() for m in maps])

        def nll(theta):
            return -_mean_ll(Z, N, Q, theta[0], 1 / (1 + np.exp(-theta[1])))

        starts = [np.array([a, 0.0]) for a in (-1.0, 0.5, 1.5)]
        res = min((minimize(nll, x0, method="L-BFGS-B", bounds=[(-20, 20), (-12, 12)]) for x0 in starts),
                  key=lambda r: r.fun)
        cand = MapDensity(float(sg), float(res.x[0]), float(1 / (1 + np.exp(-res.x[1]))), float(-res.fun))
        if best is None or cand.train_ll > best.train_ll:
            best = cand
    return best
