"""Edit metrics that need no extra weights (DESIGN.md section 4).

Images are uint8 arrays (H, W, 3) at the model's image size; masks bool (H, W) at that size.
Curves are 1-D arrays over the ascending DDIM timesteps.
"""
from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from ..fluctuation import fluctuation as fluctuation_kernel

__all__ = ["psnr_outside", "ssim_outside", "change_inside", "tv_distance", "fluctuation", "mean_rate_above"]


def psnr_outside(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB (peak 255) over the pixels outside `mask`; inf when they are identical."""
    out = ~mask
    if not out.any():
        return float("nan")
    mse = np.mean((a[out].astype(np.float64) - b[out].astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim_outside(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean of the SSIM map (scikit-image, 7x7 window, channel-averaged) over the pixels outside `mask`."""
    win = min(7, a.shape[0], a.shape[1])
    win -= 1 - win % 2
    _, smap = structural_similarity(a, b, channel_axis=-1, data_range=255, full=True, win_size=win)
    return float(smap.mean(-1)[~mask].mean())


def change_inside(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute change inside `mask`, in [0, 1] intensity units."""
    return float(np.abs(a[mask].astype(np.float64) - b[mask].astype(np.float64)).mean() / 255.0)


def tv_distance(p: np.ndarray, q: np.ndarray, keep: np.ndarray | None = None) -> float:
    """Total-variation distance 0.5 * sum |p - q| of two curves normalised to distributions
    (over the timesteps where `keep` is true, all by default)."""
    p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
    if keep is not None:
        p, q = p[keep], q[keep]
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def fluctuation(curve: np.ndarray, timesteps: np.ndarray, *, window: int, t_b: float) -> float:
    """Fluctuation of one curve (N,) over t > t_b (`workbench.fluctuation`, raw curve); NaN when fewer
    than `window` timesteps lie above t_b, so a short editing trajectory still gets its other metrics."""
    if int((np.asarray(timesteps) > t_b).sum()) < window:
        return float("nan")
    return float(fluctuation_kernel(curve, timesteps, window=window, t_b=t_b))


def mean_rate_above(curve: np.ndarray, timesteps: np.ndarray, t_b: float) -> float:
    """Mean rate of a curve over t > t_b (what the pseudo-curve, saliency and blending losses move)."""
    c = np.asarray(curve, np.float64)[np.asarray(timesteps) > t_b]
    return float(c.mean()) if len(c) else float("nan")
