"""analysis.paired: the paired test's statistics against scipy and hand counts."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from analysis.paired import PairedRule, draw_pairs, pair_auc, paired_test, wilson_interval
from workbench.errors import WorkbenchError


def test_wilson_interval_known_value():
    # 8 of 10: Wilson 95% interval (Newcombe 1998, method 3) = [0.4902, 0.9433]
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)


def test_paired_test_counts_and_sign_test():
    rng = np.random.default_rng(0)
    dens, good, bad = [], [], []
    for _ in range(12):
        d = rng.random((20, 30))
        dens.append(d)
        good.append(d + 0.01 * rng.random(d.shape))  # follows the density: wins every time
        bad.append(-d)  # anti-saliency: loses every time
    rule = PairedRule(frac=0.1, draws=7, seed=3)
    r = paired_test({"good": good, "bad": bad}, dens, rule)
    assert r["maps"]["good"]["wins"] == 12 and r["maps"]["good"]["fraction"] == 1.0
    assert r["maps"]["bad"]["wins"] == 0 and r["maps"]["bad"]["losses"] == 12
    assert r["maps"]["good"]["sign_p"] == pytest.approx(binomtest(12, 12, 0.5).pvalue)
    assert r["maps"]["good"]["pair_auc_mean"] == pytest.approx(1.0)
    assert r["rule"]["seed"] == 3 and r["rule"]["draws"] == 7
    # the drawn pixels obey the rule and are reproducible
    p = draw_pairs(dens[0], rule, 0)
    assert np.array_equal(p, draw_pairs(dens[0], rule, 0))
    flat = dens[0].ravel()
    assert (flat[p[:, 0]] >= np.quantile(flat, 0.9)).all() and (flat[p[:, 1]] <= np.quantile(flat, 0.1)).all()


def test_pair_auc_is_mann_whitney():
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(1)
    d = rng.random((15, 15))
    v = d + rng.normal(0, 0.5, d.shape)
    top, bottom = d.ravel() >= np.quantile(d, 0.8), d.ravel() <= np.quantile(d, 0.2)
    u = mannwhitneyu(v.ravel()[top], v.ravel()[bottom]).statistic
    assert pair_auc(v, d, 0.2) == pytest.approx(u / (top.sum() * bottom.sum()))


def test_paired_bad_inputs():
    d = np.random.default_rng(0).random((10, 10))
    with pytest.raises(WorkbenchError, match="differ in size"):
        paired_test({"m": [np.zeros((5, 5))]}, [d])
    with pytest.raises(WorkbenchError, match="NaN"):
        paired_test({"m": [np.full((10, 10), np.nan)]}, [d])
    with pytest.raises(WorkbenchError, match="flat"):
        paired_test({"m": [d]}, [np.zeros((10, 10))])
    with pytest.raises(WorkbenchError):
        PairedRule(frac=0.7)
