"""Transformer denoisers: DiT (class-conditional), PixArt (T5 text) and SD3 (two CLIPs + T5, flow matching).

h-space of a transformer: the image-token states after the first ceil(L/2) of its L blocks (the
middle of the stack), reshaped to the patch grid: (B, D, H/p, W/p). A transformer has no bottleneck
resolution; the U-Net's h-space is the end of its encoder, the point where the encoder half meets
the decoder half (the deepest state before the skip connections are merged back). In a stack of
identical blocks the analogue of that point is its middle (in U-ViT-style stacks the long skips
pair block i with block L-1-i around it), and the patch grid gives every token a place, so rates,
Hutchinson probes and the `projected` rate carry over unchanged. For SD3 the text tokens, which the
joint attention also updates, are left out: h is the image part.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch

from .contract import ModelAdapter, batch_timesteps
from .latent import LatentVAE

__all__ = ["TransformerAdapter", "first_blocks", "tokens_to_grid", "TRANSFORMER_FAMILIES"]

TRANSFORMER_FAMILIES = {"DiTTransformer2DModel": "dit", "PixArtTransformer2DModel": "pixart",
                        "SD3Transformer2DModel": "sd3"}


@contextlib.contextmanager
def first_blocks(model: torch.nn.Module, m: int) -> Iterator[list]:
    """Within the context `model.transformer_blocks` holds only its first m blocks, and the outputs of
    block m-1 are appended to the yielded list. The full block list is restored on exit."""
    blocks = model.transformer_blocks
    captured: list = []
    handle = blocks[m - 1].register_forward_hook(lambda _m, _a, out: captured.append(out))
    model.transformer_blocks = torch.nn.ModuleList(list(blocks)[:m])
    try:
        yield captured
    finally:
        model.transformer_blocks = blocks
        handle.remove()


def tokens_to_grid(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Row-major patch tokens (B, h*w, D) -> (B, D, h, w)."""
    B, N, D = tokens.shape
    if N != height * width:
        raise ValueError(f"{N} tokens do not fill a {height}x{width} patch grid")
    return tokens.transpose(1, 2).reshape(B, D, height, width)


class TransformerAdapter(LatentVAE, ModelAdapter):
    """A diffusers transformer denoiser + `AutoencoderKL`. `family` is "dit", "pixart" or "sd3".
    Conditioning (`cond`, `uncond`, batch 1; `set_conditioning`): DiT `class_labels` (the null class is the default);
    PixArt `encoder_hidden_states` + `encoder_attention_mask`; SD3 `encoder_hidden_states` +
    `pooled_projections`. Learned-variance outputs (2C channels) are cut to their first C."""

    def __init__(self, transformer, vae, scheduler_config: dict, *, family: str, empty: dict, device="cpu",
                 dtype=torch.float32, name="transformer"):
        """`empty`: the default conditioning's tensors (batch 1), which the adapter starts with and its
        fingerprint hashes; `set_conditioning` conditions it on a prompt."""
        self.name = name
        self.family = family
        super().__init__(transformer, scheduler_config, device=device, dtype=dtype)
        self._init_vae(vae)
        self._empty = {k: v.float().cpu() for k, v in empty.items()}
        self.cond = {k: v.to(self.device, torch.float32) for k, v in empty.items()}
        self.uncond = dict(self.cond)

    @property
    def patch_size(self) -> int:
        return int(self.denoiser.config.patch_size)

    @property
    def num_blocks(self) -> int:
        return len(self.denoiser.transformer_blocks)

    @property
    def h_blocks(self) -> int:
        """How many blocks h-space runs: ceil(L / 2)."""
        return math.ceil(self.num_blocks / 2)

    def _model_time(self, t: torch.Tensor) -> torch.Tensor:
        """What the network is called with: the integer timestep, or sigma_t * T for flow matching."""
        if self.prediction_type == "flow":
            return (self._noise[t.long().cpu()] * self.num_train_timesteps).to(t.device, torch.float32)
        return t

    def forward(self, x, t, cond):
        B, C = x.shape[0], x.shape[1]
        c = {k: v.expand(B, *v.shape[1:]) for k, v in cond.items()}
        tm = self._model_time(t)
        net = self.denoiser
        if self.family == "dit":
            out = net(x, timestep=tm, class_labels=c["class_labels"].long()).sample
        elif self.family == "pixart":
            added = {"resolution": c.get("resolution"), "aspect_ratio": c.get("aspect_ratio")}
            added = {k: (v.to(self.dtype) if v is not None else None) for k, v in added.items()}
            out = net(x, encoder_hidden_states=c["encoder_hidden_states"].to(self.dtype), timestep=tm,
                      added_cond_kwargs=added, encoder_attention_mask=c["encoder_attention_mask"]).sample
        else:
            out = net(x, encoder_hidden_states=c["encoder_hidden_states"].to(self.dtype),
                      pooled_projections=c["pooled_projections"].to(self.dtype), timestep=tm).sample
        return out[:, :C]

    def h(self, x, t):
        x = x.to(self.dtype)
        t = batch_timesteps(t, x.shape[0], x.device)
        with first_blocks(self.denoiser, self.h_blocks) as captured:
            self.forward(x, t, self.cond)
        out = captured[-1]
        tokens = out[-1] if isinstance(out, tuple) else out  # SD3 blocks return (text, image)
        p = self.patch_size
        return tokens_to_grid(tokens, x.shape[-2] // p, x.shape[-1] // p).to(self.state_dtype)

    def feature_modules(self) -> list[torch.nn.Module]:
        return list(self.denoiser.transformer_blocks)[self.h_blocks - 1:]

    def _default_conditioning_tensors(self):
        return sorted(self._empty.items())
