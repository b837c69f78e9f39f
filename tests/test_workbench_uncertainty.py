"""workbench.uncertainty: probe statistics merge exactly, and their standard errors are calibrated."""
from __future__ import annotations

import numpy as np
import torch

from workbench.estimators import hutchinson_stats_batched, probe_block
from workbench.uncertainty import channel_pairs, merge_stats, pixel_rates_se, stats_from_samples


def test_merge_of_samples_is_exact_and_order_free():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(10, 2, 3, 2, 2, generator=g, dtype=torch.float64)
    whole = stats_from_samples(s)
    a, b = stats_from_samples(s[:3]), stats_from_samples(s[3:], first=3)
    for m in (merge_stats(a, b), merge_stats(b, a)):
        torch.testing.assert_close(m.sum_s, whole.sum_s, rtol=1e-14, atol=0)
        torch.testing.assert_close(m.sum_ss, whole.sum_ss, rtol=1e-14, atol=0)
        assert (m.K, m.first) == (10, 0)
    assert channel_pairs(3) == [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)]
    cov = whole.covariance()[0, :, :, 1, 0].numpy()
    np.testing.assert_allclose(cov, np.cov(s[:, 0, :, 1, 0].numpy(), rowvar=False), rtol=1e-12)
    assert torch.isnan(pixel_rates_se(stats_from_samples(s[:1])).rate_se).all()  # K = 1: no variance


def test_se_is_calibrated_against_the_spread_of_repeated_estimates():
    """On a linear map with correlated channels (dense truth), 400 independent K=32 estimates: the
    mean predicted SE matches the empirical SD of the estimates, and about 95% of the estimates
    lie within 2 SE of the true rate."""
    C, H, W, m, K, R = 3, 3, 3, 40, 32, 400
    g = torch.Generator().manual_seed(2)
    base = torch.randn(m, 1, H, W, generator=g, dtype=torch.float64)
    A = (base + 0.6 * torch.randn(m, C, H, W, generator=g, dtype=torch.float64)).reshape(m, -1)  # correlated channels
    A32 = A.float()
    f = lambda x: x.reshape(len(x), -1) @ A32.T  # noqa: E731
    truth = A.pow(2).sum(0).sqrt().reshape(C, H, W).mean(0)
    x = torch.zeros(1, C, H, W)
    est, se = [], []
    for r in range(R):
        st = hutchinson_stats_batched(f, x, probe_block((m,), 0, r * K, K), first=r * K)
        out = pixel_rates_se(st)
        est.append(out.rate[0])
        se.append(out.rate_se[0])
    est, se = torch.stack(est), torch.stack(se)
    ratio = se.mean(0) / est.std(0)
    assert ((ratio > 0.85) & (ratio < 1.15)).all(), ratio
    cover = ((est - truth).abs() <= 2 * se).double().mean().item()
    assert 0.91 <= cover <= 0.98, cover
