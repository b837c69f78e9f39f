"""The conditional-logit readout against independent computations on small synthetic inputs (curve
features, low-level features and the paper's protocol: test_analysis_features/lowlevel/protocol.py)."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.readout import _objective, design_matrix, fit_readout, fit_weights, readout_log_density
from workbench.errors import WorkbenchError


# ------------------------------------------------------------------------------ readout
def test_readout_gradient_matches_finite_differences():
    from scipy.optimize import check_grad

    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 30, 3)).astype(np.float32)
    n = rng.poisson(1.0, size=(4, 30)).astype(float)
    n[:, 0] += 1
    o = np.log(rng.dirichlet(np.ones(30), size=4))
    x0 = rng.normal(size=4)
    err = check_grad(lambda p: _objective(p, X, n, o, 0.01)[0], lambda p: _objective(p, X, n, o, 0.01)[1], x0)
    assert err < 1e-5


def _synthetic(rng, I=40, shape=(12, 16), gain=1.5, nfix=80):
    h, w = shape
    y = ((np.arange(h) + 0.5) / h - 0.5)[:, None]
    x = ((np.arange(w) + 0.5) / w - 0.5)[None, :]
    cb = np.exp(-0.5 * (y ** 2 + x ** 2) / 0.3 ** 2)
    log_cb = np.log(cb / cb.sum())
    feats, counts = [], []
    for _ in range(I):
        a, b = rng.normal(size=shape), rng.normal(size=shape)
        a = (a - a.mean()) / a.std()
        p = np.exp(gain * a + log_cb)
        idx = rng.choice(p.size, size=nfix, p=(p / p.sum()).ravel())
        counts.append(np.bincount(idx, minlength=p.size).reshape(shape).astype(float))
        feats.append({"signal": a, "noise": b})
    return feats, counts, [log_cb] * I


def test_readout_recovers_the_generating_weights_and_gains_on_new_images():
    rng = np.random.default_rng(2)
    feats, counts, log_cbs = _synthetic(rng, I=60)
    X = design_matrix(feats, ["signal", "noise"], 0.0)
    theta, beta = fit_weights(X, np.stack([c.ravel() for c in counts]), np.stack([q.ravel() for q in log_cbs]), 1e-6)
    assert theta[0] == pytest.approx(1.5, abs=0.15) and abs(theta[1]) < 0.15 and beta == pytest.approx(1.0, abs=0.2)
    ro = fit_readout(feats, counts, log_cbs, ["signal", "noise"], sigmas=(0.0, 2.0), lams=(1e-4, 1e-1))
    assert ro.sigma == 0.0 and ro.cv_ll > 0
    f2, c2, q2 = _synthetic(np.random.default_rng(9), I=10)
    from analysis.infogain import log_likelihoods

    ig = log_likelihoods([readout_log_density(ro, f, q) for f, q in zip(f2, q2)], c2) - log_likelihoods(q2, c2)
    assert ig.mean() > 0.3
    # a readout of the noise feature alone gains nothing on new images (within sampling noise)
    rn = fit_readout(feats, counts, log_cbs, ["noise"], sigmas=(0.0,), lams=(1e-4,))
    ign = log_likelihoods([readout_log_density(rn, f, q) for f, q in zip(f2, q2)], c2) - log_likelihoods(q2, c2)
    assert abs(ign.mean()) < 0.05


def test_readout_bad_inputs():
    with pytest.raises(WorkbenchError, match="unknown feature"):
        design_matrix([{"a": np.zeros((2, 2))}], ["b"], 0.0)
    with pytest.raises(WorkbenchError, match=">= 2 training images"):
        fit_readout([{"a": np.zeros((2, 2))}], [np.ones((2, 2))], [np.zeros((2, 2))], ["a"])
