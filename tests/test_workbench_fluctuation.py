"""workbench.fluctuation: its gradient, standard error and grid power against independent computations:
finite differences, Monte Carlo over simulated curve errors, the FFT (Parseval). (The significance map
of analysis.fluctuation: test_analysis_fluctuation.py.)"""
from __future__ import annotations

import numpy as np
import pytest

from analysis.fluctuation import grid_power, grid_power_chance
from workbench.errors import WorkbenchError
from workbench.fluctuation import fluctuation, fluctuation_grad, fluctuation_se

TS = np.arange(12) * 80


@pytest.mark.parametrize("normalise", [False, True])
def test_gradient_matches_finite_differences(normalise):
    c = np.random.default_rng(0).random((5, 12)) + 0.5
    kw = dict(window=3, t_b=100, axis=-1, normalise=normalise)
    g = fluctuation_grad(c, TS, **kw)
    eps, fd = 1e-6, np.zeros_like(c)
    for j in range(12):
        d = np.zeros_like(c)
        d[:, j] = eps
        fd[:, j] = (fluctuation(c + d, TS, **kw) - fluctuation(c - d, TS, **kw)) / (2 * eps)
    np.testing.assert_allclose(g, fd, atol=1e-9 * np.abs(g).max() + 1e-12)
    assert (g[:, TS <= 100] == 0).all()


@pytest.mark.parametrize("rho", [0.0, 0.7])
@pytest.mark.parametrize("normalise", [False, True])
def test_se_matches_monte_carlo_spread(rho, normalise):
    """Curves plus Gaussian errors with SEs se_j and correlation rho^|j-k|: the empirical SD of F over
    20000 draws matches the delta-method SE within 8%."""
    rng = np.random.default_rng(1)
    c = 1 + 0.3 * np.sin(np.arange(12) / 2.0)
    se = 0.01 + 0.01 * rng.random(12)
    R = rho ** np.abs(np.subtract.outer(np.arange(12), np.arange(12)))
    Lc = np.linalg.cholesky(R * np.outer(se, se))
    draws = c + rng.standard_normal((20000, 12)) @ Lc.T
    F = fluctuation(draws, TS, window=4, t_b=0, axis=-1, normalise=normalise)
    want = F.std()
    got = fluctuation_se(c, se, TS, window=4, t_b=0, axis=-1, normalise=normalise, correlation=rho)
    assert abs(got / want - 1) < 0.08, (got, want)


def test_grid_power_is_the_spectral_power_at_the_period_harmonics():
    rng = np.random.default_rng(2)
    m = rng.random((32, 48)) + np.tile(rng.random((8, 8)), (4, 6))
    P = np.abs(np.fft.fft2(m - m.mean())) ** 2
    on = np.zeros_like(P, bool)
    on[::32 // 8, ::48 // 8] = True
    assert grid_power(m, 8, log=False) == pytest.approx(P[on].sum() / P.sum(), rel=1e-10)
    yy, xx = np.meshgrid(np.arange(32), np.arange(48), indexing="ij")
    assert grid_power(m.ravel(), 8, ys=yy.ravel(), xs=xx.ravel(), log=False) == pytest.approx(grid_power(m, 8, log=False))
    noise = rng.random((64, 64))
    assert grid_power(noise, 8) == pytest.approx(grid_power_chance(64 * 64, 8), rel=0.3)
    with pytest.raises(WorkbenchError, match="positive"):
        grid_power(m - 10, 8)
