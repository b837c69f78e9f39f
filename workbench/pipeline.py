"""From an image file to its trajectory: the steps every command shares."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .adapters import ModelAdapter
from .ddim import INVERSION_FIXED_POINT, Trajectory, invert, make_schedule
from .errors import WorkbenchError
from .images import read_image, to_rgb, to_tensor
from .progress import ProgressFn, emit

__all__ = ["PreparedImage", "prepare_image", "source_to_model_pixel"]


@dataclass(frozen=True)
class PreparedImage:
    """An image as the model sees it: `pixels` (3, H, W) in [-1, 1] at the model's image size,
    `x0` in model space (C, h, w), the `source_size` (H0, W0) it came from, and its `trajectory`."""

    pixels: torch.Tensor
    x0: torch.Tensor
    source_size: tuple[int, int]
    trajectory: Trajectory | None = None


def prepare_image(adapter: ModelAdapter, image: str | Path | Image.Image, *, steps: int = 50,
                  with_trajectory: bool = True, progress: ProgressFn | None = None,
                  fixed_point: int = INVERSION_FIXED_POINT) -> PreparedImage:
    """Read (if a path), resize the whole image to `adapter.image_size`, encode, and DDIM-invert
    (each step refined `refine` times, `workbench.ddim`); `progress`: a `Progress` of phase "invert"
    (steps done of `steps`) after each inversion step."""
    pil = read_image(image) if not isinstance(image, Image.Image) else to_rgb(image)
    pixels = to_tensor(pil, adapter.image_size)
    with torch.no_grad():
        x0 = adapter.encode(pixels[None])[0]
    step = None if progress is None else (lambda info: emit(progress, "invert", info["i"] + 1, steps))
    traj = invert(adapter, x0, make_schedule(adapter, steps), callback=step, fixed_point=fixed_point) if with_trajectory else None
    return PreparedImage(pixels, x0, (pil.height, pil.width), traj)


def source_to_model_pixel(adapter: ModelAdapter, x: int, y: int, source_size: tuple[int, int]) -> tuple[int, int]:
    """Pixel (x, y) of the original image -> (y, x) on the model grid (whole-image resize)."""
    H0, W0 = source_size
    if not (0 <= x < W0 and 0 <= y < H0):
        raise WorkbenchError(f"pixel (x={x}, y={y}) is outside the {W0}x{H0} image: pick 0<=x<{W0}, 0<=y<{H0}")
    H, W = adapter.image_size
    return adapter.image_to_model(int(y * H / H0), int(x * W / W0))
