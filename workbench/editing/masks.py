"""Edit masks: reading, checking, mapping onto the model grid, and the blending band.

A mask arrives as a boolean array (H0, W0) in the source image's pixels (white = region when read
from an image file). It is mapped to the model's image size (nearest) and onto the model grid
(fraction of each cell covered, `adapter.mask_to_model`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..adapters import ModelAdapter
from ..errors import WorkbenchError
from ..images import read_image

__all__ = ["read_mask", "check_mask", "mask_to_image_size", "model_mask", "erode", "band", "region_pixels"]


def read_mask(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Mask image (white = region; grey levels thresholded at half) -> bool (H0, W0).

    With `size` = (H0, W0) of the image it belongs to, a different size is a one-line error."""
    pil = read_image(path)
    arr = np.asarray(pil.convert("L")) >= 128
    if size is not None and arr.shape != tuple(size):
        raise WorkbenchError(f"the mask {Path(path).name} is {arr.shape[1]}x{arr.shape[0]} but the image is "
                             f"{size[1]}x{size[0]}: draw the mask on the image itself (same width and height)")
    return arr


def check_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Validate a mask against the image size (H0, W0): same size, not empty, not the whole image."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise WorkbenchError(f"the mask must be a 2-D (H, W) array, got shape {mask.shape}")
    if mask.shape != tuple(size):
        raise WorkbenchError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the image is {size[1]}x{size[0]}: "
                             "draw the mask on the image itself (same width and height)")
    mask = mask.astype(bool)
    if not mask.any():
        raise WorkbenchError("the mask is empty: paint the region to edit in white")
    if mask.all():
        raise WorkbenchError("the mask covers the whole image: a local edit needs some unmasked background")
    return mask


def mask_to_image_size(mask: np.ndarray, adapter: ModelAdapter) -> np.ndarray:
    """bool (H0, W0) -> bool at the model's image size (whole-image nearest resize, like the image)."""
    H, W = adapter.image_size
    pil = Image.fromarray(mask.astype(np.uint8) * 255).resize((W, H), Image.Resampling.BILINEAR)
    return np.asarray(pil) >= 128


def model_mask(mask_image: np.ndarray, adapter: ModelAdapter) -> torch.Tensor:
    """bool mask at the model's image size -> float (H, W) on the model grid (fraction covered)."""
    return adapter.mask_to_model(torch.from_numpy(mask_image.astype(np.float32))).float()


def erode(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Binary erosion of a (H, W) {0,1} mask by a size x size square (outside the image counts as inside)."""
    m = (mask > 0.5).float()[None, None]
    pad = size // 2
    padded = torch.nn.functional.pad(m, (pad, size - 1 - pad, pad, size - 1 - pad), value=1.0)
    return (-torch.nn.functional.max_pool2d(-padded, size, stride=1))[0, 0]


def band(mask: torch.Tensor, size: int) -> torch.Tensor:
    """The blending band: the mask minus its erosion, (H, W) float {0, 1}."""
    m = (mask > 0.5).float()
    b = m - erode(m, size)
    if not (b > 0.5).any():
        raise WorkbenchError("the blending band is empty: the foreground mask is too small on the model grid")
    return b


def region_pixels(region: torch.Tensor) -> torch.Tensor:
    """Model-grid pixels of a region: (P, 2) long (y, x), the cells at least half covered."""
    idx = torch.nonzero(region > 0.5)
    if len(idx) == 0:
        raise WorkbenchError("the region is empty on the model grid: draw a larger mask "
                             "(the model sees the image at a lower resolution)")
    return idx
