"""Information gain: closed forms, bootstrap intervals and (where installed) agreement with pysaliency
(the fitted fixation densities: test_analysis_density.py)."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.infogain import bootstrap_mean, information_gain, log_likelihood, paired_difference, summarise
from workbench.errors import WorkbenchError


def _counts(shape, cells, n=1.0):
    c = np.zeros(shape)
    for yx in cells:
        c[yx] += n
    return c


# ------------------------------------------------------------------------------ closed forms
def test_uniform_against_uniform_is_zero_bits():
    c = _counts((6, 8), [(0, 0), (3, 4), (5, 7)])
    assert log_likelihood(np.zeros((6, 8)), c) == pytest.approx(0.0, abs=1e-12)
    # any constant log-density is the uniform density once normalised
    assert information_gain(np.full((6, 8), -3.0), np.zeros((6, 8)), c) == pytest.approx(0.0, abs=1e-12)


def test_density_on_the_fixations_gains_log2_cells():
    C = 6 * 8
    c = _counts((6, 8), [(2, 3)], n=5)
    lp = np.full((6, 8), -np.inf)
    lp[2, 3] = 0.0
    assert log_likelihood(lp, c) == pytest.approx(np.log2(C))
    # two fixated cells with counts 3 and 1 and the empirical density p = counts / 4
    c2 = _counts((6, 8), [(0, 0)], n=3) + _counts((6, 8), [(5, 7)], n=1)
    with np.errstate(divide="ignore"):
        lp2 = np.log(c2 / c2.sum())
    want = (3 * np.log2(0.75 * C) + np.log2(0.25 * C)) / 4
    assert log_likelihood(lp2, c2) == pytest.approx(want)
    # a density that misses a fixation has log-likelihood -inf
    assert log_likelihood(lp, c2) == -np.inf


def test_two_region_case_matches_the_formula():
    # region A = the left quarter of the columns (a = 1/4 of the area) holds mass m = 0.6;
    # 7 of 10 fixations fall in A
    H, W, a, m = 4, 8, 0.25, 0.6
    A = np.zeros((H, W), bool)
    A[:, :2] = True
    p = np.where(A, m / A.sum(), (1 - m) / (~A).sum())
    c = _counts((H, W), [(0, 0)] * 4 + [(3, 1)] * 3 + [(1, 5)] * 2 + [(2, 7)])
    want = 0.7 * np.log2(m / a) + 0.3 * np.log2((1 - m) / (1 - a))
    assert log_likelihood(np.log(p), c) == pytest.approx(want)
    # information gain over a baseline that puts mass 0.4 in A
    q = np.where(A, 0.4 / A.sum(), 0.6 / (~A).sum())
    want_ig = 0.7 * np.log2(m / 0.4) + 0.3 * np.log2((1 - m) / 0.6)
    assert information_gain(np.log(p), np.log(q), c) == pytest.approx(want_ig)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(WorkbenchError, match="different grids"):
        log_likelihood(np.zeros((3, 3)), np.ones((3, 4)))
    with pytest.raises(WorkbenchError, match="without fixations"):
        log_likelihood(np.zeros((3, 3)), np.zeros((3, 3)))
    with pytest.raises(WorkbenchError):
        bootstrap_mean([])


def test_bootstrap_interval_brackets_the_mean_and_shrinks():
    rng = np.random.default_rng(1)
    v = rng.normal(0.3, 0.2, 50)
    m, lo, hi = bootstrap_mean(v, n_boot=4000)
    assert lo < m < hi and m == pytest.approx(v.mean())
    # the percentile interval is close to the normal-theory one, mean +- 1.96 sd / sqrt(n)
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15)
    m2, lo2, hi2 = bootstrap_mean(np.concatenate([v] * 4), n_boot=4000)
    assert hi2 - lo2 < 0.6 * (hi - lo)
    assert bootstrap_mean(np.full(5, 0.5))[1:] == (0.5, 0.5)
    s = summarise(v, n_boot=500)
    assert s["n"] == 50 and len(s["per_image"]) == 50
    d = paired_difference(v + 0.1, v, n_boot=500)
    assert d["mean"] == pytest.approx(0.1) and d["fraction_positive"] == 1.0 and d["wilcoxon_p"] < 1e-6


# ------------------------------------------------------------------------------ synthetic densities (test_analysis_density.py uses them too)


def _sample_fixations(p: np.ndarray, n: int, rng) -> np.ndarray:
    idx = rng.choice(p.size, size=n, p=p.ravel() / p.sum())
    return np.bincount(idx, minlength=p.size).reshape(p.shape).astype(float)


def _centred(shape, sd=0.15, shift=(0.0, 0.0)):
    h, w = shape
    y = ((np.arange(h) + 0.5) / h - 0.5 - shift[0])[:, None]
    x = ((np.arange(w) + 0.5) / w - 0.5 - shift[1])[None, :]
    return np.exp(-0.5 * (y ** 2 + x ** 2) / sd ** 2)


# ------------------------------------------------------------------------------ pysaliency
def test_information_gain_matches_pysaliency():
    pysaliency = pytest.importorskip("pysaliency", reason="pysaliency is not installed (optional cross-check)")
    from pysaliency.models import Model

    rng = np.random.default_rng(5)
    H, W = 12, 16
    lp = rng.normal(size=(H, W))
    lp -= np.log(np.exp(lp).sum())
    lq = np.log(_centred((H, W)) / _centred((H, W)).sum())

    class Fixed(Model):
        def __init__(self, log_density):
            super().__init__(caching=False)
            self.ld = log_density

        def _log_density(self, stimulus):
            return self.ld

    ys, xs = rng.integers(0, H, 30), rng.integers(0, W, 30)
    stimuli = pysaliency.Stimuli([np.zeros((H, W, 3), np.uint8)])
    fix = pysaliency.Fixations.create_without_history(xs, ys, np.zeros(30, int))
    theirs = Fixed(lp).information_gain(stimuli, fix, Fixed(lq), average="fixation")
    c = np.zeros((H, W))
    np.add.at(c, (ys, xs), 1)
    assert information_gain(lp, lq, c) == pytest.approx(theirs, rel=1e-6)
