"""workbench.editing.metrics against scikit-image and hand computations."""
from __future__ import annotations

import numpy as np
import pytest

from workbench.editing.metrics import fluctuation, psnr_outside, ssim_outside, tv_distance


def test_metrics_against_independent_computations():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:20, 8:20] = True
    assert psnr_outside(a, b, mask) == pytest.approx(peak_signal_noise_ratio(a[~mask], b[~mask], data_range=255))
    _, smap = structural_similarity(a, b, channel_axis=-1, data_range=255, full=True)
    assert ssim_outside(a, b, mask) == pytest.approx(smap.mean(-1)[~mask].mean())
    assert psnr_outside(a, a, mask) == float("inf") and ssim_outside(a, a, mask) == pytest.approx(1.0)
    assert tv_distance(np.array([1, 1, 2.0]), np.array([2, 1, 1.0])) == pytest.approx(0.25)
    assert tv_distance(np.array([1, 5, 2.0]), np.array([9, 1, 2.0]), np.array([False, True, True])) == pytest.approx(
        0.5 * (abs(5 / 7 - 1 / 3) + abs(2 / 7 - 2 / 3)))


def test_region_fluctuation_is_the_windowed_variance_above_t_b():
    rng = np.random.default_rng(2)
    ts = np.arange(0, 1000, 50)
    c = rng.random(len(ts))
    for window, t_b in ((3, 100), (5, 0), (4, 420)):
        kept = c[ts > t_b]
        by_hand = np.mean([np.var(kept[w:w + window]) for w in range(len(kept) - window + 1)])
        assert fluctuation(c, ts, window=window, t_b=t_b) == pytest.approx(by_hand)
    assert np.isnan(fluctuation(c, ts, window=5, t_b=900))  # too few timesteps above t_b: NaN, not an error
