"""Quality figures of a pixel-space model on held-out photographs: denoising loss at several t,
DDIM invert-then-generate reconstruction PSNR, a grid of samples, and the period-8 grid power of
the samples' fluctuation maps (the U-Net's 8x downsampling shows as an 8-pixel grid).

Generation, which the denoising figures cannot see (predicting eps from almost pure noise is
trivial, yet an epsilon model's x0 from it is amplified by 1 / sqrt(abar)): the model's x0 from
pure noise at high t, and statistics of DDIM samples against photos (spatial std, a distance
between the per-image mean colours, the radially averaged power-spectrum slope)."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .adapters import ModelAdapter
from .ddim import INVERSION_FIXED_POINT, ddim_loop, make_schedule, reconstruction_psnr
from .estimators import ProbeOptions, rate_cube
from .fluctuation import fluctuation
from .images import read_image, to_tensor, to_uint8
from .pipeline import prepare_image

__all__ = ["photo_batch", "heldout_losses", "heldout_mses", "predicted_x0", "x0_from_noise", "image_stats",
           "energy_distance", "spectrum_slope", "sample_vs_photo_stats", "side_by_side", "X0_NOISE_TIMESTEPS", "reconstruction_psnrs", "sample_grid", "generate_samples", "tile_grid",
           "fluctuation_maps", "EVAL_TIMESTEPS"]

EVAL_TIMESTEPS = (50, 250, 500, 750, 950)
X0_NOISE_TIMESTEPS = (980, 900, 700, 500)


def photo_batch(adapter: ModelAdapter, files) -> torch.Tensor:
    """Whole-photo resizes of `files` to the model grid: (n, 3, H, W) in [-1, 1] on the adapter's device."""
    return torch.stack([to_tensor(read_image(f), adapter.image_size) for f in files]).to(adapter.device)


def heldout_losses(adapter: ModelAdapter, files, ts=(50, 250, 500, 750, 950), seed: int = 0) -> dict[int, float]:
    """Mean squared epsilon-prediction error per timestep on whole-image resizes of `files`."""
    return heldout_mses(adapter, files, ts, seed)["eps"]


def heldout_mses(adapter: ModelAdapter, files, ts=EVAL_TIMESTEPS, seed: int = 0) -> dict[str, dict[int, float]]:
    """Mean squared error of the model's eps and of its v = sqrt(abar) eps - sqrt(1 - abar) x0 per
    timestep, whatever it predicts ({"eps": {t: mse}, "v": {t: mse}}; same noise as `heldout_losses`).
    Its v is (eps_hat - sqrt(1 - abar) x_t) / sqrt(abar), so v MSE = eps MSE / abar: an epsilon
    model's small eps error at high t is a large error in x0 and v."""
    x0 = photo_batch(adapter, files)
    g = torch.Generator().manual_seed(seed)
    out: dict[str, dict[int, float]] = {"eps": {}, "v": {}}
    with torch.no_grad():
        for t in ts:
            a = float(adapter.alphas_cumprod[t])
            noise = torch.randn(x0.shape, generator=g).to(x0.device)
            xt = a ** 0.5 * x0 + (1 - a) ** 0.5 * noise
            eps = adapter.eps(xt, t)
            x0_hat = predicted_x0(adapter, xt, t)
            v, v_hat = (a ** 0.5 * e - (1 - a) ** 0.5 * x for e, x in ((noise, x0), (eps, x0_hat)))
            out["eps"][int(t)] = float((eps - noise).pow(2).mean())
            out["v"][int(t)] = float((v_hat - v).pow(2).mean())
    return out


def predicted_x0(adapter: ModelAdapter, x: torch.Tensor, t: int) -> torch.Tensor:
    """The model's x0 at x_t (B, C, H, W), from its own prediction type: (x - sigma out) / alpha for
    epsilon, alpha x - sigma out for v_prediction, out for sample (alpha^2 = abar_t, sigma^2 = 1 - abar_t)."""
    alpha, sigma = (float(v) for v in adapter.signal_noise(int(t)))
    out = adapter.predict(x, int(t)).to(adapter.state_dtype)
    xs = x.to(adapter.state_dtype)
    if adapter.prediction_type == "epsilon":
        return (xs - sigma * out) / alpha
    if adapter.prediction_type == "v_prediction":
        return alpha * xs - sigma * out
    if adapter.prediction_type == "sample":
        return out
    raise ValueError(f"x0 of a {adapter.prediction_type!r} model is not defined here")


