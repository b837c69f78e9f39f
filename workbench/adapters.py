"""One model contract over diffusers U-Nets: pixel-space `UNet2DModel` and the Stable Diffusion family.

Everything else in the workbench talks to a `ModelAdapter`; nothing else touches a U-Net.
Shapes: model-space tensors are (B, C, H, W) on the model grid; images are (B, 3, H*s, W*s) in
[-1, 1] with s = `scale` image pixels per model pixel (1 for pixel models, 8 for SD's VAE).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

import torch

from .autodiff import forward_ad_safe
from .default_model import DEFAULT_MODEL_DIR
from .errors import WorkbenchError

__all__ = ["ModelAdapter", "PixelAdapter", "StableDiffusionAdapter", "load_model"]


def _timesteps(t, batch: int, device) -> torch.Tensor:
    t = torch.as_tensor(t, device=device)
    if t.ndim == 0:
        t = t.expand(batch)
    return t


def _fingerprint(module: torch.nn.Module, config: dict) -> str:
    """Content hash of a module: its config (without where it was loaded from) and, per tensor, shape
    and leading and trailing values. The same weights give the same hash wherever they lie."""
    config = {k: v for k, v in config.items() if k not in ("_name_or_path", "_use_default_values")}
    h = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    for name, p in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(p.shape)).encode())
        flat = p.detach().reshape(-1)
        h.update(flat[:64].float().cpu().numpy().tobytes())
        h.update(flat[-64:].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class ModelAdapter:
    """What the engine needs of a diffusion model.

    Attributes: `unet`, `alphas_cumprod` (float64, (T,)), `num_train_timesteps`, `steps_offset`,
    `model_shape` (C, H, W), `scale` (image pixels per model pixel), `device`, `dtype`, `name`.
    """

    unet: torch.nn.Module
    scale: int = 1
    name: str = "model"

    def __init__(self, unet: torch.nn.Module, scheduler_config: dict, *, device="cpu", dtype=torch.float32):
        from diffusers import DDIMScheduler

        self.device = torch.device(device)
        self.dtype = dtype
        self.unet = unet.to(self.device, dtype).eval().requires_grad_(False)
        keys = DDIMScheduler.from_config(scheduler_config)  # validates and fills defaults
        self.scheduler_config = dict(keys.config)
        self.alphas_cumprod = keys.alphas_cumprod.double()
        self.num_train_timesteps = int(keys.config.num_train_timesteps)
        self.steps_offset = int(keys.config.get("steps_offset", 0))
        if keys.config.prediction_type != "epsilon":
            raise WorkbenchError(f"{self.name}: prediction_type {keys.config.prediction_type!r} is not supported;"
                                 " the workbench needs an epsilon-prediction model")

    # --- geometry -----------------------------------------------------------------------
    @property
    def model_shape(self) -> tuple[int, int, int]:
        s = self.unet.config.sample_size
        s = (s, s) if isinstance(s, int) else tuple(s)
        return (self.unet.config.in_channels, *s)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of images in pixels that map onto the model grid."""
        _, h, w = self.model_shape
        return (h * self.scale, w * self.scale)

    def image_to_model(self, y: int, x: int) -> tuple[int, int]:
        """Model-grid cell of image pixel (y, x) of an image of `image_size`."""
        return (y // self.scale, x // self.scale)

    def mask_to_model(self, mask: torch.Tensor) -> torch.Tensor:
        """Image-size mask (H*s, W*s) -> model-grid fraction covered, float (H, W) in [0, 1]."""
        if self.scale == 1:
            return mask.float()
        return torch.nn.functional.avg_pool2d(mask.float()[None, None], self.scale)[0, 0]

    # --- network ------------------------------------------------------------------------
    def eps(self, x: torch.Tensor, t) -> torch.Tensor:
        """Noise prediction eps(x_t, t): (B, C, H, W) -> (B, C, H, W)."""
        raise NotImplementedError

    def h(self, x: torch.Tensor, t) -> torch.Tensor:
        """h-space: conv_in, time embedding, down blocks and mid block (no up blocks). (B, Ch, Hh, Wh)."""
        raise NotImplementedError

    def eps_and_features(self, x: torch.Tensor, t) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """eps plus the outputs of the mid block and every up block (for feature alignment)."""
        feats: list[torch.Tensor] = []
        mods = [self.unet.mid_block, *self.unet.up_blocks]
        handles = [m.register_forward_hook(lambda _m, _a, out: feats.append(out[0] if isinstance(out, tuple) else out))
                   for m in mods]
        try:
            e = self.eps(x, t)
        finally:
            for hd in handles:
                hd.remove()
        return e, feats

    def autodiff(self) -> contextlib.AbstractContextManager:
        """Context in which JVPs and second-order AD run through the U-Net (see `autodiff`)."""
        return forward_ad_safe(self.unet)

    # --- spaces -------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H*s, W*s) in [-1, 1] -> model space (B, C, H, W)."""
        return images.to(self.device, self.dtype)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Model space (B, C, H, W) -> images (B, 3, H*s, W*s) in [-1, 1]."""
        return x0.clamp(-1, 1)

    def fingerprint(self) -> str:
        """Stable content hash of the weights that determine rates (U-Net, and VAE for latent models)."""
        if not hasattr(self, "_fp"):
            self._fp = _fingerprint(self.unet, dict(self.unet.config))
        return self._fp


class PixelAdapter(ModelAdapter):
    """A diffusers `UNet2DModel` working directly on image pixels."""

    scale = 1

    def __init__(self, unet, scheduler_config: dict, *, device="cpu", dtype=torch.float32, name="pixel"):
        self.name = name
        super().__init__(unet, scheduler_config, device=device, dtype=dtype)

    def eps(self, x, t):
        return self.unet(x, _timesteps(t, x.shape[0], x.device)).sample

    def _embed(self, x, t):
        u = self.unet
        t = _timesteps(t, x.shape[0], x.device)
        emb = u.time_embedding(u.time_proj(t).to(dtype=x.dtype))
        if u.class_embedding is not None:
            raise WorkbenchError("class-conditional UNet2DModel is not supported: use an unconditional model")
        if u.config.center_input_sample:
            x = 2 * x - 1.0
        return x, emb

    def h(self, x, t):
        u = self.unet
        x, emb = self._embed(x, t)
        skip = x
        sample = u.conv_in(x)
        for block in u.down_blocks:
            if hasattr(block, "skip_conv"):
                sample, _, skip = block(hidden_states=sample, temb=emb, skip_sample=skip)
            else:
                sample, _ = block(hidden_states=sample, temb=emb)
        return u.mid_block(sample, emb)


class StableDiffusionAdapter(ModelAdapter):
    """`UNet2DConditionModel` + `AutoencoderKL` with a fixed empty-prompt text embedding."""

    scale = 8

    def __init__(self, unet, vae, scheduler_config: dict, prompt_embedding: torch.Tensor, *, device="cpu",
                 dtype=torch.float32, name="stable-diffusion"):
        self.name = name
        super().__init__(unet, scheduler_config, device=device, dtype=dtype)
        self.vae = vae.to(self.device, dtype).eval().requires_grad_(False)
        self.scale = 2 ** (len(vae.config.block_out_channels) - 1)
        self.scaling_factor = float(vae.config.scaling_factor)
        self.prompt_embedding = prompt_embedding.to(self.device, dtype)
        _check_unet_layout(unet, self.prompt_embedding, name)

    def _ehs(self, batch: int) -> torch.Tensor:
        return self.prompt_embedding.expand(batch, *self.prompt_embedding.shape[1:])

    def eps(self, x, t):
        return self.unet(x, _timesteps(t, x.shape[0], x.device), encoder_hidden_states=self._ehs(x.shape[0])).sample

    def h(self, x, t):
        u = self.unet
        t = _timesteps(t, x.shape[0], x.device)
        if u.config.center_input_sample:
            x = 2 * x - 1.0
        emb = u.time_embedding(u.get_time_embed(sample=x, timestep=t), None)
        if u.get_class_embed(sample=x, class_labels=None) is not None or u.config.addition_embed_type:
            raise WorkbenchError("this UNet2DConditionModel needs class or added conditioning; "
                                 "only text-conditioned SD-family U-Nets are supported")
        if u.time_embed_act is not None:
            emb = u.time_embed_act(emb)
        ehs = u.process_encoder_hidden_states(encoder_hidden_states=self._ehs(x.shape[0]), added_cond_kwargs=None)
        sample = u.conv_in(x)
        for block in u.down_blocks:
            if getattr(block, "has_cross_attention", False):
                sample, _ = block(hidden_states=sample, temb=emb, encoder_hidden_states=ehs)
            else:
                sample, _ = block(hidden_states=sample, temb=emb)
        if getattr(u.mid_block, "has_cross_attention", False):
            return u.mid_block(sample, emb, encoder_hidden_states=ehs)
        return u.mid_block(sample, emb)

    def encode(self, images):
        z = self.vae.encode(images.to(self.device, self.dtype)).latent_dist.mean
        return z * self.scaling_factor

    def decode(self, x0):
        return self.vae.decode(x0 / self.scaling_factor).sample.clamp(-1, 1)

    def fingerprint(self):
        if not hasattr(self, "_fp"):
            h = hashlib.sha256(_fingerprint(self.unet, dict(self.unet.config)).encode())
            h.update(_fingerprint(self.vae, dict(self.vae.config)).encode())
            h.update(self.prompt_embedding.float().cpu().contiguous().numpy().tobytes())  # all of it: prompts differ late
            self._fp = h.hexdigest()[:16]
        return self._fp


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


# --- loading ------------------------------------------------------------------------------
SD21_BASE = "stabilityai/stable-diffusion-2-1-base"


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache's snapshot folder of `repo_id` (its `main` ref), or None.
    Reads the cache layout (models--ORG--NAME/refs/main -> snapshots/HASH); nothing is fetched."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    ref = repo / "refs" / "main"
    if ref.is_file():
        snap = repo / "snapshots" / ref.read_text().strip()
        if snap.is_dir():
            return snap
    snaps = sorted((repo / "snapshots").glob("*")) if (repo / "snapshots").is_dir() else []
    return snaps[-1] if len(snaps) == 1 else None


def _resolve(spec: str | os.PathLike | None) -> Path:
    if spec is None or str(spec) in ("", "default"):
        if not (DEFAULT_MODEL_DIR / "unet" / "config.json").exists():
            raise WorkbenchError(f"the shipped default model is missing from {DEFAULT_MODEL_DIR}: reinstall the "
                                 "package or pass --model PATH")
        return DEFAULT_MODEL_DIR
    path = Path(spec).expanduser()
    if path.exists():
        return path
    snap = _hf_cache_snapshot(str(spec)) if "/" in str(spec) and not str(spec).startswith((".", "/")) else None
    if snap is not None:
        return snap
    raise WorkbenchError(
        f"no model at {path} and no {spec!r} in the local Hugging Face cache "
        f"({os.environ.get('HF_HOME', '~/.cache/huggingface')}): pass --model DIR (a diffusers folder with "
        f"unet/ and scheduler/) or download {SD21_BASE} into the HF cache beforehand")


def _empty_prompt_embedding(root: Path, fingerprint_src: str) -> torch.Tensor:
    """The empty prompt through the pipeline's own tokenizer and text encoder, cached as safetensors."""
    from safetensors.torch import load_file, save_file

    cache_dir = Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "genrate-workbench")) / "prompts"
    key = hashlib.sha256(fingerprint_src.encode()).hexdigest()[:16]
    cached = cache_dir / f"empty-{key}.safetensors"
    if cached.exists():
        return load_file(cached)["embedding"]
    from transformers import AutoTokenizer, CLIPTextModel

    tok = AutoTokenizer.from_pretrained(root / "tokenizer", local_files_only=True)
    enc = CLIPTextModel.from_pretrained(root / "text_encoder", local_files_only=True, use_safetensors=True)
    ids = tok([""], padding="max_length", max_length=tok.model_max_length, truncation=True,
              return_tensors="pt").input_ids
    with torch.no_grad():
        emb = enc(ids)[0].float().contiguous()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".partial")
    save_file({"embedding": emb}, tmp)
    tmp.replace(cached)
    return emb


