"""Quality figures of a pixel-space model on held-out photographs: denoising loss at several t,
DDIM invert-then-generate reconstruction PSNR, a grid of samples, and the period-8 grid power of
the samples' fluctuation maps (the U-Net's 8x downsampling shows as an 8-pixel grid)."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .adapters import ModelAdapter
from .ddim import ddim_loop, make_schedule, reconstruction_psnr
from .images import read_image, to_tensor, to_uint8

__all__ = ["photo_batch", "heldout_losses", "reconstruction_psnrs", "sample_grid", "generate_samples", "tile_grid",
           "fluctuation_maps", "EVAL_TIMESTEPS"]

EVAL_TIMESTEPS = (50, 250, 500, 750, 950)


def photo_batch(adapter: ModelAdapter, files) -> torch.Tensor:
    """Whole-photo resizes of `files` to the model grid: (n, 3, H, W) in [-1, 1] on the adapter's device."""
    return torch.stack([to_tensor(read_image(f), adapter.image_size) for f in files]).to(adapter.device)


def heldout_losses(adapter: ModelAdapter, files, ts=(50, 250, 500, 750, 950), seed: int = 0) -> dict[int, float]:
    """Mean squared epsilon-prediction error per timestep on whole-image resizes of `files`."""
    x0 = photo_batch(adapter, files)
    g = torch.Generator().manual_seed(seed)
    out = {}
    with torch.no_grad():
        for t in ts:
            a = float(adapter.alphas_cumprod[t])
            noise = torch.randn(x0.shape, generator=g).to(x0.device)
            xt = a ** 0.5 * x0 + (1 - a) ** 0.5 * noise
            out[int(t)] = float((adapter.eps(xt, t) - noise).pow(2).mean())
    return out


def reconstruction_psnrs(adapter: ModelAdapter, files, steps: int = 50) -> np.ndarray:
    """PSNR (dB) of DDIM-`steps` inversion followed by generation, one per image."""
    x0 = photo_batch(adapter, files)
    sched = make_schedule(adapter, steps)
    xT = ddim_loop(adapter, x0, sched, direction="invert")
    rec = ddim_loop(adapter, xT, sched, direction="generate")
    return reconstruction_psnr(x0, rec).cpu().numpy()


def generate_samples(adapter: ModelAdapter, n: int = 16, steps: int = 50, seed: int = 0) -> torch.Tensor:
    """n DDIM-`steps` samples from seeded Gaussian noise, decoded: (n, 3, H, W) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    xT = torch.randn((n, *adapter.model_shape), generator=g).to(adapter.device)
    x = ddim_loop(adapter, xT, make_schedule(adapter, steps), direction="generate")
    return torch.cat([adapter.decode(x[i:i + 1]) for i in range(n)]).clamp(-1, 1)


def sample_grid(adapter: ModelAdapter, n: int = 16, steps: int = 50, seed: int = 0) -> Image.Image:
    """A square grid of n DDIM samples from Gaussian noise."""
    return tile_grid(generate_samples(adapter, n, steps, seed))


def tile_grid(images: torch.Tensor) -> Image.Image:
    """Images (n, 3, H, W) in [-1, 1] tiled row-major into a square grid."""
    n = len(images)
    side = int(np.ceil(np.sqrt(n)))
    tiles = [to_uint8(images[i]) for i in range(n)]
    h, w, _ = tiles[0].shape
    grid = np.zeros((side * h, side * w, 3), np.uint8)
    for i, tile in enumerate(tiles):
        grid[(i // side) * h:(i // side + 1) * h, (i % side) * w:(i % side + 1) * w] = tile
    return Image.fromarray(grid)


def fluctuation_maps(adapter: ModelAdapter, images: torch.Tensor, *, steps: int = 20, K: int = 8, window: int = 3,
                     t_b: float = 0, seed: int = 0) -> np.ndarray:
    """Fluctuation maps (n, H, W) of images (n, 3, H, W) in [-1, 1]: DDIM-`steps` inversion, Hutchinson
    rate cube (h-space rate, K probes), windowed variance of the sum-normalised curves (DESIGN.md 1)."""
    from .estimators import rate_cube
    from .fluctuation import fluctuation
    from .pipeline import prepare_image

    maps = []
    for img in images:
        prep = prepare_image(adapter, Image.fromarray(to_uint8(img)), steps=steps)
        cube = rate_cube(adapter, prep.trajectory, estimator="hutchinson", K=K, seed=seed)
        maps.append(fluctuation(cube.numpy(), prep.trajectory.schedule.timesteps.cpu().numpy(), window=window,
                                t_b=t_b, axis=0, normalise=True))
    return np.stack(maps)
