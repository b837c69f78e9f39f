"""analysis.features: curve features against plain NumPy, bad cubes refused."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.features import curve_features, feature_names, timestep_maps
from analysis.fluctuation import fluctuation
from workbench.errors import WorkbenchError


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
