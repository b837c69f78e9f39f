"""Log-likelihood and information gain of fixation densities, in bits per fixation.

Kümmerer, Wallis and Bethge, "Information-theoretic model comparison unifies saliency metrics",
PNAS 2015. A saliency model is a probability density p over image positions; its average
log-likelihood on the fixations x_k of an image, relative to the uniform density u, is

    LL(p) = (1/n) sum_k [log2 p(x_k) - log2 u(x_k)]                  bits per fixation

and its information gain over a baseline density q (the centre bias) is IG(p, q) = LL(p) - LL(q).
Densities here live on a grid of equal-area cells over the whole image (`analysis.density`):
`log_density` is the natural log of the probability of each cell (logsumexp over the grid = 0), and
`counts` the number of fixations in each cell. Per image, the figure is the mean over that image's
fixations; per data set, the mean over images (each image weighs the same), with a bootstrap
interval over images.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from scipy.stats import wilcoxon

from workbench.errors import WorkbenchError

__all__ = ["log_likelihood", "log_likelihoods", "information_gain", "information_gains", "bootstrap_mean",
           "summarise", "paired_difference", "normalise_log_density"]

_LN2 = float(np.log(2.0))


def normalise_log_density(log_p: np.ndarray) -> np.ndarray:
    """A log-density on a grid made proper: log_p - logsumexp(log_p) (float64, same shape)."""
    a = np.asarray(log_p, dtype=np.float64)
    return a - logsumexp(a)


def _check(log_p: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lp = np.asarray(log_p, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    if lp.shape != c.shape:
        raise WorkbenchError(f"log-density {lp.shape} and fixation counts {c.shape} are on different grids")
    if not c.sum() > 0:
        raise WorkbenchError("an image without fixations has no log-likelihood: drop it from the evaluation")
    if (c < 0).any():
        raise WorkbenchError("fixation counts must be >= 0")
    if np.isnan(lp).any():
        raise WorkbenchError("the log-density contains NaN")
    return lp, c


def log_likelihood(log_p: np.ndarray, counts: np.ndarray) -> float:
    """Mean log-likelihood of one image's fixations under the grid density exp(log_p), relative to the
    uniform density over the same grid, in bits per fixation. log_p: natural log cell probabilities
    (normalised here), counts: fixations per cell, same shape."""
    lp, c = _check(normalise_log_density(log_p), counts)
    keep = c > 0
    if np.isneginf(lp[keep]).any():
        return float("-inf")
    return float((c[keep] * (lp[keep] + np.log(lp.size))).sum() / c.sum() / _LN2)


def log_likelihoods(log_ps, counts) -> np.ndarray:
    """`log_likelihood` of every image: sequences of log-densities and counts -> (n_images,) bits/fix."""
    if len(log_ps) != len(counts):
        raise WorkbenchError(f"{len(log_ps)} densities for {len(counts)} images")
    return np.array([log_likelihood(p, c) for p, c in zip(log_ps, counts)])


def information_gain(log_p: np.ndarray, log_q: np.ndarray, counts: np.ndarray) -> float:
    """Information gain of density p over baseline q on one image's fixations, bits per fixation."""
    return log_likelihood(log_p, counts) - log_likelihood(log_q, counts)


def information_gains(log_ps, log_qs, counts) -> np.ndarray:
    """Per-image information gains (n_images,) of p over q, bits per fixation."""
    return log_likelihoods(log_ps, counts) - log_likelihoods(log_qs, counts)


def bootstrap_mean(values, *, n_boot: int = 10000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of `values` (one per image) and its percentile bootstrap interval over images:
    (mean, low, high)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise WorkbenchError("the bootstrap needs a non-empty 1-D array of per-image values")
    if not np.isfinite(v).all():
        raise WorkbenchError("a per-image value is not finite (a density gave a fixation probability 0)")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(1)
    a = (1 - level) / 2
    return float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def summarise(values, *, n_boot: int = 10000, seed: int = 0) -> dict:
    """JSON-ready summary of per-image values: mean, ci95 (bootstrap over images), sd, n, the values."""
    v = np.asarray(values, dtype=np.float64)
    m, lo, hi = bootstrap_mean(v, n_boot=n_boot, seed=seed)
    return {"mean": m, "ci95": [lo, hi], "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0, "n": int(v.size),
            "per_image": v.round(6).tolist()}


def paired_difference(a, b, *, n_boot: int = 10000, seed: int = 0) -> dict:
    """Per-image differences a - b (same images) summarised with a bootstrap interval, plus the
    fraction of images where a > b and a two-sided Wilcoxon signed-rank p-value."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise WorkbenchError(f"paired difference of {a.shape} and {b.shape} values: the images must match")
    d = a - b
    out = summarise(d, n_boot=n_boot, seed=seed)
    out["fraction_positive"] = float((d > 0).mean())
    out["wilcoxon_p"] = float(wilcoxon(d).pvalue) if d.size > 1 and np.any(d != 0) else 1.0
    return out
