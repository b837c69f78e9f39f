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


def poisson_blend(composite: np.ndarray, mask: np.ndarray, *, grow: int = 2, iters: int = 2000,
                  tol: float = 1e-6) -> np.ndarray:
    """Poisson blending (Perez et al. 2003, "seamless cloning") of a composite's foreground into its
    background: inside the domain Omega, f solves the Poisson equation lap f = lap g with f = the
    composite on Omega's boundary (the background), g the foreground.

    The composite has no separate foreground image, so g is the foreground extended beyond its mask
    (each outside pixel takes its nearest foreground pixel) and Omega is the mask grown by `grow`
    pixels: the guidance field is then the foreground's own gradient, not the seam's. Solved by
    conjugate gradients per channel (5-point Laplacian, image borders as Neumann boundaries).
    """
    import cv2

    omega = cv2.dilate(mask.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0
    g = _extend_foreground(composite, mask).astype(np.float64)
    dst = composite.astype(np.float64)
    H, W = mask.shape
    inside = np.zeros((H + 2, W + 2), bool)
    inside[1:-1, 1:-1] = True
    om = np.zeros_like(inside)
    om[1:-1, 1:-1] = omega
    shifts = [(0, 1), (0, -1), (1, 0), (-1, 0)]

    def nb(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
        return a[1 + dy:H + 1 + dy, 1 + dx:W + 1 + dx]

    degree = sum(nb(inside, dy, dx).astype(np.float64) for dy, dx in shifts)
    out = composite.copy()
    for c in range(composite.shape[2]):
        gp = np.zeros((H + 2, W + 2))
        gp[1:-1, 1:-1] = g[..., c]
        dp = np.zeros((H + 2, W + 2))
        dp[1:-1, 1:-1] = dst[..., c]
        # b = sum over in-image neighbours of (g_p - g_q), plus the known boundary values f_q = dst_q
        b = sum((g[..., c] - nb(gp, dy, dx)) * nb(inside, dy, dx)
                + nb(dp, dy, dx) * (nb(inside, dy, dx) & ~nb(om, dy, dx)) for dy, dx in shifts)

        def A(x: np.ndarray) -> np.ndarray:
            xp = np.zeros((H + 2, W + 2))
            xp[1:-1, 1:-1] = x * omega
            return (degree * x - sum(nb(xp, dy, dx) for dy, dx in shifts)) * omega

        x = dst[..., c] * omega
        r = b * omega - A(x)
        p, rs = r.copy(), float((r * r).sum())
        for _ in range(iters):
            if rs <= tol * tol * max(1.0, float((b * b * omega).sum())):
                break
            Ap = A(p)
            alpha = rs / float((p * Ap).sum())
            x += alpha * p
            r -= alpha * Ap
            rs_new = float((r * r).sum())
            p = r + (rs_new / rs) * p
            rs = rs_new
        out[..., c] = np.where(omega, np.clip(x + 0.5, 0, 255), composite[..., c]).astype(np.uint8)
    return out


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
