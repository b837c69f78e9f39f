"""dashboards.figures: block-mean downsampling and clicks on the grid."""
from __future__ import annotations

import numpy as np
import pytest

from dashboards import figures


def test_downsample_is_block_mean_with_centres():
    v = np.arange(8 * 6, dtype=np.float32).reshape(8, 6)
    z, xs, ys = figures.downsample(v, max_side=4)  # factor 2
    assert z.shape == (4, 3)
    assert z[1, 2] == pytest.approx(v[2:4, 4:6].mean())
    np.testing.assert_allclose(xs, [0.5, 2.5, 4.5])
    np.testing.assert_allclose(ys, [0.5, 2.5, 4.5, 6.5])
    z1, xs1, _ = figures.downsample(v, max_side=8)
    assert z1 is not None and z1.shape == v.shape and xs1[-1] == 5


def test_click_to_pixel_rounds_to_grid_cells_and_rejects_outside():
    assert figures.click_to_pixel({"points": [{"x": 3.4, "y": 6.6}]}, (10, 10)) == (7, 3)
    assert figures.click_to_pixel({"points": [{"x": -0.7, "y": 1}]}, (10, 10)) is None
    assert figures.click_to_pixel({"points": []}, (10, 10)) is None
    assert figures.click_to_pixel(None, (10, 10)) is None
