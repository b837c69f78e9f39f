"""Curve features, low-level features, the conditional-logit readout and the paper's protocol,
each against an independent computation on small synthetic inputs."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.features import curve_features, feature_names, timestep_maps
from analysis.fluctuation import fluctuation
from analysis.lowlevel import LOWLEVEL_NAMES, lowlevel_features
from analysis.protocol import extreme_pixels, paper_protocol
from analysis.readout import _objective, design_matrix, fit_readout, fit_weights, readout_log_density
from workbench.errors import WorkbenchError


# ------------------------------------------------------------------------------ curve features
def test_curve_features_against_plain_numpy():
    rng = np.random.default_rng(0)
    t = np.arange(1, 1000, 50).astype(np.int64)  # 20 ascending timesteps
    rate = rng.random((t.size, 4, 5)) + 0.1
    rate[7, 1, 2] = 50.0  # a clear peak at t[7]
    f = curve_features(rate, t, windows=(3, 5))
    assert list(f) == feature_names(t, windows=(3, 5))
    assert f["peak_t"][1, 2] == t[7]
    assert f["peak_height"][1, 2] == pytest.approx(np.log(50.0 / rate[:, 1, 2].mean()))
    c = rate[:, 0, 0]
    want = fluctuation(c[:, None], t, window=5, t_b=0, axis=0, normalise=True)[0]
    assert f["fluct_L5"][0, 0] == pytest.approx(np.log(want))
    edges = np.floor(np.linspace(t.min(), t.max() + 1, 4))  # thirds of the schedule: 1, 318, 635, 952
    sel = (t >= edges[0]) & (t < edges[1])
    assert f["mean_t1-318"][2, 3] == pytest.approx(np.log(rate[sel, 2, 3].mean()))
    mid = np.median(t)
    assert f["late_early"][3, 4] == pytest.approx(np.log(rate[t >= mid, 3, 4].mean() / rate[t < mid, 3, 4].mean()))
    # a curve linear in t has zero curvature, a bent one does not
    lin = np.broadcast_to((1 + t / 1000.0)[:, None, None], (t.size, 2, 2)).copy()
    lin[:, 1, 1] = 1 + (t / 1000.0) ** 2
    fl = curve_features(lin, t, windows=(3,))
    assert fl["curvature"][0, 0] == pytest.approx(0.0, abs=1e-9) and fl["curvature"][1, 1] > 1e-3
    maps, ts = timestep_maps(rate, t)
    assert maps.shape == rate.shape and np.allclose(np.exp(maps), rate)


def test_curve_features_reject_bad_cubes():
    with pytest.raises(WorkbenchError, match="ascending"):
        curve_features(np.ones((4, 2, 2)), [4, 3, 2, 1])
    with pytest.raises(WorkbenchError, match="at least 3"):
        curve_features(np.ones((2, 2, 2)), [1, 2])


# ------------------------------------------------------------------------------ low-level features
def test_lowlevel_features_see_edges_and_colour():
    img = np.full((60, 80, 3), 128, np.uint8)
    img[:, 40:] = 20  # a vertical luminance edge
    img[10:20, 10:20] = (255, 0, 0)  # a red square
    f = lowlevel_features(img, width=80)
    assert tuple(f) == LOWLEVEL_NAMES
    assert all(m.shape == (60, 80) and np.isfinite(m).all() for m in f.values())
    assert f["edges"][30, 38:42].max() > 5 * f["edges"][30, 60]  # the edge, not the flat right half
    assert f["contrast"][30, 40] > f["contrast"][50, 70]
    assert f["colour"][15, 15] > f["colour"][50, 60]
    assert f["saturation"][15, 15] > f["saturation"][50, 60]
    flat = lowlevel_features(np.full((30, 40, 3), 90, np.uint8), width=40)
    assert np.allclose(flat["contrast"], 0, atol=1e-6) and np.allclose(flat["edges"], 0, atol=1e-6)


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


# ------------------------------------------------------------------------------ paper protocol
def test_extreme_pixels_and_flat_truth():
    d = np.zeros((3, 4))
    d[1, 2] = 1.0
    top, bottom = extreme_pixels(d)
    assert top.tolist() == [6] and bottom.size == 11
    with pytest.raises(WorkbenchError, match="flat"):
        extreme_pixels(np.ones((3, 3)))


def test_paper_protocol_scores_the_pixel_under_the_maximum():
    rng = np.random.default_rng(4)
    t = np.arange(10, 1000, 40)
    cubes, dens = [], []
    for i in range(12):
        d = np.zeros((60, 80))  # ground truth at image resolution; its maximum at pixel (y, x)
        y, x = rng.integers(0, 60), rng.integers(0, 80)
        d[y, x] = 1.0
        d[0, 0] = d[59, 79] = 0.0
        rate = np.ones((t.size, 6, 8)) + 0.01 * rng.random((t.size, 6, 8))
        rate[::2, y * 6 // 60, x * 8 // 80] += 1.0  # the model pixel under the maximum oscillates
        cubes.append((rate, t))
        dens.append(d)
    res = paper_protocol(cubes, dens, windows=(3,), t_bs=(0, 400), draws=5)
    for s in res["settings"]:
        assert s["fraction"] == 1.0 and s["wins"] == 12 and s["sign_p"] < 0.001
    # with the oscillation moved off the salient pixel, the salient pixel never wins
    flipped = [(np.ones_like(r) + 0.01 * rng.random(r.shape), ts) for r, ts in cubes]
    res2 = paper_protocol(flipped, dens, windows=(3,), t_bs=(0,), draws=5)
    assert 0.0 < res2["settings"][0]["fraction_mean_over_draws"] < 1.0
    with pytest.raises(WorkbenchError, match="one cube per ground truth"):
        paper_protocol(cubes[:2], dens[:3])
