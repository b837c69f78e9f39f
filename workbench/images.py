"""Reading images from disk into the model's [-1, 1] tensors, with one-line errors."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import WorkbenchError

__all__ = ["read_image", "check_image_file", "to_rgb", "check_pixels", "to_tensor", "to_uint8", "resize_tensor"]


def check_pixels(width: int, height: int, where: str | Path) -> None:
    """Refuse an image larger than PIL's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`)."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit and width * height > limit:
        raise WorkbenchError(f"{where} is {width}x{height} = {width * height / 1e6:.0f} Mpx, more than the "
                             f"{limit / 1e6:.0f} Mpx limit for one image (a decompression bomb?): downscale it first")


def _scale_to_8bit(a: np.ndarray, full_scale: float | None) -> np.ndarray:
    """Grey values -> uint8: divided by `full_scale`/255, or min-max scaled when None."""
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if full_scale is None:
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
    else:
        a = a * (255.0 / full_scale)
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB, scaling high bit depths instead of clipping them.

    I;16*: 0..65535 scaled to 0..255.  I (32-bit int): values within 0..255 kept, within 0..65535
    scaled as 16-bit (16-bit PNGs open as I in some Pillow versions), anything else min-max scaled.
    F (float): within 0..1 scaled by 255, within 0..255 kept, anything else min-max scaled.
    Alpha (RGBA, LA, PA) is dropped, keeping the stored colours; P, 1, L, CMYK, YCbCr convert as PIL does.
    """
    mode = im.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(im)
        lo, hi = (float(np.nanmin(a)), float(np.nanmax(a))) if a.size else (0.0, 0.0)
        if mode.startswith("I;16"):
            full = 65535.0
        elif mode == "I":
            full = 255.0 if lo >= 0 and hi <= 255 else (65535.0 if lo >= 0 and hi <= 65535 else None)
        else:
            full = 1.0 if lo >= 0 and hi <= 1 else (255.0 if lo >= 0 and hi <= 255 else None)
        return Image.fromarray(_scale_to_8bit(a, full)).convert("RGB")
    if mode == "RGB":
        return im.copy()
    try:
        return im.convert("RGBA").convert("RGB") if mode in ("PA", "La") else im.convert("RGB")
    except ValueError as exc:
        raise WorkbenchError(f"images in PIL mode {mode} cannot be read ({exc}): save the image as RGB") from None


def check_image_file(path: str | Path) -> tuple[int, int]:
    """Read only an image's header: (width, height), or a one-line error for a missing, unreadable or
    oversized (decompression bomb) file. Cheap: checks a whole folder before any compute."""
    path = Path(path)
    try:
        with warnings.catch_warnings():  # PIL only warns between 1x and 2x its limit: check_pixels refuses
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            check_pixels(im.width, im.height, path)
            return im.width, im.height
    except Image.DecompressionBombError:
        raise WorkbenchError(f"{path} is larger than the {Image.MAX_IMAGE_PIXELS / 1e6:.0f} Mpx limit for one image "
                             "(a decompression bomb?): downscale it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise WorkbenchError(f"{path} is not a readable image ({type(exc).__name__}): remove it or fix it") from None


def read_image(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB (`to_rgb`); a missing, empty, non-image or oversized file raises
    `WorkbenchError`."""
    path = Path(path)
    if not path.exists():
        raise WorkbenchError(f"no such image: {path} (check the path)")
    if path.is_dir():
        raise WorkbenchError(f"{path} is a directory, not an image file")
    if path.stat().st_size == 0:
        raise WorkbenchError(f"{path} is an empty file: pass a PNG or JPEG image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            check_pixels(im.width, im.height, path)
            im.load()
            return to_rgb(im)
    except Image.DecompressionBombError:
        raise WorkbenchError(f"{path} is larger than the {Image.MAX_IMAGE_PIXELS / 1e6:.0f} Mpx limit for one image "
                             "(a decompression bomb?): downscale it first") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise WorkbenchError(f"{path} is not a readable image ({type(exc).__name__}): pass a PNG or JPEG") from None


def to_tensor(image: Image.Image, size: tuple[int, int] | None = None) -> torch.Tensor:
    """PIL image -> float tensor (3, H, W) in [-1, 1], resized (whole image, Lanczos) to `size`=(H, W)."""
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    arr = np.asarray(to_rgb(image), dtype=np.float32)
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
