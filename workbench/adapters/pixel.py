"""Pixel-space U-Nets: a diffusers `UNet2DModel` working directly on image pixels (scale 1)."""
from __future__ import annotations

import torch

from ..errors import WorkbenchError
from .contract import ModelAdapter, batch_timesteps

__all__ = ["PixelAdapter"]


class PixelAdapter(ModelAdapter):
    """A diffusers `UNet2DModel` working directly on image pixels."""

    scale = 1

    def __init__(self, unet, scheduler_config: dict, *, device="cpu", dtype=torch.float32, name="pixel"):
        self.name = name
        super().__init__(unet, scheduler_config, device=device, dtype=dtype)

    def forward(self, x, t, cond):
        return self.denoiser(x, t).sample

    def _embed(self, x, t):
        u = self.denoiser
        t = batch_timesteps(t, x.shape[0], x.device)
        emb = u.time_embedding(u.time_proj(t).to(dtype=x.dtype))
        if u.class_embedding is not None:
            raise WorkbenchError("class-conditional UNet2DModel is not supported: use an unconditional model")
        if u.config.center_input_sample:
            x = 2 * x - 1.0
        return x, emb

    def h(self, x, t):
        u = self.denoiser
        x, emb = self._embed(x.to(self.dtype), t)
        skip = x
        sample = u.conv_in(x)
        for block in u.down_blocks:
            if hasattr(block, "skip_conv"):
                sample, _, skip = block(hidden_states=sample, temb=emb, skip_sample=skip)
            else:
                sample, _ = block(hidden_states=sample, temb=emb)
        return u.mid_block(sample, emb).to(self.state_dtype)
