"""Saliency metrics against independent values: sklearn's ROC AUC, scipy's Pearson r, literal
re-implementations of the MIT benchmark's MATLAB loops, and hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import roc_auc_score

from analysis.metrics import AUC_Borji, AUC_Judd, CC, EPS, KLD, NSS, SIM, sAUC, score_all
from workbench.errors import WorkbenchError


def _maps(seed=0, shape=(20, 30), n_fix=25):
    rng = np.random.default_rng(seed)
    s = rng.random(shape)
    f = np.zeros(shape, bool)
    f.flat[rng.choice(s.size, n_fix, replace=False)] = True
    return s, f


def _judd_matlab(s, f):
    """The MIT benchmark's AUC_Judd.m loop, transcribed literally (no jitter)."""
    s = (s - s.min()) / (s.max() - s.min())
    S, F = s.ravel(), f.ravel()
    Sth = S[F]
    n, N = Sth.size, S.size
    tp, fp = [0.0], [0.0]
    for i, th in enumerate(sorted(Sth, reverse=True), start=1):
        above = int((S >= th).sum())
        tp.append(i / n)
        fp.append((above - i) / (N - n))
    tp.append(1.0)
    fp.append(1.0)
    return sum((fp[k + 1] - fp[k]) * (tp[k + 1] + tp[k]) / 2 for k in range(len(tp) - 1))


def test_auc_judd_matches_the_matlab_loop_and_sklearn():
    s, f = _maps()
    judd = AUC_Judd(s, f, jitter=False)
    assert judd == pytest.approx(_judd_matlab(s, f), abs=1e-12)
    # Judd's trapezoid between fixation thresholds exceeds the exact ROC area by fp_n / (2 n)
    sk = roc_auc_score(f.ravel(), s.ravel())
    n = f.sum()
    fp_n = (s[~f] >= s[f].min()).mean()
    assert judd == pytest.approx(sk + fp_n / (2 * n), abs=1e-12)
    # seeded jitter (1e-7) does not change untied maps
    assert AUC_Judd(s, f) == pytest.approx(judd, abs=1e-6)


def test_auc_judd_hand_computed():
    s = np.array([[0.9, 0.1], [0.5, 0.2]])
    f = np.array([[True, False], [False, True]])
    # thresholds 0.9 -> tp 1/2, fp 0/2; 0.2 -> tp 1, above = 3 -> fp (3-2)/2 = 1/2
    # points (0,0) (0,.5) (.5,1) (1,1): area = 0 + .5*.75 + .5*1 = 0.875
    assert AUC_Judd(s, f, jitter=False) == pytest.approx(0.875)
    # reversed: 0.8 -> (fp .5, tp .5), 0.1 -> (1, 1): area 0.5
    assert AUC_Judd(1 - s, f, jitter=False) == pytest.approx(0.5)


def test_auc_borji_hand_computed_and_near_sklearn():
    s = np.array([[1.0, 0.0], [0.0, 0.0]])
    f = np.array([[True, False], [False, False]])
    # one fixation at saliency 1; random negatives are 1 w.p. 1/4: per split AUC = 1 if the random
    # pixel is 0 (area of (0,0)(0,1)(1,1)) and 0.5 if it is the fixated pixel -> mean = 1 - k/2n
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 4, size=(100, 1))
    expected = np.mean(np.where(idx[:, 0] == 0, 0.5, 1.0))
    assert AUC_Borji(s, f, seed=0) == pytest.approx(expected)
    # on a large random problem it estimates the ROC AUC of fixations vs all pixels
    s, f = _maps(1, (60, 80), 300)
    s = s + 0.5 * f  # informative map
    sk = roc_auc_score(f.ravel(), s.ravel())
    assert AUC_Borji(s, f, step=0.01) == pytest.approx(sk, abs=0.03)


