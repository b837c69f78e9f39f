"""The model contract: what the engine needs of a diffusion model (`ModelAdapter`), and the helpers
every family shares.

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

import torch

from ..autodiff import forward_ad_safe
from ..errors import WorkbenchError
from ..flow import flow_sigmas, is_flow_config
from ..memory import MemoryBudget

__all__ = ["PREDICTION_TYPES", "HALF_DTYPES", "ModelAdapter", "to_epsilon", "tensor_fingerprint", "module_fingerprint",
           "batch_timesteps", "cast_module"]

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample", "flow")
HALF_DTYPES = (torch.float16, torch.bfloat16)


def batch_timesteps(t, batch: int, device) -> torch.Tensor:
    """Integer timesteps as a (batch,) tensor on `device` (a scalar is expanded)."""
    t = torch.as_tensor(t, device=device)
    if t.ndim == 0:
        t = t.expand(batch)
    return t


def cast_module(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> torch.nn.Module:
    """module on `device` in `dtype` (casting only when the dtype differs: diffusers warns on every cast)."""
    p = next(module.parameters(), None)
    return module.to(device) if p is None or p.dtype == dtype else module.to(device, dtype)


def module_fingerprint(module: torch.nn.Module, config: dict) -> str:
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
    `state_dtype` (trajectories and sums: float32 for half-precision networks), `name`, the text
    conditioning `prompt`, `negative_prompt`, `guidance_scale`, and `memory_budget` (the peak memory
    chunked computations stay under; None: automatic).
    """

    scale: int = 1
    name: str = "model"
    family: str = "pixel"
    prompt: str = ""
    negative_prompt: str = ""
    guidance_scale: float = 1.0
    #: peak memory every chunked computation on this model stays under (`workbench.memory`);
    #: None: automatic, from the free memory at the time of each computation
    memory_budget: MemoryBudget | None = None

    def __init__(self, denoiser: torch.nn.Module, scheduler_config: dict, *, device="cpu", dtype=torch.float32):
        self.device = torch.device(device)
        self.dtype = dtype
        self.denoiser = cast_module(denoiser, self.device, dtype).eval().requires_grad_(False)
        self.scheduler_config = dict(scheduler_config)
        self._init_noise_levels(scheduler_config)
        self.cond: dict[str, torch.Tensor] = {}
        self.uncond: dict[str, torch.Tensor] = {}

    def _init_noise_levels(self, config: dict) -> None:
        if is_flow_config(config):
            sigma = flow_sigmas(config)
            self._signal, self._noise = 1 - sigma, sigma
            self._final = (1.0, 0.0)
            self.num_train_timesteps = len(sigma)
            self.steps_offset = 0
            self.prediction_type = "flow"
        else:
            from diffusers import DDIMScheduler  # heavy: `workbench --help` imports this module

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
        t = batch_timesteps(t, x.shape[0], x.device)
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
            a, s = self.signal_noise(batch_timesteps(t, x.shape[0], "cpu"))
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
            self._fp = module_fingerprint(self.denoiser, dict(self.denoiser.config))
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

    def set_conditioning(self, cond: dict, uncond: dict, *, prompt: str, negative_prompt: str,
                         guidance_scale: float) -> None:
        """Condition on a prompt (tensors with batch 1, as the family's text encoders give them)."""
        self.cond = {k: v.to(self.device, torch.float32) for k, v in cond.items()}
        self.uncond = {k: v.to(self.device, torch.float32) for k, v in uncond.items()}
        self.prompt, self.negative_prompt, self.guidance_scale = prompt, negative_prompt, float(guidance_scale)
