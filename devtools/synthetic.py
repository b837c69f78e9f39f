"""Synthetic curve cubes for demos, tests and the dashboard benchmark (no model needed).

The curves look like generation curves (a rate that rises towards t = 0) with a
pixel-dependent ripple, so the fluctuation map has structure that follows the image.
"""
from __future__ import annotations

import hashlib

import numpy as np
import xarray as xr

__all__ = ["synthetic_cube", "synthetic_image"]


def synthetic_image(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth uint8 (size, size, 3) test image: gradients and a few discs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.stack([0.3 + 0.5 * xx, 0.3 + 0.5 * yy, 0.5 + 0.2 * np.sin(6 * xx)], -1)
    for _ in range(3):
        cy, cx, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.08, 0.2)
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        img[disc] = rng.uniform(0, 1, 3)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def synthetic_cube(H: int = 64, W: int = 64, N: int = 50, *, image: np.ndarray | None = None, name: str = "synthetic",
                   seed: int = 0, relative_se: float | None = None) -> xr.Dataset:
    """A single-image cube (rate (N, H, W) float32, timesteps 1..981, image, alpha) in the cache schema.

    Its `key` hashes the arrays, so `CubeStore.put` stores distinct cubes for distinct seeds/images.
    relative_se: also a `rate_se` (N, H, W) of relative_se x rate x a pixel factor in [0.2, 1.8)
    (without it the store keeps the SEs unknown, NaN).
    """
    from cache.build import cube_from_arrays

    rng = np.random.default_rng(seed)
    img = synthetic_image(max(H, W), seed) if image is None else np.asarray(image, dtype=np.uint8)
    ts = np.linspace(1, 981, N).round().astype(np.int64)
    s = np.linspace(0, 1, N)[:, None, None]
    from PIL import Image

    grey = np.asarray(Image.fromarray(img).convert("L").resize((W, H)), dtype=np.float32) / 255
    amp = 0.05 + 0.4 * grey[None] + 0.05 * rng.random((1, H, W), dtype=np.float32)
    phase = rng.uniform(0, 2 * np.pi, (1, H, W)).astype(np.float32)
    rate = (np.exp(-4 * s) + amp * np.sin(25 * s + phase) * np.exp(-2 * s) + 0.2).astype(np.float32)
    alphas = np.cos(np.linspace(0.01, 1.5, N)) ** 2
    key = hashlib.sha256(rate.tobytes()[:4096] + img.tobytes()[:4096] + f"{name}{H}{W}{N}{seed}".encode()).hexdigest()
    attrs = {"model_fingerprint": "synthetic", "model_name": "synthetic", "rate_definition": "h",
             "estimator": "hutchinson", "K": 32, "k": 32, "seed": seed, "steps": N, "channel_rule": "mean",
             "scale": 1, "source_image": f"{name}.png", "source_size": [H, W], "package_version": "0",
             "schema_version": "1", "key": key[:32], "complete": 1}
    rate_se = None
    if relative_se is not None:
        rate_se = (relative_se * rate * (0.2 + 1.6 * rng.random((1, H, W)))).astype(np.float32)
        key = hashlib.sha256(key.encode() + f"se{relative_se}".encode()).hexdigest()
        attrs["key"] = key[:32]
    return cube_from_arrays(rate, ts, alphas, img, attrs=attrs, rate_se=rate_se)
