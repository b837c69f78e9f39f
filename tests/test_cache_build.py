"""cache.build: a cube assembled from arrays, its probe statistics read back, the live batches and the
split-half stability rule."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from cache import schema
from cache.build import batch_sizes, cube_from_arrays, probe_stats_of, split_half_stability
from workbench.uncertainty import stats_from_samples


def test_cube_from_arrays_labels_casts_and_keeps_the_probe_statistics():
    rng = np.random.default_rng(0)
    N, H, W = 3, 2, 4
    s = torch.rand(5, N, 3, H, W, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    stats = stats_from_samples(s, first=8)
    ds = cube_from_arrays(rng.random((N, H, W)), np.array([1, 21, 41]), np.array([0.9, 0.5, 0.1]),
                          np.zeros((2 * H, 2 * W, 3)), attrs={"K": 5, "key": "k"},
                          rate_se=np.full((N, H, W), 0.1), stats=stats)
    assert ds[schema.VAR_RATE].dims == ("t", "y", "x") and ds[schema.VAR_RATE].dtype == np.float32
    assert ds[schema.VAR_RATE_SE].dtype == np.float32 and ds[schema.VAR_IMAGE].dtype == np.uint8
    assert ds[schema.COORD_T].dtype == np.int64 and ds.attrs == {"K": 5, "key": "k", "probe_first": 8}
    back = probe_stats_of(ds)
    assert (back.K, back.first) == (5, 8)
    torch.testing.assert_close(back.sum_s, stats.sum_s)
    torch.testing.assert_close(back.sum_ss, stats.sum_ss)
    assert probe_stats_of(ds.drop_vars(schema.VAR_SUM_SS)) is None


def test_batch_sizes_double_up_to_K():
    assert batch_sizes(32) == [4, 8, 16, 32] and batch_sizes(12, 4) == [4, 8, 12] and batch_sizes(3) == [3]


def test_split_half_stability_is_spearman_brown():
    rng = np.random.default_rng(2)
    a = rng.random((5, 6))
    b = a + 0.3 * rng.random((5, 6))
    r = spearmanr(a.ravel(), b.ravel()).statistic
    assert split_half_stability(a, b) == pytest.approx(2 * r / (1 + r))
    assert split_half_stability(a, a) == pytest.approx(1.0)
    assert split_half_stability(np.ones(4), a.ravel()[:4]) == 0.0  # a constant map: no correlation defined
