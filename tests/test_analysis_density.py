"""analysis.density: fixation counts, the fitted centre bias and map densities on synthetic fixations."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.density import (CentreBias, MapDensity, fit_centre_bias, fit_map_density, fixation_counts,
                              map_log_density, standardise)
from analysis.infogain import log_likelihoods

from test_analysis_infogain import _centred, _sample_fixations


def test_fixation_counts_bin_pixels_into_cells():
    f = np.zeros((60, 80), bool)
    f[0, 0] = f[59, 79] = f[5, 9] = f[35, 45] = True
    c = fixation_counts(f, (6, 8))
    assert c.sum() == 4 and c[0, 0] == 2 and c[5, 7] == 1 and c[3, 4] == 1


def test_centre_bias_fit_beats_uniform_on_new_images():
    rng = np.random.default_rng(0)
    truth = _centred((24, 32))
    train = [_sample_fixations(truth, 40, rng) for _ in range(20)]
    cb = fit_centre_bias(train)
    assert isinstance(cb, CentreBias) and 0 < cb.eps <= 0.2
    lq = cb.log_density((24, 32))
    assert np.exp(lq).sum() == pytest.approx(1.0)
    test = [_sample_fixations(truth, 40, rng) for _ in range(10)]
    ll = log_likelihoods([lq] * 10, test)
    with np.errstate(divide="ignore"):
        best = log_likelihoods([np.log(truth / truth.sum())] * 10, test)
    assert ll.mean() > 0.5  # far above uniform (0 bits)
    assert ll.mean() < best.mean() + 0.05  # and not above the true density (up to sampling noise)


def test_map_density_fit_recovers_an_informative_map():
    rng = np.random.default_rng(3)
    shape = (24, 32)
    centre = _centred(shape, sd=0.25)
    log_cb = np.log(centre / centre.sum())
    maps, counts = [], []
    for _ in range(30):
        m = rng.normal(size=shape)
        p = centre * np.exp(1.2 * standardise(m))
        maps.append(m)
        counts.append(_sample_fixations(p, 60, rng))
    md = fit_map_density(maps, counts, [log_cb] * 30, sigmas=(0.0, 2.0))
    assert isinstance(md, MapDensity) and md.sigma == 0.0 and md.alpha > 0.5
    lp = map_log_density(maps[0], md, log_cb)
    assert np.exp(lp).sum() == pytest.approx(1.0)
    ig = log_likelihoods([map_log_density(m, md, log_cb) for m in maps], counts) - \
        log_likelihoods([log_cb] * 30, counts)
    assert ig.mean() > 0.2
    # the negated map is fitted with a negative gain: the fit is not a constant
    md2 = fit_map_density([-m for m in maps], counts, [log_cb] * 30, sigmas=(0.0,))
    assert md2.alpha < -0.5
