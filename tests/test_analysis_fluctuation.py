"""Fluctuation on synthetic curves whose windowed variance is known in closed form."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from analysis.fluctuation import fluctuation, fluctuation_map, fluctuation_significance
from workbench.fluctuation import fluctuation as raw_fluctuation
from workbench.errors import WorkbenchError

TS = np.arange(50) * 20 + 1  # the DDIM-50 grid of a 1000-step model: 1, 21, ..., 981
TS12 = np.arange(12) * 80  # a 12-step grid for the significance tests


@pytest.mark.parametrize("L", [2, 3, 4, 5, 8])
def test_alternating_curve(L):
    a = 0.7
    c = 3.0 + a * (-1.0) ** np.arange(50)
    # a window of L alternating samples: mean a/L-ish offset; variance a^2 (1 - 1/L^2) for odd L, a^2 for even L
    expected = a ** 2 * (1.0 if L % 2 == 0 else 1 - 1 / L ** 2)
    assert fluctuation(c, TS, window=L, t_b=0, normalise=False) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("L", [3, 6, 10])
def test_linear_ramp(L):
    b = 0.05
    c = b * np.arange(50)  # variance of L equally spaced values: b^2 (L^2 - 1) / 12
    assert fluctuation(c, TS, window=L, t_b=0, normalise=False) == pytest.approx(b ** 2 * (L ** 2 - 1) / 12, rel=1e-12)


def test_only_timesteps_above_t_b_count():
    c = np.ones(50)
    c[TS <= 200] = 1e6 * np.arange((TS <= 200).sum())  # a wild rise near t = 0 ...
    assert fluctuation(c, TS, window=5, t_b=200, normalise=False) == 0.0  # ... is cut off
    assert fluctuation(c, TS, window=5, t_b=0, normalise=False) > 1e9


def test_noise_and_loop_reference_on_a_cube():
    rng = np.random.default_rng(0)
    cube = rng.normal(2.0, 0.5, size=(50, 4, 6))
    got = fluctuation(cube, TS, window=7, t_b=100, axis=0, normalise=False)
    keep = cube[TS > 100]
    ref = np.empty((4, 6))
    for y in range(4):
        for x in range(6):
            c = keep[:, y, x]
            ref[y, x] = np.mean([np.var(c[w:w + 7]) for w in range(len(c) - 6)])
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    # white noise: E[window variance] = sigma^2 (L - 1) / L
    big = rng.normal(0, 0.5, size=(50, 200, 200))
    assert fluctuation(big, TS, window=7, t_b=0, normalise=False).mean() == pytest.approx(0.25 * 6 / 7, rel=0.01)
    # normalise divides each curve by its sum over the kept samples (variance scales by 1/sum^2)
    c = keep[:, 0, 0]
    assert fluctuation(cube[:, 0, 0], TS, window=7, t_b=100, normalise=True) == pytest.approx(
        got[0, 0] / c.sum() ** 2, rel=1e-12)


def test_labelled_map_records_parameters():
    rng = np.random.default_rng(1)
    da = xr.DataArray(rng.random((50, 3, 4)).astype(np.float32), dims=("t", "y", "x"),
                      coords={"timestep": ("t", TS)}, attrs={"estimator": "hutchinson", "K": 32})
    m = fluctuation_map(da, window=4, t_b=300, normalise=False)
    assert m.dims == ("y", "x")
    assert m.attrs["window"] == 4 and m.attrs["t_b"] == 300.0 and m.attrs["estimator"] == "hutchinson"
    assert m.attrs["normalise"] == 0 and fluctuation_map(da).attrs["normalise"] == 1  # the default normalises
    np.testing.assert_allclose(m.values, fluctuation(da.values, TS, window=4, t_b=300, normalise=False))


def test_bad_inputs():
    c = np.ones((50, 2, 2))
    c[10, 0, 0] = np.nan
    with pytest.raises(WorkbenchError, match="NaN"):
        fluctuation(c, TS, axis=0)
    with pytest.raises(WorkbenchError, match="fewer than the window"):
        fluctuation(np.ones(50), TS, window=10, t_b=900)
    with pytest.raises(WorkbenchError, match="L >= 2"):
        fluctuation(np.ones(50), TS, window=1)
    with pytest.raises(WorkbenchError, match="timesteps"):
        fluctuation(np.ones(50), TS[:-1])


def test_cube_accessor_uses_the_registered_fluctuation():
    import analysis  # noqa: F401  (registers ds.curves.fluctuation)

    rng = np.random.default_rng(2)
    ds = xr.Dataset({"rate": (("image_id", "t", "y", "x"), rng.random((2, 50, 3, 4)).astype(np.float32))},
                    coords={"timestep": ("t", TS)})
    m = ds.curves.fluctuation(window=6, t_b=200, normalise=False)
    assert m.dims == ("image_id", "y", "x") and m.attrs["window"] == 6
    np.testing.assert_allclose(m.values[1], fluctuation(ds["rate"].values[1], TS, window=6, t_b=200, normalise=False))
    from analysis.fluctuation import DEFAULT_NORMALISE, DEFAULT_T_B, DEFAULT_WINDOW

    d = ds.isel(image_id=0).curves.fluctuation()
    assert (d.attrs["window"], d.attrs["t_b"], d.attrs["normalise"]) == (DEFAULT_WINDOW, DEFAULT_T_B, DEFAULT_NORMALISE)


def test_significance_dataset_and_z():
    rng = np.random.default_rng(3)
    N, H, W = 12, 4, 5
    rate = 1 + 0.05 * rng.random((N, H, W))
    rate[:, 0, 0] += 0.5 * np.sin(np.arange(N))  # one pixel fluctuates far more than the others
    se = np.full_like(rate, 0.005)
    da = xr.DataArray(rate, dims=("t", "y", "x"), coords={"timestep": ("t", TS12)})
    ds = fluctuation_significance(da, da.copy(data=se), window=3, t_b=0)
    assert set(ds.data_vars) == {"fluctuation", "fluctuation_se", "z", "p_value"}
    assert ds["z"].dims == ("y", "x") and ds.attrs["window"] == 3
    assert ds["z"].values[0, 0] > 5 and ds["p_value"].values[0, 0] < 1e-6
    np.testing.assert_allclose(ds["fluctuation"].values, raw_fluctuation(rate, TS12, window=3, t_b=0, normalise=True))
    arr = fluctuation_significance(rate, se, TS12, window=3, t_b=0)
    np.testing.assert_allclose(arr["z"], ds["z"].values)


@pytest.mark.parametrize("rho", [0.0, 0.6, 0.9])
def test_error_correlation_recovers_the_ar1_coefficient_from_two_halves(rho):
    from analysis.fluctuation import error_correlation

    rng = np.random.default_rng(5)
    N, P = 20, 3000
    se = 0.01 + 0.05 * rng.random((N, P))  # heteroscedastic over t and pixels
    truth = 1 + rng.random((N, P))

    def half():
        e = np.empty((N, P))
        e[0] = rng.standard_normal(P)
        for t in range(1, N):
            e[t] = rho * e[t - 1] + np.sqrt(1 - rho ** 2) * rng.standard_normal(P)
        return truth + se * e

    assert error_correlation(half(), half(), se, se) == pytest.approx(rho, abs=0.03)
