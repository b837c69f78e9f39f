"""Classical baselines for comparison: inpainting (object removal) and Poisson blending.

All take and return uint8 RGB arrays (H, W, 3) with a bool mask (H, W) of the same size.
"""
from __future__ import annotations

import numpy as np

__all__ = ["biharmonic_inpaint", "telea_inpaint", "poisson_blend", "BASELINES"]


def biharmonic_inpaint(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill `mask` by biharmonic inpainting (scikit-image `inpaint_biharmonic`)."""
    from skimage.restoration import inpaint_biharmonic

    out = inpaint_biharmonic(image.astype(np.float64) / 255.0, mask, channel_axis=-1)
    return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8)


def telea_inpaint(image: np.ndarray, mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """Fill `mask` by Telea's fast-marching inpainting (OpenCV `INPAINT_TELEA`, `radius` pixels)."""
    import cv2

    return cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8) * 255, radius, cv2.INPAINT_TELEA)


def poisson_blend(composite: np.ndarray, mask: np.ndarray, *, grow: int = 2, pad: int = 8) -> np.ndarray:
    """Poisson blending (OpenCV seamless cloning) of a composite's foreground into its background.

    The composite has no separate foreground image, so the foreground is extended beyond its mask
    (each outside pixel takes its nearest foreground pixel) and cloned over the mask grown by `grow`
    pixels: the guidance field is
    then the foreground's own gradient, not the seam's, and the boundary values come from the
    background. Images are reflect-padded so that masks touching the border can be cloned.
    """
    import cv2

    # the cloned domain reaches `grow` pixels into the background, so its boundary values are background
    m8 = cv2.dilate(mask.astype(np.uint8) * 255, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    fg = _extend_foreground(composite, mask)
    src = cv2.copyMakeBorder(fg, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    dst = cv2.copyMakeBorder(np.ascontiguousarray(composite), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    mp = cv2.copyMakeBorder(m8, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    ys, xs = np.nonzero(mp)
    # seamlessClone centres the mask's bounding box on `center`; the box is [min, max] inclusive
    center = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
    out = cv2.seamlessClone(src, dst, mp, center, cv2.NORMAL_CLONE)
    return out[pad:-pad, pad:-pad]


def _extend_foreground(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with every pixel outside `mask` replaced by its nearest foreground pixel."""
    import cv2

    inv = (~mask).astype(np.uint8)
    _, labels = cv2.distanceTransformWithLabels(inv, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    ys, xs = np.nonzero(~inv.astype(bool))
    lut_y = np.zeros(labels.max() + 1, np.int64)
    lut_x = np.zeros(labels.max() + 1, np.int64)
    lab = labels[ys, xs]
    lut_y[lab], lut_x[lab] = ys, xs
    return np.ascontiguousarray(image[lut_y[labels], lut_x[labels]])


#: task -> {name: function(image, mask) -> image}
BASELINES = {
    "removal": {"biharmonic": biharmonic_inpaint, "telea": telea_inpaint},
    "blending": {"poisson": poisson_blend},
}
