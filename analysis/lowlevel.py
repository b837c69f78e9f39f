"""Low-level image features: the control readout's inputs (what contrast and colour alone predict).

All computed on the image resized to `width` = 128 px wide (aspect kept), returned as (h, w) float64
maps at that size:

  contrast            local RMS contrast of luminance: sqrt(G_s(L^2) - G_s(L)^2), s = 3 px
  contrast_coarse     the same with s = 10 px
  edges               Sobel gradient magnitude of luminance (skimage.filters.sobel), blurred s = 3 px
  spectral_residual   Hou and Zhang 2007 (`analysis.baselines.spectral_residual`)
  colour              frequency-tuned colour saliency (Achanta et al., CVPR 2009): distance in CIELAB
                      of the slightly blurred image from the image's mean colour
  saturation          HSV saturation, blurred s = 3 px
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from skimage.color import rgb2hsv, rgb2lab
from skimage.filters import sobel

from workbench.errors import WorkbenchError

from .baselines import spectral_residual

__all__ = ["lowlevel_features", "LOWLEVEL_NAMES"]

LOWLEVEL_NAMES = ("contrast", "contrast_coarse", "edges", "spectral_residual", "colour", "saturation")


def _load_rgb(image, width: int) -> np.ndarray:
    if isinstance(image, np.ndarray):
        a = image
        if a.ndim == 2:
            a = np.repeat(a[..., None], 3, -1)
        im = Image.fromarray(np.asarray(a, dtype=np.uint8))
    elif isinstance(image, Image.Image):
        im = image
    else:
        try:
            with Image.open(image) as f:
                im = f.convert("RGB")
        except Exception as exc:
            raise WorkbenchError(f"{image} is not a readable image ({type(exc).__name__})") from None
    im = im.convert("RGB")
    h = max(1, round(width * im.height / im.width))
    return np.asarray(im.resize((width, h), Image.BICUBIC), dtype=np.float64) / 255.0


def lowlevel_features(image, *, width: int = 128) -> dict[str, np.ndarray]:
    """Every low-level feature of an image (path, PIL image or uint8 array): name -> (h, w) float64
    at `width` px wide (module docstring)."""
    rgb = _load_rgb(image, width)
    lum = rgb @ np.array([0.2126, 0.7152, 0.0722])
    out = {}
    for name, s in (("contrast", 3.0), ("contrast_coarse", 10.0)):
        m = gaussian_filter(lum, s, mode="reflect")
        out[name] = np.sqrt(np.maximum(gaussian_filter(lum * lum, s, mode="reflect") - m * m, 0.0))
    out["edges"] = gaussian_filter(sobel(lum), 3.0, mode="reflect")
    out["spectral_residual"] = spectral_residual((rgb * 255).astype(np.uint8)).astype(np.float64)
    lab = rgb2lab(gaussian_filter(rgb, (1.0, 1.0, 0), mode="reflect"))
    out["colour"] = np.sqrt(((lab - lab.reshape(-1, 3).mean(0)) ** 2).sum(-1))
    out["saturation"] = gaussian_filter(rgb2hsv(rgb)[..., 1], 3.0, mode="reflect")
    return {k: out[k] for k in LOWLEVEL_NAMES}
