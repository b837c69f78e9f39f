"""One model contract over diffusers denoisers: pixel `UNet2DModel`, the Stable Diffusion family
(SD-1/2, SDXL) and, in `workbench.families.transformers`, DiT / PixArt / SD3.

Everything else in the workbench talks to a `ModelAdapter`; nothing else touches a network.
Shapes: model-space tensors are (B, C, H, W) on the model grid; images are (B, 3, H*s, W*s) in
[-1, 1] with s = `scale` image pixels per model pixel (1 for pixel models, 8 for SD's VAE).

The engine's contract is epsilon: `eps(x, t)` is the noise prediction whatever the network was
trained to predict (`to_epsilon`). A state is x_t = alpha_t x0 + sigma_t eps (`signal_noise`).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import torch

from .autodiff import forward_ad_safe
from .default_model import DEFAULT_MODEL_DIR
from .errors import WorkbenchError

__all__ = ["PREDICTION_TYPES", "HALF_DTYPES", "ModelAdapter", "LatentVAE", "PixelAdapter", "StableDiffusionAdapter",
           "to_epsilon", "load_model", "tensor_fingerprint"]

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample", "flow")
HALF_DTYPES = (torch.float16, torch.bfloat16)


def _timesteps(t, batch: int, device) -> torch.Tensor:
    t = torch.as_tensor(t, device=device)
    if t.ndim == 0:
        t = t.expand(batch)
    return t


def _to(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """module on `device` in `dtype` (casting only when the dtype differs: diffusers warns on every cast)."""
    p = next(module.parameters(), None)
    return module.to(device) if p is None or p.dtype == dtype else module.to(device, dtype)


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


def tensor_fingerprint(tensors: dict[str, torch.Tensor], extra: str = "") -> str:
    """Hash of every value of every tensor (as float32), with names and shapes: 16 hex digits."""
    h = hashlib.sha256(extra.encode())
    for name, v in sorted(tensors.items()):
        h.update(name.encode() + str(tuple(v.shape)).encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def to_epsilon(out: torch.Tensor, x: torch.Tensor, signal: torch.Tensor, noise: torch.Tensor,
               prediction_type: str) -> torch.Tensor:
    """A network's raw prediction -> the noise eps of x = signal x0 + noise eps (signal, noise
    broadcast against x, e.g. (B, 1, 1, 1)):
      epsilon       eps
      v_prediction  eps = signal v + noise x           (v = signal eps - noise x0, VP models)
      sample        eps = (x - signal x0) / noise
      flow          eps = (x + signal v) / (signal + noise)   (v = eps - x0; signal + noise = 1)"""
    if prediction_type == "epsilon":
        return out
    if prediction_type == "v_prediction":
        return signal * out + noise * x
    if prediction_type == "sample":
        return (x - signal * out) / noise
    if prediction_type == "flow":
        return (x + signal * out) / (signal + noise)
    raise ValueError(f"unknown prediction type {prediction_type!r}: one of {', '.join(PREDICTION_TYPES)}")


class ModelAdapter:
    """What the engine needs of a diffusion model.

    Attributes: `denoiser` (alias `unet`), `alphas_cumprod` (float64, (T,): the signal fraction
    alpha^2 / (alpha^2 + sigma^2)), `num_train_timesteps`, `steps_offset`, `prediction_type`,
    `model_shape` (C, H, W), `scale` (image pixels per model pixel), `device`, `dtype` (the network's),
    `state_dtype` (trajectories and sums: float32 for half-precision networks), `name`, and the text
    conditioning `prompt`, `negative_prompt`, `guidance_scale`.
    """

    scale: int = 1
    name: str = "model"
    family: str = "pixel"
    prompt: str = ""
    negative_prompt: str = ""
    guidance_scale: float = 1.0

    def __init__(self, denoiser: torch.nn.Module, scheduler_config: dict, *, device="cpu", dtype=torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype
        self.denoiser = _to(denoiser, self.device, dtype).eval().requires_grad_(False)
        self.scheduler_config = dict(scheduler_config)
        self._init_noise_levels(scheduler_config)
        self.cond: dict[str, torch.Tensor] = {}
        self.uncond: dict[str, torch.Tensor] = {}

    def _init_noise_levels(self, config: dict) -> None:
        from .flow import flow_sigmas, is_flow_config

        if is_flow_config(config):
            sigma = flow_sigmas(config)
            self._signal, self._noise = 1 - sigma, sigma
            self._final = (1.0, 0.0)
            self.num_train_timesteps = len(sigma)
            self.steps_offset = 0
            self.prediction_type = "flow"
        else:
            from diffusers import DDIMScheduler

            keys = DDIMScheduler.from_config(config)  # validates and fills defaults
            self.scheduler_config = dict(keys.config)
            ac = keys.alphas_cumprod.double()
            self._signal, self._noise = ac.sqrt(), (1 - ac).sqrt()
            self._final = (float(ac[0]) ** 0.5, (1 - float(ac[0])) ** 0.5)  # set_alpha_to_one=False
            self.num_train_timesteps = int(keys.config.num_train_timesteps)
            self.steps_offset = int(keys.config.get("steps_offset", 0))
            self.prediction_type = str(keys.config.prediction_type)
            if self.prediction_type not in PREDICTION_TYPES[:3]:
                raise WorkbenchError(f"{self.name}: prediction_type {self.prediction_type!r} is not supported: "
                                     "epsilon, v_prediction and sample are (fix scheduler_config.json)")
        self.alphas_cumprod = self._signal.pow(2) / (self._signal.pow(2) + self._noise.pow(2))

    @property
    def unet(self) -> torch.nn.Module:
        """The denoiser network (a U-Net or a transformer; the name is kept for existing callers)."""
        return self.denoiser

    @property
    def state_dtype(self) -> torch.dtype:
        """dtype of trajectories and of accumulations: float32 when the network runs in half precision."""
        return torch.float32 if self.dtype in HALF_DTYPES else self.dtype

    # --- noise levels ---------------------------------------------------------------------
    def signal_noise(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_t, sigma_t), float64, of integer timesteps t (scalar or (B,)): x_t = alpha_t x0 + sigma_t eps."""
        idx = torch.as_tensor(t, dtype=torch.long).cpu()
        return self._signal[idx], self._noise[idx]

    def final_signal_noise(self) -> tuple[float, float]:
        """(alpha, sigma) of the clean end of the DDIM grid (a_0 for VP, as set_alpha_to_one=False; 1, 0 for flow)."""
        return self._final

    # --- geometry -----------------------------------------------------------------------
    @property
    def model_shape(self) -> tuple[int, int, int]:
        s = self.denoiser.config.sample_size
        s = (s, s) if isinstance(s, int) else tuple(s)
        return (self.denoiser.config.in_channels, *s)

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
    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict[str, torch.Tensor]) -> torch.Tensor:
        """The raw network prediction (its `prediction_type`) for a batch with conditioning `cond`
        (tensors with batch 1 or B): (B, C, H, W) -> (B, C, H, W)."""
        raise NotImplementedError

    def predict(self, x: torch.Tensor, t) -> torch.Tensor:
        """Raw prediction of the conditioned network, with classifier-free guidance when
        `guidance_scale` != 1: u + g (c - u), u = the negative prompt's, c = the prompt's."""
        xin = x.to(self.dtype)
        t = _timesteps(t, x.shape[0], x.device)
        if self.guidance_scale == 1.0 or not self.uncond:
            return self.forward(xin, t, self.cond)
        B = x.shape[0]
        both = {k: torch.cat([self.uncond[k].expand(B, *self.uncond[k].shape[1:]),
                              self.cond[k].expand(B, *self.cond[k].shape[1:])]) for k in self.cond}
        u, c = self.forward(torch.cat([xin, xin]), torch.cat([t, t]), both).chunk(2)
        return u + self.guidance_scale * (c - u)

    def eps(self, x: torch.Tensor, t, *, level: tuple[float, float] | None = None) -> torch.Tensor:
        """Noise prediction eps(x_t, t): (B, C, H, W) -> (B, C, H, W) in `state_dtype`. The raw
        prediction is converted with the (alpha, sigma) of t, or of `level` when the state lies at
        another noise level than the network is asked at (DDIM inversion: x_s evaluated at t)."""
        out = self.predict(x, t).to(self.state_dtype)
        if self.prediction_type == "epsilon":
            return out
        xs = x.to(self.state_dtype)
        if level is None:
            a, s = self.signal_noise(_timesteps(t, x.shape[0], "cpu"))
            a, s = (v.to(x.device, self.state_dtype).view(-1, *([1] * (x.ndim - 1))) for v in (a, s))
        else:
            a, s = level
        return to_epsilon(out, xs, a, s, self.prediction_type)

    def h(self, x: torch.Tensor, t) -> torch.Tensor:
        """h-space: conv_in, time embedding, down blocks and mid block (no up blocks). (B, Ch, Hh, Wh)."""
        raise NotImplementedError

    def feature_modules(self) -> list[torch.nn.Module]:
        """Modules whose outputs are the intermediate features for feature alignment."""
        return [self.denoiser.mid_block, *self.denoiser.up_blocks]

    def eps_and_features(self, x: torch.Tensor, t) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """eps plus the outputs of the `feature_modules` (mid and up blocks of a U-Net)."""
        feats: list[torch.Tensor] = []

        def keep(_m, _a, out):
            feats.append((out[-1] if isinstance(out, tuple) and self.family == "sd3" else
                          out[0] if isinstance(out, tuple) else out).to(self.state_dtype))

        handles = [m.register_forward_hook(keep) for m in self.feature_modules()]
        try:
            e = self.eps(x, t)
        finally:
            for hd in handles:
                hd.remove()
        return e, feats

    def autodiff(self) -> contextlib.AbstractContextManager:
        """Context in which JVPs and second-order AD run through the network (see `autodiff`)."""
        return forward_ad_safe(self.denoiser)

    # --- spaces -------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H*s, W*s) in [-1, 1] -> model space (B, C, H, W), `state_dtype`."""
        return images.to(self.device, self.state_dtype)

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """Model space (B, C, H, W) -> images (B, 3, H*s, W*s) in [-1, 1]."""
        return x0.clamp(-1, 1)

    def fingerprint(self) -> str:
        """Stable content hash of the weights that determine rates (U-Net, and VAE for latent models)."""
        if not hasattr(self, "_fp"):
            self._fp = _fingerprint(self.denoiser, dict(self.denoiser.config))
        return self._fp

    # --- conditioning -------------------------------------------------------------------
    @property
    def default_conditioning(self) -> bool:
        """True for the paper's setting: the empty prompt (or null class) and no guidance."""
        return self.prompt == "" and self.guidance_scale == 1.0

    def conditioning_fingerprint(self) -> str:
        """Hash over the whole conditioning (every value of the prompt's embedding(s), the negative
        prompt's when guided, and the guidance scale): 16 hex digits, '' without conditioning."""
        if not self.cond:
            return ""
        tensors = {f"cond.{k}": v for k, v in self.cond.items()}
        if self.guidance_scale != 1.0:
            tensors |= {f"uncond.{k}": v for k, v in self.uncond.items()}
        return tensor_fingerprint(tensors, extra=f"guidance={float(self.guidance_scale)!r}")

    def conditioning(self) -> dict:
        """What a cube records of the conditioning: prompt, negative_prompt, guidance_scale, prompt_fingerprint."""
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt,
                "guidance_scale": float(self.guidance_scale), "prompt_fingerprint": self.conditioning_fingerprint()}


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
        t = _timesteps(t, x.shape[0], x.device)
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


