"""The alternative "perceptual" generation state (paper Sec. 3.3, App. B.2).

Along the image's deterministic trajectory, the model's own prediction of the clean sample at each
timestep, x0_hat(x_t) = (x_t - sqrt(1 - a_t) eps(x_t, t)) / sqrt(a_t), is compared with the original
x0 inside a region. The *state* s(t) is that distance; its time derivative |ds/dt| is an alternative
generation curve (how fast the region's content settles), to be compared with the rate curve.

Distances (all inside a soft model-grid mask, weighted mean over locations):
  unet    the model's own intermediate features (mid block and every up block, from
          `adapter.eps_and_features` at the smallest timestep), unit-normalised over channels per
          location (as LPIPS does), squared difference summed over channels, averaged over layers
  pixels  squared difference of x0_hat and x0 in model space, averaged over channels
  dino    (optional) a local DINO/ViT checkpoint's patch tokens (`dino_features(dir)`), same rule
No external weights are needed for `unet` and `pixels`.
"""
from __future__ import annotations

from typing import Callable
from pathlib import Path

import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from workbench.errors import WorkbenchError

from .datasets import resize_map

__all__ = ["predicted_x0", "perceptual_states", "state_derivative", "unet_features", "dino_features",
           "curve_agreement"]

FeatureFn = Callable[[torch.Tensor], list[torch.Tensor]]


@torch.no_grad()
def predicted_x0(adapter, trajectory, *, batch: int = 25) -> torch.Tensor:
    """x0_hat at every timestep of the trajectory: (N, C, H, W), model space."""
    sched = trajectory.schedule
    out = []
    for s in range(0, len(sched), batch):
        x = trajectory.states[s:s + batch].to(adapter.device, adapter.dtype)
        t = sched.timesteps[s:s + batch].to(adapter.device)
        alpha = sched.signal[s:s + batch].to(adapter.device, torch.float64).view(-1, 1, 1, 1)
        sigma = sched.noise[s:s + batch].to(adapter.device, torch.float64).view(-1, 1, 1, 1)
        e = adapter.eps(x, t)
        out.append(((x.double() - sigma * e.double()) / alpha).to(adapter.dtype).cpu())
    return torch.cat(out)


def unet_features(adapter, t: int | None = None) -> FeatureFn:
    """The model's own features of a clean sample: mid and up block outputs at timestep `t` (default
    the schedule's smallest, 1 for a 1000-step model)."""
    t_feat = adapter.steps_offset if t is None else int(t)

    @torch.no_grad()
    def f(x: torch.Tensor) -> list[torch.Tensor]:
        _, feats = adapter.eps_and_features(x.to(adapter.device, adapter.dtype), t_feat)
        return [q.float().cpu() for q in feats]

    return f


def dino_features(folder: str, *, size: int = 224) -> FeatureFn:
    """Patch-token features of a local DINO/ViT checkpoint (transformers layout; never downloaded).
    Images are model-space samples in [-1, 1] (pixel models) resized to `size`."""
    if not Path(folder).is_dir():
        raise WorkbenchError(f"no DINO weights at {folder}: pass a local folder with config.json and weights")
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    @torch.no_grad()
    def f(x: torch.Tensor) -> list[torch.Tensor]:
        if x.shape[1] != 3:
            raise WorkbenchError("DINO features need RGB samples: use a pixel-space model or --features unet")
        im = torch.nn.functional.interpolate((x.float().cpu().clamp(-1, 1) + 1) / 2, size=(size, size),
                                             mode="bilinear", antialias=True)
        tok = model(pixel_values=(im - mean) / std).last_hidden_state[:, 1:]
        g = int(round(tok.shape[1] ** 0.5))
        return [tok[:, : g * g].reshape(x.shape[0], g, g, -1).permute(0, 3, 1, 2)]

    return f


def _region_distance(fa: list[torch.Tensor], fb: list[torch.Tensor], masks: np.ndarray) -> np.ndarray:
    """Mean over layers of the mask-weighted mean of ||unit(fa) - unit(fb)||^2: (B, R) for masks (R, H, W)."""
    total = 0
    for a, b in zip(fa, fb):
        a = torch.nn.functional.normalize(a.float(), dim=1)
        b = torch.nn.functional.normalize(b.float(), dim=1)
        d = (a - b).pow(2).sum(1).numpy()  # (B, h, w)
        m = np.stack([resize_map(mk, d.shape[1:]) for mk in masks])  # (R, h, w)
        total = total + np.einsum("bhw,rhw->br", d, m) / m.reshape(len(masks), -1).sum(1)
    return total / len(fa)


def perceptual_states(adapter, trajectory, masks: np.ndarray, *, features: str | FeatureFn = "unet") -> np.ndarray:
    """s(t) for every region: (R, N) distances between x0_hat(x_t) and x0 inside each model-grid mask
    (R, H, W) with values in [0, 1], under the `features` ("unet", "pixels" or a feature function)."""
    masks = np.asarray(masks, dtype=np.float32)
    if masks.ndim == 2:
        masks = masks[None]
    if (masks.reshape(len(masks), -1).sum(1) <= 0).any():
        raise WorkbenchError("a region is empty on the model grid: use a larger region")
    x0h = predicted_x0(adapter, trajectory)
    x0 = trajectory.x0[None].cpu().to(x0h.dtype)
    if features == "pixels":
        d = (x0h.float() - x0.float()).pow(2).mean(1).numpy()  # (N, H, W)
        return (np.einsum("nhw,rhw->rn", d, masks) / masks.reshape(len(masks), -1).sum(1)[:, None])
    fn = unet_features(adapter) if features == "unet" else features
    if not callable(fn):
        raise WorkbenchError(f"unknown perceptual features {features!r}: use unet, pixels or a DINO folder")
    ref = fn(x0)
    out = []
    for s in range(0, x0h.shape[0], 10):
        out.append(_region_distance(fn(x0h[s:s + 10]), [r.expand(min(10, x0h.shape[0] - s), *r.shape[1:])
                                                        for r in ref], masks))
    return np.concatenate(out, 0).T


def state_derivative(states: np.ndarray, timesteps) -> np.ndarray:
    """|ds/dt| by central differences over the (ascending) timesteps: same shape as states (..., N)."""
    return np.abs(np.gradient(np.asarray(states, dtype=np.float64), np.asarray(timesteps, dtype=np.float64),
                              axis=-1))


def curve_agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Pearson r and Spearman rho of two curves, and the total-variation distance of the curves
    normalised to distributions over time (0 = same shape, 1 = disjoint)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.std() == 0 or b.std() == 0:
        raise WorkbenchError("a flat curve has no correlation with another curve")
    tv = 0.5 * np.abs(a / a.sum() - b / b.sum()).sum()
    return {"pearson": float(pearsonr(a, b)[0]), "spearman": float(spearmanr(a, b)[0]), "tv": float(tv)}
