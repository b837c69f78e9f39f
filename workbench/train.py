"""`workbench train`: train the shipped pixel-space DDPM on a folder of photographs.

DDPM epsilon-prediction loss (Ho et al. 2020, Eq. 14) on random multi-scale square crops with
horizontal flips, AdamW, an EMA of the weights. Resumable: a checkpoint folder holds the model,
its EMA, the optimiser state (all safetensors) and a JSON of the step counter and RNG seed.
"""
from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from .default_model import default_scheduler_config, default_unet_config
from .errors import WorkbenchError

__all__ = ["TrainConfig", "train", "list_images", "split_holdout", "load_photo_bank", "random_crops",
           "export_model"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True)
class TrainConfig:
    """One training run: data, model size, optimisation and checkpointing."""

    data_dir: str
    checkpoint_dir: str
    resolution: int = 64
    holdout: int = 50
    batch_size: int = 32
    lr: float = 3e-4
    warmup_steps: int = 100
    ema_decay: float = 0.999
    max_steps: int = 100_000
    max_minutes: float = float("inf")
    checkpoint_every: int = 100
    min_crop_fraction: float = 0.25
    bank_short_side: int = 300
    seed: int = 0
    device: str = "cpu"


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbenchError(f"no image folder at {folder}: pass an existing directory of photographs")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise WorkbenchError(f"no images (*.jpg, *.png, ...) in {folder}: point at a folder of photographs")
    return files


def split_holdout(files: list[Path], holdout: int) -> tuple[list[Path], list[Path]]:
    """(train, held-out): the last `holdout` files by sorted name are held out."""
    if holdout >= len(files):
        raise WorkbenchError(f"--holdout {holdout} leaves no training images out of {len(files)}")
    return files[: len(files) - holdout], files[len(files) - holdout:]