class LatentVAE:
    """What every latent adapter shares: a float32 `AutoencoderKL` (`vae`, `scaling_factor`, `shift_factor`)
    for `encode`/`decode`, and a fingerprint over the denoiser, the VAE and the whole default conditioning
    (`_default_conditioning_tensors`; every byte, since prompts can differ late in the embedding)."""

    def _init_vae(self, vae) -> None:
        self.vae = _to(vae, self.device, torch.float32).eval().requires_grad_(False)  # float32: half overflows
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
            h = hashlib.sha256(_fingerprint(self.denoiser, dict(self.denoiser.config)).encode())
            h.update(_fingerprint(self.vae, dict(self.vae.config)).encode())
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

    def set_conditioning(self, cond: dict, uncond: dict, *, prompt: str, negative_prompt: str,
                         guidance_scale: float) -> None:
        """Condition on a prompt (tensors with batch 1, as the family's text encoders give them)."""
        self.cond = {k: v.to(self.device, torch.float32) for k, v in cond.items()}
        self.uncond = {k: v.to(self.device, torch.float32) for k, v in uncond.items()}
        self.prompt, self.negative_prompt, self.guidance_scale = prompt, negative_prompt, float(guidance_scale)

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
        t = _timesteps(t, x.shape[0], x.device)
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


