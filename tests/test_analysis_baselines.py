"""analysis.baselines: the centre bias by its formula, spectral residual finds the odd patch, chance is seeded."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.baselines import baseline_maps, centre_bias, chance, spectral_residual
from workbench.errors import WorkbenchError


def test_centre_bias_is_the_anisotropic_gaussian():
    m = centre_bias((5, 9), frac=0.25)
    assert m.dtype == np.float32 and m.shape == (5, 9) and m[2, 4] == 1.0
    # one row from the centre: exp(-0.5 (1 / (0.25 * 5))^2); two columns: exp(-0.5 (2 / (0.25 * 9))^2)
    assert m[1, 4] == pytest.approx(np.exp(-0.5 * (1 / 1.25) ** 2), rel=1e-6)
    assert m[2, 6] == pytest.approx(np.exp(-0.5 * (2 / 2.25) ** 2), rel=1e-6)
    np.testing.assert_array_equal(m, m[::-1, ::-1])


def test_spectral_residual_peaks_on_the_odd_patch():
    rng = np.random.default_rng(0)
    img = np.full((48, 64, 3), 120.0) + rng.normal(0, 2, (48, 64, 3))
    img[30:36, 40:46] = 250  # one small bright patch on a flat background
    sal = spectral_residual(img)
    assert sal.shape == (48, 64) and sal.min() == 0.0 and sal.max() == pytest.approx(1.0)
    y, x = np.unravel_index(np.argmax(sal), sal.shape)
    assert 26 <= y <= 40 and 36 <= x <= 50, (y, x)
    assert sal[30:36, 40:46].mean() > 3 * sal[:10, :10].mean()
    with pytest.raises(WorkbenchError, match=r"needs an image \(H, W\) or \(H, W, 3\)"):
        spectral_residual(np.zeros((2, 3, 4, 5)))


def test_chance_is_seeded_and_maps_come_at_the_asked_shape():
    np.testing.assert_array_equal(chance((4, 5), seed=3), np.random.default_rng(3).random((4, 5)).astype(np.float32))
    assert not np.array_equal(chance((4, 5), seed=3), chance((4, 5), seed=4))
    maps = baseline_maps(np.zeros((8, 10, 3)), (8, 10), names=("centre_bias", "chance"))
    assert set(maps) == {"centre_bias", "chance"} and all(m.shape == (8, 10) for m in maps.values())
    with pytest.raises(WorkbenchError, match="unknown baseline 'itti'"):
        baseline_maps(None, (8, 10), names=("itti",))
    with pytest.raises(WorkbenchError, match="positive size, got 3x0"):
        chance((0, 3))
