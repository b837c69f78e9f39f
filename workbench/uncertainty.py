"""Standard errors of Hutchinson rates, and the sufficient statistics that let probes be added later.

For one element i (pixel (y, x), channel c) and probe u_k, the sample s_k = (J^T u_k)_i^2 has
mean ||J e_i||^2 (Hutchinson). K probes give, per element, the sums

    S1_c = sum_k s_kc            S2_cc' = sum_k s_kc s_kc'   (c <= c', the channels of one pixel)

and these (with K and the probe range [first, first + K)) are all the estimate and its error
need: two blocks of probes merge exactly by adding them (`merge_stats`), so K then K more probes
give the same numbers as 2K at once (up to float64 rounding).

From the sums: m_c = S1_c / K estimates the squared element rate, and the sample covariance of the
samples across channels, Sigma_cc' = (S2_cc' - K m_c m_c') / (K - 1), estimates their covariance.
The element rate is sqrt(m_c); the pixel rate follows `rates.pixel_rates`: the mean over channels
of the element rates (or one channel). Its standard error by the delta method through the square
root and the channel mean, with the channels' covariance (they share the probes):

    rate = (1/C) sum_c sqrt(m_c),  w_c = 1 / (2 C sqrt(m_c)),  rate_se = sqrt(w^T Sigma w / K)

For one channel (C = 1) this is se(m) / (2 sqrt(m)). With Gaussian probes s_kc / ||J e_c||^2 ~
chi2(1), so the relative standard error of a rate is about 1/sqrt(2K) (K = 64: 8.8%).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import WorkbenchError

__all__ = ["ProbeStats", "RatesWithSE", "channel_pairs", "stats_from_samples", "merge_stats", "element_rates_se",
           "pixel_rates_se"]


def channel_pairs(C: int) -> list[tuple[int, int]]:
    """The (c, c') pairs with c <= c' in the order `ProbeStats.sum_ss` stores them (row-major upper triangle)."""
    return [(a, b) for a in range(C) for b in range(a, C)]


@dataclass(frozen=True)
class ProbeStats:
    """Sufficient statistics of K Hutchinson probes per element.

    K: probes summed; first: index of the first probe (the probes are first .. first + K - 1 of their
    seed, so blocks with adjacent ranges merge). sum_s: (..., C, H, W) float64, sum over probes of the
    squared VJP entries. sum_ss: (..., C(C+1)/2, H, W) float64, sum over probes of the products of the
    squared entries of two channels of the same pixel, pairs in `channel_pairs(C)` order.
    Leading dims (e.g. the timestep) are free.
    """

    K: int
    first: int
    sum_s: torch.Tensor
    sum_ss: torch.Tensor

    @property
    def channels(self) -> int:
        return int(self.sum_s.shape[-3])

    def mean(self) -> torch.Tensor:
        """m_c: the estimate of the squared element rates (..., C, H, W)."""
        return self.sum_s / self.K

    def covariance(self) -> torch.Tensor:
        """Sample covariance (ddof 1) of the samples across channels: (..., C, C, H, W); NaN for K < 2."""
        C, m = self.channels, self.mean()
        cov = torch.empty(*m.shape[:-3], C, C, *m.shape[-2:], dtype=m.dtype, device=m.device)
        for j, (a, b) in enumerate(channel_pairs(C)):
            v = ((self.sum_ss[..., j, :, :] - self.K * m[..., a, :, :] * m[..., b, :, :]) / (self.K - 1)
                 if self.K > 1 else torch.full_like(m[..., a, :, :], float("nan")))
            cov[..., a, b, :, :] = v
            cov[..., b, a, :, :] = v
        return cov


@dataclass(frozen=True)
class RatesWithSE:
    """Rates and their standard errors, same shape, same units (the rate's)."""

    rate: torch.Tensor
    rate_se: torch.Tensor


def stats_from_samples(s: torch.Tensor, *, first: int = 0) -> ProbeStats:
    """Statistics of the samples s (K, ..., C, H, W) = (J^T u_k)^2 of probes first .. first + K - 1."""
    s = s.double()
    C = s.shape[-3]
    ss = torch.stack([(s[..., a, :, :] * s[..., b, :, :]).sum(0) for a, b in channel_pairs(C)], dim=-3)
    return ProbeStats(K=int(s.shape[0]), first=int(first), sum_s=s.sum(0), sum_ss=ss)


def merge_stats(a: ProbeStats, b: ProbeStats) -> ProbeStats:
    """The statistics of both probe blocks, exactly as if they had run at once. The blocks must be
    adjacent probe ranges of the same seed (no probe counted twice, none skipped)."""
    if a.sum_s.shape != b.sum_s.shape or a.sum_ss.shape != b.sum_ss.shape:
        raise WorkbenchError(f"cannot merge probe statistics of shapes {tuple(a.sum_s.shape)} and "
                             f"{tuple(b.sum_s.shape)}: they describe different cubes")
    lo, hi = (a, b) if a.first <= b.first else (b, a)
    if lo.first + lo.K != hi.first:
        raise WorkbenchError(f"probe blocks [{lo.first}, {lo.first + lo.K}) and [{hi.first}, {hi.first + hi.K}) "
                             "are not adjacent: refine with probes starting where the last block ended")
    return ProbeStats(K=a.K + b.K, first=lo.first, sum_s=a.sum_s + b.sum_s, sum_ss=a.sum_ss + b.sum_ss)


def element_rates_se(stats: ProbeStats) -> RatesWithSE:
    """Element rates sqrt(m_c) and their delta-method SEs se(m_c) / (2 sqrt(m_c)): (..., C, H, W) float64."""
    m = stats.mean().clamp_min(0)
    var = torch.diagonal(stats.covariance(), dim1=-4, dim2=-3)  # (..., H, W, C)
    var = var.movedim(-1, -3)
    r = m.sqrt()
    se = (var.clamp_min(0) / stats.K).sqrt() / (2 * r.clamp_min(torch.finfo(r.dtype).tiny))
    return RatesWithSE(r, se)


def pixel_rates_se(stats: ProbeStats, channel: int | None = None) -> RatesWithSE:
    """Pixel rates (the `rates.pixel_rates` rule: mean over channels of the element rates, or one
    channel) and their delta-method SEs with the channels' sample covariance: (..., H, W) float64.
    The SE is NaN when K < 2 (no sample variance) and 0 where every sample was 0."""
    C = stats.channels
    if channel is not None:
        if not 0 <= channel < C:
            raise WorkbenchError(f"channel {channel} out of range: the model has {C} channels (0..{C - 1})")
        e = element_rates_se(stats)
        return RatesWithSE(e.rate[..., channel, :, :], e.rate_se[..., channel, :, :])
    r = stats.mean().clamp_min(0).sqrt()
    w = 1 / (2 * C * r.clamp_min(torch.finfo(r.dtype).tiny))  # (..., C, H, W)
    cov = stats.covariance()
    var = torch.einsum("...ayx,...abyx,...byx->...yx", w, cov, w) / stats.K
    return RatesWithSE(r.mean(-3), var.clamp_min(0).sqrt())
