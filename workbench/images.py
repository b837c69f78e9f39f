"""Reading images from disk into the model's [-1, 1] tensors, with one-line errors."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import WorkbenchError

__all__ = ["read_image", "to_tensor", "to_uint8", "resize_tensor"]


def read_image(path: str | Path) -> Image.Image:
    """Open an RGB image; a missing, empty or non-image file raises `WorkbenchError`."""
    path = Path(path)
    if not path.exists():
        raise WorkbenchError(f"no such image: {path} (check the path)")
    if path.is_dir():
        raise WorkbenchError(f"{path} is a directory, not an image file")
    if path.stat().st_size == 0:
        raise WorkbenchError(f"{path} is an empty file: pass a PNG or JPEG image")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise WorkbenchError(f"{path} is not a readable image ({type(exc).__name__}): pass a PNG or JPEG") from None


def to_tensor(image: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """PIL image -> float tensor (3, H, W) in [-1, 1], resized (whole image, Lanczos) to `size`=(H, W)."""
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Tensor (3, H, W) in [-1, 1] -> uint8 array (H, W, 3)."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round()
    return x.permute(1, 2, 0).numpy().astype(np.uint8)


def resize_tensor(x: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize a (..., H, W) tensor to `size`; antialiased when shrinking."""
    lead = x.shape[:-2]
    x4 = x.reshape(-1, 1, *x.shape[-2:]).float()
    kw = {"align_corners": False, "antialias": True} if mode in ("bilinear", "bicubic") else {}
    out = torch.nn.functional.interpolate(x4, size=tuple(size), mode=mode, **kw)
    return out.reshape(*lead, *size)