def test_sauc_uses_other_fixations_and_cancels_centre_bias():
    H, W = 40, 40
    yy, xx = np.mgrid[:H, :W]
    centre = np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / 50.0)
    rng = np.random.default_rng(0)
    def centred_fix(k):
        f = np.zeros((H, W), bool)
        f[np.clip(rng.normal(20, 4, k).astype(int), 0, H - 1), np.clip(rng.normal(20, 4, k).astype(int), 0, W - 1)] = True
        return f
    f, other = centred_fix(40), centred_fix(200)
    assert AUC_Borji(centre, f) > 0.8  # centre bias looks good against uniform negatives ...
    assert abs(sAUC(centre, f, other) - 0.5) < 0.1  # ... and is at chance against other images' fixations
    # exactly: negatives = fixations of the other map; when the other map is the same set, AUC at threshold
    # grid with identical positive / negative samples is 0.5
    assert sAUC(centre, f, f, n_splits=3) == pytest.approx(0.5)


def test_nss_hand_computed():
    s = np.array([[0.0, 1.0], [2.0, 3.0]])
    f = np.array([[False, False], [False, True]])
    z = (3 - 1.5) / np.std([0, 1, 2, 3], ddof=1)
    assert NSS(s, f) == pytest.approx(z)


def test_cc_is_pearson():
    s, _ = _maps(2)
    d = 0.3 * s + np.random.default_rng(3).random(s.shape)
    assert CC(s, d) == pytest.approx(pearsonr(s.ravel(), d.ravel())[0], abs=1e-12)
    assert CC(s, s) == pytest.approx(1.0)


def test_sim_hand_computed():
    s = np.array([[0.0, 1.0], [1.0, 2.0]])  # -> [0, .5, .5, 1] / 2 = [0, .25, .25, .5]
    d = np.array([[1.0, 1.0], [0.0, 0.0]])  # -> [.5, .5, 0, 0]
    assert SIM(s, d) == pytest.approx(0.25)
    assert SIM(d, d) == pytest.approx(1.0)


def test_kld_hand_computed():
    s = np.array([[1.0, 3.0]])
    d = np.array([[1.0, 1.0]])
    # D' = [.5, .5], S' = [.25, .75]
    expected = 0.5 * np.log(EPS + 0.5 / (0.25 + EPS)) + 0.5 * np.log(EPS + 0.5 / (0.75 + EPS))
    assert KLD(s, d) == pytest.approx(expected)
    assert KLD(3 * s, s) == pytest.approx(0.0, abs=1e-12)
    assert KLD(d, d) == pytest.approx(0.0, abs=1e-12)  # a flat prediction of a flat density is fine


def test_score_all_and_perfect_map_beats_noise():
    s, f = _maps(4, (50, 50), 40)
    from scipy.ndimage import gaussian_filter
    d = gaussian_filter(f.astype(float), 3)
    good = score_all(d, fixations=f, density=d, other_fixations=_maps(5, (50, 50), 40)[1])
    bad = score_all(s, fixations=f, density=d, other_fixations=_maps(5, (50, 50), 40)[1])
    assert set(good) == {"AUC_Judd", "AUC_Borji", "sAUC", "NSS", "CC", "SIM", "KLD"}
    for k in ("AUC_Judd", "AUC_Borji", "sAUC", "NSS", "CC", "SIM"):
        assert good[k] > bad[k], k
    assert good["KLD"] < bad["KLD"]
    assert all(np.isfinite(v) for v in good.values())
    assert set(score_all(d, density=d)) == {"CC", "SIM", "KLD"}


@pytest.mark.parametrize("metric", [AUC_Judd, AUC_Borji, NSS])
def test_bad_inputs_raise_one_line_errors(metric):
    s, f = _maps()
    with pytest.raises(WorkbenchError, match="differ in size"):
        metric(s[:10], f)
    with pytest.raises(WorkbenchError, match="no fixations"):
        metric(s, np.zeros_like(f))
    with pytest.raises(WorkbenchError, match="constant"):
        metric(np.zeros_like(s), f)
    bad = s.copy()
    bad[0, 0] = np.nan
    with pytest.raises(WorkbenchError, match="NaN"):
        metric(bad, f)


@pytest.mark.parametrize("metric", [CC, SIM, KLD])
def test_bad_inputs_density_metrics(metric):
    s, f = _maps()
    d = f.astype(float)
    with pytest.raises(WorkbenchError, match="differ in size"):
        metric(s, d[:, :5])
    with pytest.raises(WorkbenchError):
        metric(np.zeros_like(s), d)
    with pytest.raises(WorkbenchError):
        metric(s, np.zeros_like(d))
    with pytest.raises(WorkbenchError, match="NaN"):
        metric(s, np.where(f, np.nan, 0.0))
