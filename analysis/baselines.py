"""Baseline saliency maps that every experiment reports beside the fluctuation map.

  centre_bias         an anisotropic Gaussian at the image centre (sigma = `frac` x height/width); the
                      strongest single cue of free-viewing fixations (Tatler 2007, Judd et al. 2009)
  spectral_residual   Hou and Zhang, "Saliency detection: a spectral residual approach", CVPR 2007:
                      grey image at 64 px width, log amplitude spectrum minus its 3x3 local mean,
                      inverse FFT with the original phase, squared, Gaussian blur (sigma 8 px at 64),
                      brought back to the image's size with `analysis.datasets.resize_map`
  chance              i.i.d. uniform noise, seeded: what a map that knows nothing scores
All return float32 maps (H, W) with values in [0, 1].
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, uniform_filter

from workbench.errors import WorkbenchError
from workbench.images import read_image

from .datasets import resize_map

__all__ = ["centre_bias", "spectral_residual", "chance", "BASELINES", "baseline_maps"]


def _size(shape) -> tuple[int, int]:
    H, W = (int(v) for v in tuple(shape)[:2])
    if H < 1 or W < 1:
        raise WorkbenchError(f"a map needs a positive size, got {W}x{H}")
    return H, W


def centre_bias(shape: tuple[int, int], *, frac: float = 0.25) -> np.ndarray:
    """Gaussian centre-bias map (H, W): exp(-((y-yc)^2/(2(frac H)^2) + (x-xc)^2/(2(frac W)^2))), peak 1."""
    H, W = _size(shape)
    y = (np.arange(H) - (H - 1) / 2) / (frac * H)
    x = (np.arange(W) - (W - 1) / 2) / (frac * W)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2)).astype(np.float32)


def spectral_residual(image, *, width: int = 64, blur_sigma: float = 8.0, avg_size: int = 3) -> np.ndarray:
    """Spectral-residual saliency (Hou and Zhang 2007) of an RGB/grey image (PIL, path or (H, W[, 3])
    array), returned at the image's own size (H, W) in [0, 1]."""
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        image = read_image(image)
    if isinstance(image, Image.Image):
        gray = np.asarray(image.convert("L"), dtype=np.float64)
    else:
        a = np.asarray(image, dtype=np.float64)
        gray = a.mean(-1) if a.ndim == 3 else a
    if gray.ndim != 2:
        raise WorkbenchError(f"spectral_residual needs an image (H, W) or (H, W, 3), got shape {gray.shape}")
    H, W = gray.shape
    h = max(1, round(width * H / W))
    small = resize_map(gray, (h, width)).astype(np.float64)
    F = np.fft.fft2(small)
    log_amp = np.log(np.abs(F) + 1e-12)
    residual = log_amp - uniform_filter(log_amp, size=avg_size, mode="nearest")
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(F)))) ** 2
    sal = gaussian_filter(sal, blur_sigma * width / 64)
    out = resize_map(sal.astype(np.float32), (H, W))
    lo, hi = float(out.min()), float(out.max())
    return ((out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)).astype(np.float32)


def chance(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Uniform random map (H, W) in [0, 1) from `seed`."""
    return np.random.default_rng(seed).random(_size(shape)).astype(np.float32)


#: the baselines by name, each a function of (image path or PIL, (H, W), seed)
BASELINES = {
    "centre_bias": lambda image, shape, seed: centre_bias(shape),
    "spectral_residual": lambda image, shape, seed: spectral_residual(image),
    "chance": lambda image, shape, seed: chance(shape, seed),
}


def baseline_maps(image, shape: tuple[int, int], *, seed: int = 0, names=tuple(BASELINES)) -> dict[str, np.ndarray]:
    """Every requested baseline map for one image, at `shape` (the image's own resolution)."""
    out = {}
    for n in names:
        if n not in BASELINES:
            raise WorkbenchError(f"unknown baseline {n!r}: choose from {', '.join(BASELINES)}")
        m = BASELINES[n](image, shape, seed)
        out[n] = m if m.shape == tuple(shape) else resize_map(m, shape)
    return out