def load_photo_bank(files: list[Path], short_side: int) -> list[torch.Tensor]:
    """Each photo as a uint8 tensor (3, H, W), resized so that its short side is `short_side`."""
    bank = []
    for f in files:
        im = Image.open(f).convert("RGB")
        scale = short_side / min(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        bank.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
    return bank


def random_crops(bank: list[torch.Tensor], n: int, resolution: int, min_fraction: float,
                 generator: torch.Generator) -> torch.Tensor:
    """n random square crops (side uniform in [min_fraction, 1] x short side), flipped at random,
    resized to `resolution`; float (n, 3, R, R) in [-1, 1]."""
    out = torch.empty(n, 3, resolution, resolution)
    for k in range(n):
        img = bank[int(torch.randint(len(bank), (1,), generator=generator))]
        _, h, w = img.shape
        short = min(h, w)
        frac = min_fraction + (1 - min_fraction) * float(torch.rand((), generator=generator))
        side = max(resolution, int(round(frac * short)))
        y = int(torch.randint(h - side + 1, (1,), generator=generator))
        x = int(torch.randint(w - side + 1, (1,), generator=generator))
        crop = img[:, y:y + side, x:x + side].float()[None] / 127.5 - 1
        crop = F.interpolate(crop, size=(resolution, resolution), mode="bilinear", antialias=True,
                             align_corners=False)[0]
        if float(torch.rand((), generator=generator)) < 0.5:
            crop = crop.flip(-1)
        out[k] = crop
    return out.clamp(-1, 1)


def _optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    flat = {f"{i}.{k}": v.detach().clone().contiguous()
            for i, st in sd["state"].items() for k, v in st.items() if torch.is_tensor(v)}
    return flat, {"param_groups": sd["param_groups"]}


def _load_optimizer(opt: torch.optim.Optimizer, flat: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for key, v in flat.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _save_checkpoint(ckpt: Path, model, ema, opt, step: int, elapsed: float, cfg: TrainConfig,
                     losses: list[float]) -> None:
    tmp = ckpt.with_name(ckpt.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, tmp / "ema.safetensors")
    flat, meta = _optimizer_tensors(opt)
    save_file(flat, tmp / "optimizer.safetensors")
    (tmp / "state.json").write_text(json.dumps(
        {"step": step, "elapsed_s": elapsed, "config": asdict(cfg), "optimizer": meta,
         "recent_losses": losses[-200:], "hardware": f"{platform.processor() or platform.machine()}, "
         f"{torch.get_num_threads()} threads"}, indent=1))
    old = ckpt.with_name(ckpt.name + ".old")
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    if old.exists():
        for f in old.iterdir():
            f.unlink()
        old.rmdir()


def _lr_at(step: int, cfg: TrainConfig) -> float:
    return cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps)


def train(cfg: TrainConfig, progress: Callable[[dict], None] | None = None) -> Path:
    """Train (or resume) the default DDPM; returns the checkpoint folder. Stops at `max_steps` or
    after `max_minutes` of this call, saving a checkpoint either way."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(cfg.seed)
    files, _ = split_holdout(list_images(cfg.data_dir), cfg.holdout)
    bank = load_photo_bank(files, cfg.bank_short_side)
    model = UNet2DModel(**default_unet_config(cfg.resolution)).to(cfg.device)
    ema = UNet2DModel(**default_unet_config(cfg.resolution)).to(cfg.device)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = DDPMScheduler(**{k: v for k, v in default_scheduler_config().items() if k != "set_alpha_to_one"})
    abar = sched.alphas_cumprod.to(cfg.device)
    ckpt = Path(cfg.checkpoint_dir) / "latest"
    step, elapsed, losses = 0, 0.0, []
    if (ckpt / "state.json").exists():
        state = json.loads((ckpt / "state.json").read_text())
        model.load_state_dict(load_file(ckpt / "model.safetensors"))
        ema.load_state_dict(load_file(ckpt / "ema.safetensors"))
        _load_optimizer(opt, load_file(ckpt / "optimizer.safetensors"), state["optimizer"])
        step, elapsed, losses = state["step"], state["elapsed_s"], state["recent_losses"]
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    start = time.time()
    since_save = 0
    while step < cfg.max_steps:
        x0 = random_crops(bank, cfg.batch_size, cfg.resolution, cfg.min_crop_fraction, gen).to(cfg.device)
        t = torch.randint(0, len(abar), (cfg.batch_size,), generator=gen).to(cfg.device)
        noise = torch.randn(x0.shape, generator=gen).to(cfg.device)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = F.mse_loss(model(xt, t).sample, noise)
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        step += 1
        since_save += 1
        losses.append(float(loss))
        run_s = time.time() - start
        if progress:
            progress({"step": step, "loss": float(loss), "elapsed_s": elapsed + run_s})
        out_of_time = run_s > cfg.max_minutes * 60
        if since_save >= cfg.checkpoint_every or out_of_time or step >= cfg.max_steps:
            _save_checkpoint(ckpt, model, ema, opt, step, elapsed + run_s, cfg, losses)
            since_save = 0
        if out_of_time:
            break
    return ckpt


def export_model(checkpoint: str | Path, out_dir: str | Path, extra_card: dict | None = None) -> Path:
    """Write the EMA weights of a checkpoint as a diffusers model folder (unet/ + scheduler/,
    safetensors) with a `model_card.json` describing the training."""
    from diffusers import DDIMScheduler, UNet2DModel

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    state = json.loads((checkpoint / "state.json").read_text())
    res = state["config"]["resolution"]
    unet = UNet2DModel(**default_unet_config(res))
    unet.load_state_dict(load_file(checkpoint / "ema.safetensors"))
    unet.save_pretrained(out_dir / "unet", safe_serialization=True)
    DDIMScheduler(**default_scheduler_config()).save_pretrained(out_dir / "scheduler")
    card = {"architecture": "diffusers UNet2DModel (pixel space, DDPM epsilon prediction)",
            "parameters": sum(p.numel() for p in unet.parameters()),
            "resolution": res, "steps": state["step"], "training_time_s": state["elapsed_s"],
            "hardware": state.get("hardware"), "train_config": state["config"],
            "final_train_loss_mean_last_200": float(np.mean(state["recent_losses"]))}
    card.update(extra_card or {})
    (out_dir / "model_card.json").write_text(json.dumps(card, indent=1))
    return out_dir
