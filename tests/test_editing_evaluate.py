"""workbench.editing.evaluate: the metric dict of an edit, by hand on small inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from workbench.editing import EditConfig
from workbench.editing.evaluate import score_image


def test_score_image_by_hand():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    b = a.copy()
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True
    b[mask] = 255 - a[mask]  # only the inside changes
    ts = np.array([50, 150, 250, 350, 450])
    before, after = np.array([9.0, 1, 2, 3, 4]), np.array([9.0, 2, 2, 2, 2])
    ref = np.array([9.0, 1, 1, 1, 1])
    m = score_image(a, b, mask, before, after, ts, EditConfig(t_b=100, fluct_window=2), reference=ref)
    _, smap = structural_similarity(a, b, channel_axis=-1, data_range=255, full=True)
    assert m["psnr_outside"] == math.inf and m["ssim_outside"] == pytest.approx(smap.mean(-1)[~mask].mean())
    assert m["mean_rate_before"] == pytest.approx(2.5) and m["mean_rate_after"] == pytest.approx(2.0)
    # windows of 2 over (1, 2, 3, 4): each variance 0.25; over (2, 2, 2, 2): 0
    assert m["fluctuation_before"] == pytest.approx(0.25) and m["fluctuation_after"] == 0
    # total variation between the curves normalised over t > t_b: before (.1 .2 .3 .4) vs ref (.25 x 4)
    assert m["tv_before"] == pytest.approx(0.5 * (0.15 + 0.05 + 0.05 + 0.15))
    assert m["tv_after"] == pytest.approx(0.0)
    assert m["change_inside"] > 0
    assert "tv_before" not in score_image(a, b, mask, before, after, ts, EditConfig(t_b=100, fluct_window=2))
