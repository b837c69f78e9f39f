"""analysis.pixelcurves against hand computations."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from analysis.pixelcurves import curve_scale, pixel_curve, significance_text, significant


def _cube():
    rate = np.arange(5 * 3 * 4, dtype=np.float32).reshape(5, 3, 4) + 1
    se = rate * 0.1
    ts = np.array([1, 200, 400, 600, 800])
    return xr.Dataset({"rate": (("t", "y", "x"), rate), "rate_se": (("t", "y", "x"), se)},
                      coords={"timestep": ("t", ts)})


def test_pixel_curve_is_normalised_over_t_above_t_b_with_its_se():
    ds = _cube()
    c, se = pixel_curve(ds, 1, 2, t_b=300, normalise=True)
    raw = ds["rate"].values[:, 1, 2].astype(np.float64)
    total = raw[2:].sum()  # timesteps 400, 600, 800
    np.testing.assert_allclose(c, raw / total)
    np.testing.assert_allclose(se, 0.1 * raw / total, rtol=1e-6)
    c2, _ = pixel_curve(ds, 1, 2, t_b=300, normalise=False)
    np.testing.assert_allclose(c2, raw)
    assert curve_scale(np.zeros(5), ds["timestep"].values, 300, True) == 1.0


def test_significance_is_one_sided():
    z = np.array([[3.0, -3.0], [1.0, np.nan]])
    assert significant(z, "higher").tolist() == [[True, False], [False, False]]
    assert significant(z, "lower").tolist() == [[False, True], [False, False]]
    with pytest.raises(ValueError):
        significant(z, "both")
    assert "higher than the image median" in significance_text("higher") and "z > 2" in significance_text("higher")
