"""Readouts: feature maps (+ the centre bias) -> a fixation density, fitted by maximum likelihood.

The readout is a conditional logit (the multinomial form of logistic regression, as in DeepGaze's
readout): for image i with standardised feature maps X_i (C cells, F features) and the centre-bias
log-density o_i (C,),

    log p_i = X_i theta + beta o_i - logsumexp_c(X_i theta + beta o_i)

theta (F,) and beta maximise the mean over training images of the per-image mean log-likelihood of
the fixations, minus lam |theta|^2 (beta is not penalised). Before standardising (zero mean, unit sd
per image and feature), every feature map is blurred by sigma grid cells. sigma (at the smallest lam),
then lam (at that sigma) are chosen by `folds`-fold cross-validation over training images (folds by
image), then the readout is refitted on all training images. Evaluation images never enter the fit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from workbench.errors import WorkbenchError

from .density import _blur, logsumexp_rows, standardise

__all__ = ["Readout", "design_matrix", "fit_weights", "fit_readout", "readout_log_density", "DEFAULT_SIGMAS",
           "DEFAULT_LAMS"]

DEFAULT_SIGMAS = (0.0, 1.5, 3.0)
DEFAULT_LAMS = (1e-4, 1e-3, 1e-2, 1e-1)


@dataclass(frozen=True)
class Readout:
    """A fitted readout: feature `names`, weights `theta` (F,), centre-bias weight `beta`, feature blur
    `sigma` (cells), penalty `lam`, and the cross-validated training log-likelihood (bits/fixation
    over uniform, mean over images) that chose them."""

    names: tuple[str, ...]
    theta: np.ndarray
    beta: float
    sigma: float
    lam: float
    cv_ll: float


def design_matrix(features: list[dict[str, np.ndarray]], names, sigma: float) -> np.ndarray:
    """(I, C, F) float64: per image, the named (h, w) grid maps blurred by `sigma` cells and
    standardised, flattened over cells."""
    names = list(names)
    if not features:
        raise WorkbenchError("a readout needs at least one image")
    missing = [n for n in names if n not in features[0]]
    if missing:
        raise WorkbenchError(f"unknown feature(s) {', '.join(missing)}: choose from {', '.join(features[0])}")
    C = np.asarray(features[0][names[0]]).size
    X = np.empty((len(features), C, len(names)), dtype=np.float64)
    for i, f in enumerate(features):
        for j, n in enumerate(names):
            X[i, :, j] = standardise(_blur(np.asarray(f[n], dtype=np.float64), sigma)).ravel()
    return X


def _objective(params, X, n, o, lam):
    I, C, F = X.shape
    theta, beta = params[:-1], params[-1]
    S = (X.reshape(-1, F) @ theta).reshape(I, C) + beta * o
    LP = S - logsumexp_rows(S)
    N = n.sum(1, keepdims=True)
    ll = float((n * LP / N).sum() / I)
    R = n / N - np.exp(LP)  # d ll / d S, per image
    g_theta = (R.reshape(-1) @ X.reshape(-1, F)) / I
    g_beta = float((R * o).sum() / I)
    return -ll + lam * float(theta @ theta), -np.concatenate([g_theta - 2 * lam * theta, [g_beta]])


def fit_weights(X: np.ndarray, counts: np.ndarray, log_cb: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """theta (F,), beta maximising the penalised mean per-image log-likelihood. X (I, C, F),
    counts (I, C) fixations per cell, log_cb (I, C) centre-bias log-density."""
    n = np.asarray(counts, dtype=np.float64)
    if (n.sum(1) <= 0).any():
        raise WorkbenchError("a training image has no fixations on the grid")
    x0 = np.zeros(X.shape[2] + 1)
    x0[-1] = 1.0
    res = minimize(_objective, x0, args=(X, n, np.asarray(log_cb, dtype=np.float64), float(lam)), jac=True,
                   method="L-BFGS-B", options=dict(maxiter=300, gtol=1e-7))
    return res.x[:-1].copy(), float(res.x[-1])


def _mean_ll_bits(X, counts, log_cb, theta, beta) -> np.ndarray:
    I, C, F = X.shape
    S = (X.reshape(-1, F) @ theta).reshape(I, C) + beta * log_cb
    LP = S - logsumexp_rows(S)
    n = np.asarray(counts, dtype=np.float64)
    return ((n * LP).sum(1) / n.sum(1) + np.log(X.shape[1])) / np.log(2.0)


def fit_readout(features: list[dict[str, np.ndarray]], counts, log_cbs, names, *, sigmas=DEFAULT_SIGMAS,
                lams=DEFAULT_LAMS, folds: int = 3, seed: int = 0) -> Readout:
    """Fit a readout of the named features on training images (feature dicts of (h, w) grid maps,
    fixation counts (h, w), centre-bias log-densities (h, w), one each per image): sigma and lam by
    cross-validation, then a refit on all of them."""
    names = tuple(names)
    I = len(features)
    if I < 2 or len(counts) != I or len(log_cbs) != I:
        raise WorkbenchError(f"a readout needs >= 2 training images with counts and centre bias, got {I}, "
                             f"{len(counts)}, {len(log_cbs)}")
    n = np.stack([np.asarray(c, dtype=np.float64).ravel() for c in counts])
    o = np.stack([np.asarray(q, dtype=np.float64).ravel() for q in log_cbs])
    k = max(2, min(folds, I))
    fold = np.random.default_rng(seed).permutation(I) % k
    def cv_ll(X, lam):
        ll = np.empty(I)
        for f in range(k):
            tr, te = fold != f, fold == f
            th, b = fit_weights(X[tr], n[tr], o[tr], lam)
            ll[te] = _mean_ll_bits(X[te], n[te], o[te], th, b)
        return float(ll.mean())

    lams = sorted(lams)
    best = None
    for sg in sigmas:  # the blur at the weakest penalty ...
        X = design_matrix(features, names, sg)
        v = cv_ll(X, lams[0])
        if best is None or v > best[0]:
            best = (v, sg, lams[0], X)
    for lam in lams[1:]:  # ... then the penalty at that blur
        v = cv_ll(best[3], lam)
        if v > best[0]:
            best = (v, best[1], lam, best[3])
    cv, sg, lam, X = best
    theta, beta = fit_weights(X, n, o, lam)
    return Readout(names, theta, beta, float(sg), float(lam), cv)


def readout_log_density(readout: Readout, features: dict[str, np.ndarray], log_cb: np.ndarray) -> np.ndarray:
    """The readout's natural-log cell probabilities (h, w) for one image."""
    X = design_matrix([features], readout.names, readout.sigma)[0]
    q = np.asarray(log_cb, dtype=np.float64)
    s = X.astype(np.float64) @ readout.theta + readout.beta * q.ravel()
    return (s - logsumexp(s)).reshape(q.shape)
