"""Latent U-Nets: what every latent adapter shares (`LatentVAE`: the VAE that maps images to the
model grid and back) and the Stable Diffusion family (SD-1/2, SDXL: `UNet2DConditionModel` on the
VAE's latents, conditioned on a text embedding)."""
from __future__ import annotations

import hashlib

import torch

from ..errors import WorkbenchError
from .contract import ModelAdapter, batch_timesteps, cast_module, module_fingerprint

__all__ = ["LatentVAE", "StableDiffusionAdapter"]


class LatentVAE:
    """What every latent adapter shares: a float32 `AutoencoderKL` (`vae`, `scaling_factor`, `shift_factor`)
    for `encode`/`decode`, and a fingerprint over the denoiser, the VAE and the whole default conditioning
    (`_default_conditioning_tensors`; every byte, since prompts can differ late in the embedding)."""

    def _init_vae(self, vae) -> None:
        self.vae = cast_module(vae, self.device, torch.float32).eval().requires_grad_(False)  # float32: half overflows
        self.scale = 2 ** (len(vae.config.block_out_channels) - 1)
        self.scaling_factor = float(vae.config.scaling_factor)
        self.shift_factor = float(getattr(vae.config, "shift_factor", None) or 0.0)

    def encode(self, images):
        z = self.vae.encode(images.to(self.device, torch.float32)).latent_dist.mean
        return ((z - self.shift_factor) * self.scaling_factor).to(self.state_dtype)

    def decode(self, x0):
        z = x0.to(torch.float32) / self.scaling_factor + self.shift_factor
        return self.vae.decode(z).sample.clamp(-1, 1)

    def _default_conditioning_tensors(self) -> list[tuple[str, torch.Tensor]]:
        raise NotImplementedError

    def fingerprint(self):
        if not hasattr(self, "_fp"):
            h = hashlib.sha256(module_fingerprint(self.denoiser, dict(self.denoiser.config)).encode())
            h.update(module_fingerprint(self.vae, dict(self.vae.config)).encode())
            for name, t in self._default_conditioning_tensors():
                h.update(name.encode() + t.contiguous().numpy().tobytes())
            self._fp = h.hexdigest()[:16]
        return self._fp



class StableDiffusionAdapter(LatentVAE, ModelAdapter):
    """`UNet2DConditionModel` + `AutoencoderKL` conditioned on a text embedding: SD-1/2 (cross attention
    on `encoder_hidden_states`) and SDXL (plus added `text_embeds` and `time_ids`, addition_embed_type
    "text_time"). `cond` / `uncond` hold the prompt's / negative prompt's tensors (batch 1)."""

    scale = 8

    def __init__(self, unet, vae, scheduler_config: dict, prompt_embedding: torch.Tensor | dict, *, device="cpu",
                 dtype=torch.float32, name="stable-diffusion", empty_embedding: torch.Tensor | None = None):
        self.name = name
        super().__init__(unet, scheduler_config, device=device, dtype=dtype)
        self._init_vae(vae)
        cond = prompt_embedding if isinstance(prompt_embedding, dict) else {"encoder_hidden_states": prompt_embedding}
        self.cond = {k: v.to(self.device, torch.float32) for k, v in cond.items()}
        self.uncond = {k: v.to(self.device) for k, v in self.cond.items()}
        empty = self.cond["encoder_hidden_states"] if empty_embedding is None else empty_embedding
        self._empty_embedding = empty.float().cpu()
        _check_unet_layout(unet, self.cond["encoder_hidden_states"], name)

    @property
    def prompt_embedding(self) -> torch.Tensor:
        """The prompt's text embedding (1, L, D) (cross-attention input)."""
        return self.cond["encoder_hidden_states"]

    def _inputs(self, cond: dict, batch: int) -> tuple[torch.Tensor, dict | None]:
        c = {k: v.to(self.dtype).expand(batch, *v.shape[1:]) for k, v in cond.items()}
        added = {k: c[k] for k in ("text_embeds", "time_ids") if k in c} or None
        return c["encoder_hidden_states"], added

    def forward(self, x, t, cond):
        ehs, added = self._inputs(cond, x.shape[0])
        return self.denoiser(x, t, encoder_hidden_states=ehs, added_cond_kwargs=added).sample

    def h(self, x, t):
        u = self.denoiser
        x = x.to(self.dtype)
        t = batch_timesteps(t, x.shape[0], x.device)
        ehs, added = self._inputs(self.cond, x.shape[0])
        if u.config.center_input_sample:
            x = 2 * x - 1.0
        emb = u.time_embedding(u.get_time_embed(sample=x, timestep=t), None)
        if u.get_class_embed(sample=x, class_labels=None) is not None or \
                u.config.addition_embed_type not in (None, "text_time"):
            raise WorkbenchError("this UNet2DConditionModel needs class or image conditioning; "
                                 "text-conditioned SD-1/2 and SDXL U-Nets are supported")
        aug = u.get_aug_embed(emb=emb, encoder_hidden_states=ehs, added_cond_kwargs=added)
        if aug is not None:
            emb = emb + aug
        if u.time_embed_act is not None:
            emb = u.time_embed_act(emb)
        ehs = u.process_encoder_hidden_states(encoder_hidden_states=ehs, added_cond_kwargs=added)
        sample = u.conv_in(x)
        for block in u.down_blocks:
            if getattr(block, "has_cross_attention", False):
                sample, _ = block(hidden_states=sample, temb=emb, encoder_hidden_states=ehs)
            else:
                sample, _ = block(hidden_states=sample, temb=emb)
        if getattr(u.mid_block, "has_cross_attention", False):
            return u.mid_block(sample, emb, encoder_hidden_states=ehs).to(self.state_dtype)
        return u.mid_block(sample, emb).to(self.state_dtype)

    def _default_conditioning_tensors(self):
        return [("", self._empty_embedding)]  # the hash of earlier versions: the embedding's bytes alone


def _check_unet_layout(unet, text_embedding: torch.Tensor, name: str) -> None:
    """One-line WorkbenchErrors at load time for what would fail later inside the U-Net: class or
    image conditioning, and a text embedding whose width is not the cross attention's."""
    cfg = unet.config
    if cfg.get("class_embed_type") is not None or cfg.get("num_class_embeds") is not None or \
            cfg.get("addition_embed_type") not in (None, "text_time"):
        raise WorkbenchError(f"{name}: this UNet2DConditionModel needs class or image conditioning "
                             f"(class_embed_type={cfg.get('class_embed_type')!r}, addition_embed_type="
                             f"{cfg.get('addition_embed_type')!r}): only text-conditioned SD-1/2 and SDXL U-Nets work")
    want = cfg.get("encoder_hid_dim") or cfg.get("cross_attention_dim")
    width = int(text_embedding.shape[-1])
    if isinstance(want, int) and width != want:
        raise WorkbenchError(f"{name}: the text encoder gives {width}-wide embeddings but the U-Net's cross attention "
                             f"takes {want} (cross_attention_dim): use the text_encoder/ that belongs to this U-Net")
