"""Scoring an edited image (ours or a baseline's) the same way: preservation outside the mask,
change inside, and the region's generation curve of the output image (re-inverted) against the
reference curve and the original's curve."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ..adapters import ModelAdapter
from ..pipeline import prepare_image
from .config import EditConfig
from .metrics import change_inside, fluctuation, mean_rate_above, psnr_outside, ssim_outside, tv_distance
from .trajectory import channel_curves

__all__ = ["image_region_curve", "score_image"]


def image_region_curve(adapter: ModelAdapter, image_u8: np.ndarray, pixels: list[tuple[int, int]],
                       config: EditConfig) -> np.ndarray:
    """Invert an image (H, W, 3) uint8 at the model's image size with `config.steps` and return the
    mean (over `pixels` and channels) curve, (N,) float64."""
    prep = prepare_image(adapter, Image.fromarray(image_u8), steps=config.steps)
    curves = channel_curves(adapter, prep.trajectory.schedule, prep.trajectory.states, pixels, config.rate)
    return curves.mean((0, 1)).double().numpy()


def score_image(original: np.ndarray, edited: np.ndarray, mask_image: np.ndarray, curve_before: np.ndarray,
                curve_after: np.ndarray, timesteps: np.ndarray, config: EditConfig,
                reference: np.ndarray | None = None) -> dict:
    """The metric dict of one output image. Curves are the region's mean curves (N,)."""
    keep = np.asarray(timesteps) > config.t_b
    m = {
        "psnr_outside": psnr_outside(original, edited, mask_image),
        "ssim_outside": ssim_outside(original, edited, mask_image),
        "change_inside": change_inside(original, edited, mask_image),
        "mean_rate_before": mean_rate_above(curve_before, timesteps, config.t_b),
        "mean_rate_after": mean_rate_above(curve_after, timesteps, config.t_b),
        "fluctuation_before": fluctuation(curve_before, timesteps, window=config.fluct_window, t_b=config.t_b),
        "fluctuation_after": fluctuation(curve_after, timesteps, window=config.fluct_window, t_b=config.t_b),
    }
    if reference is not None:
        m["tv_before"] = tv_distance(curve_before, reference, keep)
        m["tv_after"] = tv_distance(curve_after, reference, keep)
    return m