def x0_from_noise(adapter: ModelAdapter, ts=X0_NOISE_TIMESTEPS, n: int = 8, seed: int = 0) -> dict[int, dict]:
    """The model's x0 prediction when x_t is pure Gaussian noise (what generation starts from), per t:
    {t: {"abs_channel_mean": mean over images and channels of |spatial mean|, "spatial_std": mean over
    images and channels of the spatial std}}, in the model's [-1, 1] units; n noise images (seeded)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *adapter.model_shape), generator=g).to(adapter.device)
    out = {}
    with torch.no_grad():
        for t in ts:
            x0 = predicted_x0(adapter, x, t).float().flatten(2)
            out[int(t)] = {"abs_channel_mean": float(x0.mean(2).abs().mean()),
                           "spatial_std": float(x0.std(2, unbiased=False).mean())}
    return out


def image_stats(images: torch.Tensor) -> dict[str, np.ndarray]:
    """Per-image statistics of (n, 3, H, W) images in [-1, 1], on a 0-1 scale: "spatial_std" (n,)
    (std over pixels, mean over channels), "mean_colour" (n, 3), "spectrum_slope" (n,) (of the
    channel-mean image; see `spectrum_slope`)."""
    x = ((images.float().cpu() + 1) / 2).numpy()
    return {"spatial_std": x.reshape(*x.shape[:2], -1).std(-1).mean(1),
            "mean_colour": x.mean((2, 3)),
            "spectrum_slope": np.array([spectrum_slope(im.mean(0)) for im in x])}


def energy_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Energy distance between two samples of points (n, d) and (m, d) (Szekely & Rizzo 2013):
    sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|), Euclidean norms, V-statistics (scipy.stats.energy_distance
    for d = 1). 0 for identical samples; in the units of the points."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = (v[:, None] if v.ndim == 1 else v for v in (a, b))

    def mean_dist(u, w):
        return float(np.linalg.norm(u[:, None, :] - w[None, :, :], axis=-1).mean())

    return float(np.sqrt(max(0.0, 2 * mean_dist(a, b) - mean_dist(a, a) - mean_dist(b, b))))


def spectrum_slope(image: np.ndarray, k_min: int = 2) -> float:
    """Slope of log power against log spatial frequency of a 2-D image (H, W): the power spectrum of
    the mean-subtracted image averaged over rings of integer radius k (cycles per image), fitted by
    least squares over k_min <= k <= min(H, W) / 2. Power ~ 1/f^a gives -a (photos: about -2)."""
    img = np.asarray(image, float)
    h, w = img.shape
    power = np.abs(np.fft.fft2(img - img.mean())) ** 2
    ky, kx = np.meshgrid(np.fft.fftfreq(h) * h, np.fft.fftfreq(w) * w, indexing="ij")
    radius = np.rint(np.hypot(ky, kx)).astype(int)
    k = np.arange(k_min, min(h, w) // 2 + 1)
    ring = np.array([power[radius == r].mean() for r in k])
    return float(np.polyfit(np.log(k), np.log(ring + 1e-30), 1)[0])


def sample_vs_photo_stats(samples: torch.Tensor, photos: torch.Tensor) -> dict:
    """Samples (n, 3, H, W) against photos (m, 3, H, W), both in [-1, 1]: median and quartiles of the
    per-image spatial std (0-1 scale) and of the spectrum slope of each set, and the energy distance
    between their per-image mean colours (0-1 scale)."""
    s, p = image_stats(samples), image_stats(photos)

    def summary(v):
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        return {"median": float(med), "q25": float(q1), "q75": float(q3)}

    return {"samples": {"spatial_std": summary(s["spatial_std"]), "spectrum_slope": summary(s["spectrum_slope"])},
            "photos": {"spatial_std": summary(p["spatial_std"]), "spectrum_slope": summary(p["spectrum_slope"])},
            "mean_colour_energy_distance": energy_distance(s["mean_colour"], p["mean_colour"]),
            "n_samples": int(len(samples)), "n_photos": int(len(photos))}


def reconstruction_psnrs(adapter: ModelAdapter, files, steps: int = 50,
                         fixed_point: int = INVERSION_FIXED_POINT) -> np.ndarray:
    """PSNR (dB) of DDIM-`steps` inversion (each step refined `fixed_point` times, workbench.ddim)
    followed by DDIM-`steps` generation, one per image."""
    x0 = photo_batch(adapter, files)
    sched = make_schedule(adapter, steps)
    xT = ddim_loop(adapter, x0, sched, direction="invert", fixed_point=fixed_point)
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


def side_by_side(left: torch.Tensor, right: torch.Tensor, gap: int = 8) -> Image.Image:
    """Two square grids (see `tile_grid`) of (n, 3, H, W) images in [-1, 1], left and right, `gap` white pixels apart."""
    a, b = tile_grid(left), tile_grid(right)
    out = Image.new("RGB", (a.width + gap + b.width, max(a.height, b.height)), "white")
    out.paste(a, (0, 0))
    out.paste(b, (a.width + gap, 0))
    return out


def fluctuation_maps(adapter: ModelAdapter, images: torch.Tensor, *, steps: int = 20, K: int = 8, window: int = 3,
                     t_b: float = 0, seed: int = 0) -> np.ndarray:
    """Fluctuation maps (n, H, W) of images (n, 3, H, W) in [-1, 1]: DDIM-`steps` inversion, Hutchinson
    rate cube (h-space rate, K probes), windowed variance of the sum-normalised curves (DESIGN.md 1)."""
    maps = []
    for img in images:
        prep = prepare_image(adapter, Image.fromarray(to_uint8(img)), steps=steps)
        cube = rate_cube(adapter, prep.trajectory, opts=ProbeOptions("hutchinson", K, seed))
        maps.append(fluctuation(cube.numpy(), prep.trajectory.schedule.timesteps.cpu().numpy(), window=window,
                                t_b=t_b, axis=0, normalise=True))
    return np.stack(maps)