def _read_json(path: Path):
    """A model config file parsed, or a one-line error naming it."""
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path} is not valid JSON ({type(exc).__name__}): restore the model's config file") from None


def load_model(spec: str | os.PathLike | None = None, *, device: str | None = None,
               dtype: torch.dtype = torch.float32) -> ModelAdapter:
    """Load a model offline: `None`/"default" (shipped), a local diffusers folder, or a repo id
    already in the local Hugging Face cache. Pixel models need unet/ + scheduler/; SD-family ones
    also vae/, text_encoder/ and tokenizer/. Weights load from safetensors only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers import AutoencoderKL, UNet2DConditionModel, UNet2DModel

    from .validate import check_device, check_dtype

    device, dtype = check_device(device), check_dtype(dtype)
    root = _resolve(spec)
    unet_dir = root / "unet"
    if not (unet_dir / "config.json").exists():
        raise WorkbenchError(f"{root} has no unet/config.json: pass a diffusers model folder "
                             "(unet/, scheduler/, and vae/ text_encoder/ tokenizer/ for Stable Diffusion)")
    sched_file = root / "scheduler" / "scheduler_config.json"
    if not sched_file.exists():
        raise WorkbenchError(f"{root} has no scheduler/scheduler_config.json: copy the scheduler folder of the model")
    from .validate import check_scheduler_config

    sched_cfg = check_scheduler_config(_read_json(sched_file), str(sched_file))
    unet_cfg = _read_json(unet_dir / "config.json")
    if not isinstance(unet_cfg, dict):
        raise WorkbenchError(f"{unet_dir / 'config.json'} must hold a JSON object (the U-Net's config): copy the "
                             "model's unet folder again")
    cls_name = unet_cfg.get("_class_name", "")
    try:
        if cls_name == "UNet2DConditionModel":
            for sub in ("vae", "text_encoder", "tokenizer"):
                if not (root / sub).exists():
                    raise WorkbenchError(f"{root} has no {sub}/ folder: a Stable Diffusion model needs unet/, vae/, "
                                         "text_encoder/, tokenizer/ and scheduler/")
            unet = UNet2DConditionModel.from_pretrained(unet_dir, use_safetensors=True, local_files_only=True)
            vae = AutoencoderKL.from_pretrained(root / "vae", use_safetensors=True, local_files_only=True)
            emb = _empty_prompt_embedding(root, str(root.resolve()) + _fingerprint(unet, dict(unet.config)))
            return StableDiffusionAdapter(unet, vae, sched_cfg, emb, device=device, dtype=dtype, name=root.name)
        unet = UNet2DModel.from_pretrained(unet_dir, use_safetensors=True, local_files_only=True)
    except WorkbenchError:
        raise
    except (OSError, EnvironmentError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WorkbenchError(f"could not load the model in {root}: {first} (weights must be safetensors)") from None
    return PixelAdapter(unet, sched_cfg, device=device, dtype=dtype, name=root.name)
