"""Loading a model offline: the shipped default, a local diffusers folder or a repo id already in the
local Hugging Face cache, as the adapter of its family (pixel U-Net, SD-1/2 / SDXL, DiT / PixArt /
SD3). Nothing is downloaded; weights load from safetensors only."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ..default_model import DEFAULT_MODEL_DIR
from ..errors import WorkbenchError
from ..memory import MemoryBudget
from ..validate import check_device, check_dtype, check_scheduler_config
from .contract import ModelAdapter, module_fingerprint
from .latent import StableDiffusionAdapter
from .pixel import PixelAdapter
from .text import encode_sd3_prompt, encode_sd_prompt, encode_sdxl_prompt, encode_t5_prompt
from .transformer import TRANSFORMER_FAMILIES, TransformerAdapter

__all__ = ["SD21_BASE", "load_model", "load_transformer_model"]

SD21_BASE = "stabilityai/stable-diffusion-2-1-base"


def _hf_cache_snapshot(repo_id: str) -> Path | None:
    """The local Hugging Face cache's snapshot folder of `repo_id` (its `main` ref), or None.
    Reads the cache layout (models--ORG--NAME/refs/main -> snapshots/HASH); nothing is fetched."""
    # imported here, not at the top: its constants read HF_HOME and HF_HUB_OFFLINE once, when imported,
    # and the command line sets the offline default after `workbench --help` has imported this module
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
               guidance_scale: float = 1.0, memory_budget: MemoryBudget | None = None) -> ModelAdapter:
    """Load a model offline: `None`/"default" (shipped), a local diffusers folder, or a repo id
    already in the local Hugging Face cache. Pixel models need unet/ + scheduler/; SD-family ones
    also vae/, text_encoder/ and tokenizer/ (SDXL: also text_encoder_2/, tokenizer_2/); transformer
    families transformer/ + vae/ + scheduler/ (`load_transformer_model`). Weights load from
    safetensors only. `prompt` / `negative_prompt` / `guidance_scale` condition text-conditioned
    families (the empty prompt without guidance is the default, the paper's setting). `memory_budget`
    becomes the adapter's `memory_budget` (None: automatic)."""
    adapter = _load(spec, device=device, dtype=dtype, prompt=prompt, negative_prompt=negative_prompt,
                    guidance_scale=guidance_scale)
    adapter.memory_budget = memory_budget
    return adapter


def _load(spec, *, device, dtype, prompt: str, negative_prompt: str, guidance_scale: float) -> ModelAdapter:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    device, dtype = check_device(device), check_dtype(dtype)
    root = _resolve(spec)
    sched_file = root / "scheduler" / "scheduler_config.json"
    if (root / "transformer" / "config.json").exists() and not (root / "unet").exists():
        if not sched_file.exists():
            raise WorkbenchError(f"{root} has no scheduler/scheduler_config.json: copy the scheduler folder of the model")
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
    from diffusers import UNet2DModel  # heavy: loaded only when a model is

    try:
        unet = UNet2DModel.from_pretrained(unet_dir, use_safetensors=True, local_files_only=True)
    except (OSError, EnvironmentError, ValueError) as exc:
        raise _load_error(root, exc) from None
    return PixelAdapter(unet, sched_cfg, device=device, dtype=dtype, name=root.name)


def _load_sd_family(root: Path, sched_cfg: dict, unet_cfg: dict, *, device, dtype, prompt: str,
                    negative_prompt: str, guidance_scale: float) -> StableDiffusionAdapter:
    from diffusers import AutoencoderKL, UNet2DConditionModel  # heavy: loaded only when a model is

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
        src = str(root.resolve()) + module_fingerprint(unet, dict(unet.config))
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


def _transformer_class(config: dict):
    import diffusers  # heavy: loaded only when a model is

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
    from diffusers import AutoencoderKL  # heavy: loaded only when a model is

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
        key = str(root.resolve()) + module_fingerprint(net, dict(net.config))
        if family == "dit":
            enc = lambda s: _dit_condition(net, s)  # noqa: E731
        elif family == "pixart":
            from transformers import AutoTokenizer  # heavy: only PixArt needs it here

            L = min(120, int(AutoTokenizer.from_pretrained(root / "tokenizer", local_files_only=True).model_max_length))

            def enc(s):
                c = encode_t5_prompt(root, s, key, max_length=L)
                if net.config.sample_size == 128:  # PixArt-alpha 1024: resolution / aspect-ratio conditioning
                    size = float(net.config.sample_size * 8)
                    c |= {"resolution": torch.tensor([[size, size]]), "aspect_ratio": torch.tensor([[1.0]])}
                return c
        else:
            enc = lambda s: encode_sd3_prompt(root, s, key,  # noqa: E731
                                                   joint_attention_dim=int(net.config.joint_attention_dim))
        empty = enc("")
        cond = empty if prompt == "" else enc(prompt)
        uncond = enc(negative_prompt) if negative_prompt else empty
    except WorkbenchError:
        raise
    except (OSError, EnvironmentError, ValueError) as exc:
        raise _load_error(root, exc) from None
    ad = TransformerAdapter(net, vae, sched_cfg, family=family, empty=empty, device=device, dtype=dtype,
                            name=root.name)
    ad.set_conditioning(cond, uncond, prompt=prompt, negative_prompt=negative_prompt, guidance_scale=guidance_scale)
    return ad