def _read_json(path: Path):
    """A model config file parsed, or a one-line error naming it."""
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path} is not valid JSON ({type(exc).__name__}): restore the model's config file") from None


def _load_error(root: Path, exc: Exception) -> WorkbenchError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return WorkbenchError(f"could not load the model in {root}: {first} (weights must be safetensors)")


def _check_prompt_args(family: str, text_conditioned: bool, prompt: str, negative_prompt: str,
                       guidance_scale: float) -> None:
    if not text_conditioned and (prompt or negative_prompt or guidance_scale != 1.0):
        raise WorkbenchError(f"this {family} model takes no prompt: drop --prompt, --negative-prompt and "
                             "--guidance-scale")
    if not (isinstance(guidance_scale, (int, float)) and guidance_scale == guidance_scale and guidance_scale >= 0):
        raise WorkbenchError(f"--guidance-scale must be a number >= 0, got {guidance_scale!r}")


def load_model(spec: str | os.PathLike | None = None, *, device: str | None = None,
               dtype: torch.dtype = torch.float32, prompt: str = "", negative_prompt: str = "",
               guidance_scale: float = 1.0) -> ModelAdapter:
    """Load a model offline: `None`/"default" (shipped), a local diffusers folder, or a repo id
    already in the local Hugging Face cache. Pixel models need unet/ + scheduler/; SD-family ones
    also vae/, text_encoder/ and tokenizer/ (SDXL: also text_encoder_2/, tokenizer_2/); transformer
    families transformer/ + vae/ + scheduler/ (workbench.families.transformers). Weights load from
    safetensors only. `prompt` / `negative_prompt` / `guidance_scale` condition text-conditioned
    families (the empty prompt without guidance is the default, the paper's setting)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .validate import check_device, check_dtype, check_scheduler_config

    device, dtype = check_device(device), check_dtype(dtype)
    root = _resolve(spec)
    sched_file = root / "scheduler" / "scheduler_config.json"
    if (root / "transformer" / "config.json").exists() and not (root / "unet").exists():
        if not sched_file.exists():
            raise WorkbenchError(f"{root} has no scheduler/scheduler_config.json: copy the scheduler folder of the model")
        from .families.transformers import load_transformer_model

        return load_transformer_model(root, check_scheduler_config(_read_json(sched_file), str(sched_file)), device=device, dtype=dtype,
                                      prompt=prompt, negative_prompt=negative_prompt, guidance_scale=guidance_scale)
    unet_dir = root / "unet"
    if not (unet_dir / "config.json").exists():
        raise WorkbenchError(f"{root} has no unet/config.json: pass a diffusers model folder "
                             "(unet/, scheduler/, and vae/ text_encoder/ tokenizer/ for Stable Diffusion; "
                             "transformer/ for DiT, PixArt and SD3)")
    if not sched_file.exists():
        raise WorkbenchError(f"{root} has no scheduler/scheduler_config.json: copy the scheduler folder of the model")
    sched_cfg = check_scheduler_config(_read_json(sched_file), str(sched_file))
    unet_cfg = _read_json(unet_dir / "config.json")
    if not isinstance(unet_cfg, dict):
        raise WorkbenchError(f"{unet_dir / 'config.json'} must hold a JSON object (the U-Net's config): copy the "
                             "model's unet folder again")
    cls_name = unet_cfg.get("_class_name", "")
    if cls_name == "UNet2DConditionModel":
        return _load_sd_family(root, sched_cfg, unet_cfg, device=device, dtype=dtype, prompt=prompt,
                               negative_prompt=negative_prompt, guidance_scale=guidance_scale)
    _check_prompt_args("pixel", False, prompt, negative_prompt, guidance_scale)
    from diffusers import UNet2DModel

    try:
        unet = UNet2DModel.from_pretrained(unet_dir, use_safetensors=True, local_files_only=True)
    except (OSError, EnvironmentError, ValueError) as exc:
        raise _load_error(root, exc) from None
    return PixelAdapter(unet, sched_cfg, device=device, dtype=dtype, name=root.name)


def _load_sd_family(root: Path, sched_cfg: dict, unet_cfg: dict, *, device, dtype, prompt: str,
                    negative_prompt: str, guidance_scale: float) -> StableDiffusionAdapter:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from .families.text import encode_sd_prompt, encode_sdxl_prompt

    xl = unet_cfg.get("addition_embed_type") == "text_time"
    subs = ("vae", "text_encoder", "tokenizer") + (("text_encoder_2", "tokenizer_2") if xl else ())
    for sub in subs:
        if not (root / sub).exists():
            raise WorkbenchError(f"{root} has no {sub}/ folder: a {'SDXL' if xl else 'Stable Diffusion'} model "
                                 f"needs unet/, scheduler/ and {', '.join(s + '/' for s in subs)}")
    _check_prompt_args("SD", True, prompt, negative_prompt, guidance_scale)
    try:
        unet = UNet2DConditionModel.from_pretrained(root / "unet", use_safetensors=True, local_files_only=True)
        vae = AutoencoderKL.from_pretrained(root / "vae", use_safetensors=True, local_files_only=True)
        src = str(root.resolve()) + _fingerprint(unet, dict(unet.config))
        if xl:
            size = (unet.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1),) * 2
            enc = lambda text, zeros=False: encode_sdxl_prompt(root, text, src, size=size, zeros=zeros)  # noqa: E731
            neg = enc(negative_prompt, zeros=negative_prompt == "" and _force_zeros(root))
        else:
            enc = lambda text: encode_sd_prompt(root, text, src)  # noqa: E731
            neg = enc(negative_prompt)
        empty = enc("")
        cond = empty if prompt == "" else enc(prompt)
    except WorkbenchError:
        raise
    except (OSError, EnvironmentError, ValueError) as exc:
        raise _load_error(root, exc) from None
    ad = StableDiffusionAdapter(unet, vae, sched_cfg, cond, device=device, dtype=dtype, name=root.name,
                                empty_embedding=empty["encoder_hidden_states"])
    ad.set_conditioning(cond, neg, prompt=prompt, negative_prompt=negative_prompt, guidance_scale=guidance_scale)
    ad.family = "sdxl" if xl else "sd"
    return ad


def _force_zeros(root: Path) -> bool:
    """SDXL pipelines' `force_zeros_for_empty_prompt` (model_index.json; default True)."""
    index = root / "model_index.json"
    if index.exists():
        return bool(json.loads(index.read_text()).get("force_zeros_for_empty_prompt", True))
    return True
