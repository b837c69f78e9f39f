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
from pathlib import Path
from typing import Iterator

import torch

from ..adapters import LatentVAE, ModelAdapter, _check_prompt_args, _fingerprint, _load_error, _timesteps
from ..errors import WorkbenchError

__all__ = ["TransformerAdapter", "load_transformer_model", "first_blocks", "tokens_to_grid", "TRANSFORMER_FAMILIES"]

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
    Conditioning (`cond`, `uncond`, batch 1): DiT `class_labels` (the null class is the default);
    PixArt `encoder_hidden_states` + `encoder_attention_mask`; SD3 `encoder_hidden_states` +
    `pooled_projections`. Learned-variance outputs (2C channels) are cut to their first C."""

    def __init__(self, transformer, vae, scheduler_config: dict, *, family: str, cond: dict, uncond: dict,
                 device="cpu", dtype=torch.float32, name="transformer", empty: dict | None = None):
        self.name = name
        self.family = family
        super().__init__(transformer, scheduler_config, device=device, dtype=dtype)
        self._init_vae(vae)
        self.cond = {k: v.to(self.device, torch.float32) for k, v in cond.items()}
        self.uncond = {k: v.to(self.device, torch.float32) for k, v in uncond.items()}
        self._empty = {k: v.float().cpu() for k, v in (empty or cond).items()}

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
        t = _timesteps(t, x.shape[0], x.device)
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


def _transformer_class(config: dict):
    import diffusers

    name = config.get("_class_name", "")
    if name == "Transformer2DModel":  # legacy DiT / PixArt checkpoints
        name = {"ada_norm_zero": "DiTTransformer2DModel", "ada_norm_single": "PixArtTransformer2DModel"}.get(
            config.get("norm_type"), "")
    if name not in TRANSFORMER_FAMILIES:
        raise WorkbenchError(f"transformer class {config.get('_class_name')!r} is not supported: DiT, PixArt and SD3 "
                             f"({', '.join(TRANSFORMER_FAMILIES)}) are")
    return getattr(diffusers, name), TRANSFORMER_FAMILIES[name]


def _dit_condition(net, prompt: str) -> dict:
    """DiT's class label: an ImageNet class index as text, or '' for the null (unconditional) class."""
    n = int(net.transformer_blocks[0].norm1.emb.class_embedder.num_classes)
    if prompt == "":
        return {"class_labels": torch.tensor([float(n)])}
    if not prompt.strip().isdigit() or not 0 <= int(prompt) < n:
        raise WorkbenchError(f"a DiT model is conditioned on a class index: --prompt must be 0..{n - 1} "
                             f"(or empty for the unconditional null class), got {prompt!r}")
    return {"class_labels": torch.tensor([float(int(prompt))])}


def load_transformer_model(root: Path, sched_cfg: dict, *, device, dtype, prompt: str = "",
                           negative_prompt: str = "", guidance_scale: float = 1.0) -> TransformerAdapter:
    """Load DiT / PixArt / SD3 from a diffusers folder: transformer/, vae/, scheduler/ and the family's
    text encoders (PixArt: tokenizer/ + text_encoder/ (T5); SD3: tokenizer(_2)/ + text_encoder(_2)/
    (CLIP with projection), optional tokenizer_3/ + text_encoder_3/ (T5))."""
    import json

    from diffusers import AutoencoderKL

    from . import text

    cfg = json.loads((root / "transformer" / "config.json").read_text())
    cls, family = _transformer_class(cfg)
    needs = {"dit": ("vae",), "pixart": ("vae", "tokenizer", "text_encoder"),
             "sd3": ("vae", "tokenizer", "text_encoder", "tokenizer_2", "text_encoder_2")}[family]
    for sub in needs:
        if not (root / sub).exists():
            raise WorkbenchError(f"{root} has no {sub}/ folder: a {family} model needs transformer/, scheduler/ and "
                                 f"{', '.join(s + '/' for s in needs)}")
    if family == "sd3" and sched_cfg.get("_class_name") != "FlowMatchEulerDiscreteScheduler":
        raise WorkbenchError(f"{root}: an SD3 model needs a FlowMatchEulerDiscreteScheduler scheduler config")
    _check_prompt_args(family, True, prompt, negative_prompt, guidance_scale)
    try:
        net = cls.from_pretrained(root / "transformer", use_safetensors=True, local_files_only=True)
        vae = AutoencoderKL.from_pretrained(root / "vae", use_safetensors=True, local_files_only=True)
        key = str(root.resolve()) + _fingerprint(net, dict(net.config))
        if family == "dit":
            enc = lambda s: _dit_condition(net, s)  # noqa: E731
        elif family == "pixart":
            from transformers import AutoTokenizer

            L = min(120, int(AutoTokenizer.from_pretrained(root / "tokenizer", local_files_only=True).model_max_length))

            def enc(s):
                c = text.encode_t5_prompt(root, s, key, max_length=L)
                if net.config.sample_size == 128:  # PixArt-alpha 1024: resolution / aspect-ratio conditioning
                    size = float(net.config.sample_size * 8)
                    c |= {"resolution": torch.tensor([[size, size]]), "aspect_ratio": torch.tensor([[1.0]])}
                return c
        else:
            enc = lambda s: text.encode_sd3_prompt(root, s, key,  # noqa: E731
                                                   joint_attention_dim=int(net.config.joint_attention_dim))
        empty = enc("")
        cond = empty if prompt == "" else enc(prompt)
        uncond = enc(negative_prompt) if negative_prompt else empty
    except WorkbenchError:
        raise
    except (OSError, EnvironmentError, ValueError) as exc:
        raise _load_error(root, exc) from None
    ad = TransformerAdapter(net, vae, sched_cfg, family=family, cond=cond, uncond=uncond, device=device, dtype=dtype,
                            name=root.name, empty=empty)
    ad.prompt, ad.negative_prompt, ad.guidance_scale = prompt, negative_prompt, float(guidance_scale)
    return ad
