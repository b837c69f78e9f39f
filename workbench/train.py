"""`workbench train`: train the shipped pixel-space DDPM on a folder of photographs.

DDPM epsilon-prediction loss (Ho et al. 2020, Eq. 14), or the v-prediction loss (Salimans & Ho
2022, v = sqrt(abar) eps - sqrt(1 - abar) x0), optionally min-SNR-gamma weighted (Hang et al.
2023), on random crops with horizontal flips, AdamW, an EMA of the weights. v-prediction matters
for generation: an epsilon model's x0 = (x_t - sqrt(1 - abar) eps_hat) / sqrt(abar) multiplies any
eps error by 1 / sqrt(abar) (130x at t = 980), so its x0 from pure noise leaves the data range; a
v model's x0 = sqrt(abar) x_t - sqrt(1 - abar) v_hat has no such factor. Crops smaller than the model's native size
(`full_resolution`) keep its pixel scale: a 32x32 crop is a 32x32 window of an image seen at the
64x64 scale, so the convolutional U-Net learns the same local statistics for a quarter of the
compute, and a short finetune at 64x64 restores the global context.

Resumable: a checkpoint folder `CHECKPOINTS/latest/` holds the model, its EMA, the optimiser state
(all safetensors), a JSON of the step counter and a marker file; nothing without that marker is
ever deleted. Without a checkpoint, training starts from a model folder (by default the shipped
one, whose EMA weights seed both the raw and the EMA model; the optimiser restarts).
"""
from __future__ import annotations

import json
import math
import platform
import queue
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file, save_file

from .default_model import DEFAULT_MODEL_DIR, default_scheduler_config, default_unet_config
from .errors import WorkbenchError
from .precision import train_autocast
from .progress import ProgressFn, emit
from .splits import DEFAULT_HELD_OUT, split_held_out

__all__ = ["TrainConfig", "StepOptions", "train", "list_images", "load_photo_bank", "random_crops",
           "noised", "train_target", "snr_weights", "train_step", "PREDICTIONS", "SCHEDULER_PREDICTION_TYPE", "BatchPrefetcher", "build_models", "export_model", "CHECKPOINT_MARKER"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
CHECKPOINT_MARKER = ".workbench-train"
PREDICTIONS = ("epsilon", "v")
SCHEDULER_PREDICTION_TYPE = {"epsilon": "epsilon", "v": "v_prediction"}  # diffusers' names
CHECKPOINT_FILES = frozenset({CHECKPOINT_MARKER, "model.safetensors", "ema.safetensors",
                              "optimizer.safetensors", "state.json"})


@dataclass(frozen=True)
class TrainConfig:
    """One training run: data, model size, optimisation and checkpointing.

    `resolution` is the crop side in pixels; `full_resolution` the model's native image size whose
    pixel scale the crops keep. `init` names the model folder to start from when the checkpoint
    folder is empty ("shipped", a diffusers folder, or None for random weights). `prediction` is the
    network's target ("epsilon" or "v"; the starting model's may differ: a fine-tune may change it);
    `snr_gamma` turns on min-SNR-gamma loss weights (None: every t weighs the same).
    """

    data_dir: str
    checkpoint_dir: str
    resolution: int = 32
    full_resolution: int = 64
    held_out: int = DEFAULT_HELD_OUT
    batch_size: int = 32
    lr: float = 3e-4
    warmup_steps: int = 100
    ema_decay: float = 0.999
    max_steps: int = 1_000_000
    max_minutes: float = float("inf")
    checkpoint_minutes: float = 5.0
    min_crop_fraction: float = 0.5
    photo_aspect: bool = True
    bank_short_side: int = 300
    seed: int = 0
    device: str = "cpu"
    init: str | None = "shipped"
    #: bfloat16 autocast: None (default) = where it measures faster on this machine (workbench.precision
    #: .train_autocast: emulated bf16 on a CPU without AVX-512 BF16/AMX is several times slower)
    bf16: bool | None = None
    channels_last: bool = False
    prefetch: bool = False
    prediction: str = "v"
    snr_gamma: float | None = None

    def __post_init__(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise WorkbenchError(msg)

        need(self.batch_size >= 1, f"--batch-size must be at least 1 (got {self.batch_size})")
        for flag, value in (("--resolution", self.resolution), ("--full-resolution", self.full_resolution)):
            need(value >= 8 and value % 8 == 0,
                 f"{flag} must be a positive multiple of 8 (the U-Net halves it 3 times; got {value})")
        need(self.resolution <= self.full_resolution,
             f"--resolution {self.resolution} exceeds the model size {self.full_resolution}: use at most that")
        need(self.held_out >= 0, f"--held-out must be >= 0 (got {self.held_out})")
        need(self.max_steps >= 1, f"--steps must be at least 1 (got {self.max_steps})")
        need(self.max_minutes > 0, f"--minutes must be positive (got {self.max_minutes})")
        need(self.checkpoint_minutes > 0, f"--checkpoint-minutes must be positive (got {self.checkpoint_minutes})")
        need(self.lr > 0 and math.isfinite(self.lr), f"--lr must be a positive number (got {self.lr})")
        need(0 < self.min_crop_fraction <= 1, f"--min-crop-fraction must be in (0, 1] (got {self.min_crop_fraction})")
        need(self.prediction in PREDICTIONS,
             f"--prediction must be one of {', '.join(PREDICTIONS)} (got {self.prediction!r})")
        need(self.snr_gamma is None or (self.snr_gamma > 0 and math.isfinite(self.snr_gamma)),
             f"--snr-gamma must be a positive number (got {self.snr_gamma})")
        need(0 <= self.ema_decay < 1, f"--ema-decay must be in [0, 1) (got {self.ema_decay})")


# --- data -------------------------------------------------------------------------------------

def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder, sorted by name; a broken link or symlink loop among them is an error."""
    folder = Path(folder)
    try:
        entries = sorted(folder.iterdir())
    except (NotADirectoryError, FileNotFoundError):
        raise WorkbenchError(f"no image folder at {folder}: pass an existing directory of photographs") from None
    except OSError as exc:
        raise WorkbenchError(f"cannot list {folder} ({exc.strerror}): pass a readable directory of photographs") from None
    files = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
    for p in files:
        if not p.is_file():
            raise WorkbenchError(f"{p} is not a readable image file (a symlink loop, a broken link or a folder): "
                                 "remove it from the data folder")
    if not files:
        raise WorkbenchError(f"no images (*.jpg, *.png, ...) in {folder}: point at a folder of photographs")
    return files


def load_photo_bank(files: list[Path], short_side: int) -> list[torch.Tensor]:
    """Each photo as a uint8 tensor (3, H, W), resized so that its short side is `short_side`."""
    bank = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("RGB")
        except (OSError, Image.DecompressionBombError) as exc:
            raise WorkbenchError(f"cannot read {f} as an image ({exc}): remove it from the data folder") from None
        scale = short_side / min(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        bank.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
    return bank


def random_crops(bank: list[torch.Tensor], n: int, resolution: int, min_fraction: float,
                 generator: torch.Generator, full_resolution: int | None = None,
                 photo_aspect: bool = False) -> torch.Tensor:
    """n random crops, flipped at random; float (n, 3, R, R) in [-1, 1], R = `resolution`.

    Square crops (default) cover a fraction uniform in [min_fraction, 1] of the photo's short side.
    With `photo_aspect` a crop covers that fraction of the photo's width and of its height and is
    squeezed to a square, the way the workbench resizes a whole photo to the model's input: at
    fraction 1 and `resolution == full_resolution` it is the whole photo resized. Both are scaled
    by resolution / full_resolution, so crops below the full size keep the full size's pixel scale
    (a 32x32 crop is a window of the 64x64 rendering)."""
    full = full_resolution or resolution
    out = torch.empty(n, 3, resolution, resolution)
    for k in range(n):
        img = bank[int(torch.randint(len(bank), (1,), generator=generator))]
        _, h, w = img.shape
        frac = min_fraction + (1 - min_fraction) * float(torch.rand((), generator=generator))
        if photo_aspect:
            ch, cw = (min(size, max(1, int(round(frac * size * resolution / full)))) for size in (h, w))
        else:
            ch = cw = min(h, w, max(resolution, int(round(frac * min(h, w) * resolution / full))))
        y = int(torch.randint(h - ch + 1, (1,), generator=generator))
        x = int(torch.randint(w - cw + 1, (1,), generator=generator))
        crop = img[:, y:y + ch, x:x + cw].float()[None] / 127.5 - 1
        crop = F.interpolate(crop, size=(resolution, resolution), mode="bilinear", antialias=True,
                             align_corners=False)[0]
        if float(torch.rand((), generator=generator)) < 0.5:
            crop = crop.flip(-1)
        out[k] = crop
    return out.clamp(-1, 1)


class BatchPrefetcher:
    """Builds the next training batches (crops, t, noise) on a background thread.

    Iterating yields (x0 (B,3,R,R), t (B,), noise (B,3,R,R)); `close()` stops the thread."""

    def __init__(self, make_batch: Callable[[], tuple[torch.Tensor, ...]], depth: int = 2):
        self._make = make_batch
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="train-prefetch")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._make()
            while not self._stop.is_set():
                try:
                    self._q.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def __next__(self) -> tuple[torch.Tensor, ...]:
        return self._q.get()

    def __iter__(self) -> BatchPrefetcher:
        return self

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --- one optimisation step --------------------------------------------------------------------

def noised(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (Ho et al. 2020, Eq. 4); shapes (B, C, H, W), t (B,)."""
    a = alphas_cumprod[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def train_target(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor,
                 prediction: str) -> torch.Tensor:
    """What the network learns to output for x_t = noised(x0, t, noise): the noise ("epsilon") or
    v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0 ("v", Salimans & Ho 2022, Sec. 4); (B, C, H, W)."""
    if prediction == "epsilon":
        return noise
    if prediction == "v":
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        return a.sqrt() * noise - (1 - a).sqrt() * x0
    raise ValueError(f"unknown prediction {prediction!r}: one of {', '.join(PREDICTIONS)}")


def snr_weights(t: torch.Tensor, alphas_cumprod: torch.Tensor, prediction: str, gamma: float | None) -> torch.Tensor:
    """Per-sample loss weights (B,) of min-SNR-gamma (Hang et al. 2023, Eq. 10 and Sec. 3.4):
    the x0-MSE weight min(SNR, gamma), SNR = abar / (1 - abar), written for the target's MSE:
    min(SNR, gamma) / SNR for epsilon, min(SNR, gamma) / (SNR + 1) for v. gamma None: all ones."""
    if gamma is None:
        return torch.ones(t.shape, dtype=alphas_cumprod.dtype, device=t.device)
    a = alphas_cumprod[t]
    snr = a / (1 - a)
    clipped = snr.clamp(max=gamma)
    if prediction == "epsilon":
        return clipped / snr
    if prediction == "v":
        return clipped / (snr + 1)
    raise ValueError(f"unknown prediction {prediction!r}: one of {', '.join(PREDICTIONS)}")


@dataclass(frozen=True)
class StepOptions:
    """The settings of one `train_step`: learning rate `lr`, EMA decay `ema_decay` (both change with
    the warm-ups), bfloat16 autocast `bf16`, the `prediction` target (one of PREDICTIONS) and the
    Min-SNR `snr_gamma` (None: unweighted)."""

    lr: float
    ema_decay: float
    bf16: bool = False
    prediction: str = "epsilon"
    snr_gamma: float | None = None


def train_step(model: torch.nn.Module, ema: torch.nn.Module, opt: torch.optim.Optimizer, x0: torch.Tensor,
               t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor, how: StepOptions) -> float:
    """One AdamW step on the MSE to `train_target` (epsilon: Ho et al. 2020, Eq. 14), weighted per
    sample by `snr_weights`, and an EMA update; returns the loss. x0, noise (B, 3, H, W), t (B,).

    With `how.bf16` the forward and backward run under bfloat16 autocast (weights stay float32)."""
    xt = noised(x0, t, noise, alphas_cumprod)
    target = train_target(x0, t, noise, alphas_cumprod, how.prediction)
    with torch.autocast(device_type=x0.device.type, dtype=torch.bfloat16, enabled=how.bf16):
        pred = model(xt, t).sample
    per_sample = (pred.float() - target).pow(2).mean(dim=(1, 2, 3))
    loss = (snr_weights(t, alphas_cumprod, how.prediction, how.snr_gamma).to(per_sample) * per_sample).mean()
    for g in opt.param_groups:
        g["lr"] = how.lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm, 1 - how.ema_decay)
    return float(loss.detach())


def _lr_at(steps_since_optimizer_start: int, cfg: TrainConfig) -> float:
    return cfg.lr * min(1.0, (steps_since_optimizer_start + 1) / cfg.warmup_steps)


# --- model folders and checkpoints --------------------------------------------------------------

def _unet_weights_file(model_dir: Path) -> Path:
    f = model_dir / "unet" / "diffusion_pytorch_model.safetensors"
    if not f.is_file():
        raise WorkbenchError(f"{model_dir} has no unet/diffusion_pytorch_model.safetensors: "
                             "pass --init with a model folder written by `workbench train --export`")
    return f


def _init_state(init: str | None) -> tuple[dict[str, torch.Tensor] | None, int, float]:
    """(weights or None for random, steps so far, training seconds so far) of a starting model folder."""
    if init is None or init == "scratch":
        return None, 0, 0.0
    model_dir = DEFAULT_MODEL_DIR if init == "shipped" else Path(init)
    weights = {k: v.float() for k, v in load_file(_unet_weights_file(model_dir)).items()}
    card_file = model_dir / "model_card.json"
    card = {}
    if card_file.is_file():
        try:
            card = json.loads(card_file.read_text())
        except ValueError:
            card = {}
    return weights, int(card.get("steps", 0)), float(card.get("training_time_s", 0.0))


def build_models(cfg: TrainConfig, weights: dict[str, torch.Tensor] | None = None):
    """(model, ema, optimizer) of the default architecture on cfg.device, both nets set to `weights`."""
    from diffusers import UNet2DModel

    model = UNet2DModel(**default_unet_config(cfg.full_resolution))
    if weights is not None:
        try:
            model.load_state_dict(weights)
        except RuntimeError as exc:
            raise WorkbenchError(f"the starting weights do not fit the default architecture "
                                 f"({str(exc).splitlines()[0]}): pass a model trained by workbench train") from None
    ema = UNet2DModel(**default_unet_config(cfg.full_resolution))
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(cfg.device, memory_format=fmt)
    ema.to(cfg.device, memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    return model, ema, opt


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


def _sibling(ckpt: Path, suffix: str) -> Path:
    return ckpt.with_name(ckpt.name + suffix)


def _check_ours(folder: Path) -> None:
    """Refuse a checkpoint folder that holds anything this module did not write."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise WorkbenchError(f"{folder} exists and is not a checkpoint folder: pass another --checkpoints folder")
    if not folder.is_dir():
        return
    names = {p.name for p in folder.iterdir()}
    if names and (CHECKPOINT_MARKER not in names or names - CHECKPOINT_FILES):
        foreign = sorted(names - CHECKPOINT_FILES) or sorted(names)
        raise WorkbenchError(f"{folder} holds files that workbench train did not write ({', '.join(foreign[:3])}): "
                             "pass another --checkpoints folder or move them away")


def _remove_ours(folder: Path) -> None:
    """Delete the files this module writes in `folder`, then the folder if that left it empty."""
    for name in CHECKPOINT_FILES:
        (folder / name).unlink(missing_ok=True)
    try:
        folder.rmdir()
    except OSError:
        pass


def prepare_checkpoint_folder(ckpt: Path) -> None:
    """Check `ckpt` and its .partial/.old siblings before any compute; recover a checkpoint that a
    crash left as `.old` between the two renames of a save."""
    if ckpt.parent.exists() and not ckpt.parent.is_dir():
        raise WorkbenchError(f"--checkpoints {ckpt.parent} is a file: pass a folder (it is created if missing)")
    for d in (ckpt, _sibling(ckpt, ".partial"), _sibling(ckpt, ".old")):
        _check_ours(d)
    old = _sibling(ckpt, ".old")
    if not ckpt.exists() and (old / "state.json").is_file():
        old.rename(ckpt)


def _save_checkpoint(ckpt: Path, model, ema, opt, cfg: TrainConfig, clock: dict, losses: list[float],
                     origin: dict) -> None:
    """Write model, EMA, optimiser and state.json to `ckpt` (staged beside it, then renamed); `clock`:
    {"step": int, "elapsed_s": float, "cpu_s": float} so far."""
    tmp, old = _sibling(ckpt, ".partial"), _sibling(ckpt, ".old")
    _remove_ours(tmp)
    tmp.mkdir(parents=True, exist_ok=False)
    (tmp / CHECKPOINT_MARKER).write_text("written by workbench train; safe to delete with this folder\n")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp / "model.safetensors")
    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, tmp / "ema.safetensors")
    flat, meta = _optimizer_tensors(opt)
    save_file(flat, tmp / "optimizer.safetensors")
    (tmp / "state.json").write_text(json.dumps(
        {"step": int(clock["step"]), "elapsed_s": float(clock["elapsed_s"]), "cpu_s": float(clock["cpu_s"]),
         "config": asdict(cfg), "optimizer": meta,
         "origin": origin,
         "recent_losses": losses[-200:], "hardware": f"{platform.processor() or platform.machine()}, "
         f"{torch.get_num_threads()} threads"}, indent=1))
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    if old.exists():
        _remove_ours(old)


def _read_state(ckpt: Path) -> dict:
    try:
        state = json.loads((ckpt / "state.json").read_text())
        if not isinstance(state, dict):
            raise ValueError("not an object")
        int(state["step"]), float(state["elapsed_s"]), state["optimizer"]["param_groups"]
        return state
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkbenchError(f"{ckpt / 'state.json'} is damaged ({type(exc).__name__}: {exc}): "
                             "pass another --checkpoints folder (this one is left untouched)") from None


def _resume(ckpt: Path, model, ema, opt) -> dict:
    state = _read_state(ckpt)
    try:
        model.load_state_dict(load_file(ckpt / "model.safetensors"))
        ema.load_state_dict(load_file(ckpt / "ema.safetensors"))
        _load_optimizer(opt, load_file(ckpt / "optimizer.safetensors"), state["optimizer"])
    except Exception as exc:  # safetensors and load_state_dict raise several types for a damaged file
        raise WorkbenchError(f"the checkpoint in {ckpt} is damaged ({type(exc).__name__}): "
                             "pass another --checkpoints folder (this one is left untouched)") from None
    return state


# --- the loop ---------------------------------------------------------------------------------

def train(cfg: TrainConfig, progress: ProgressFn | None = None,
          should_stop: Callable[[], bool] | None = None) -> Path:
    """Train (or resume) the default DDPM; returns the checkpoint folder.

    Stops at `max_steps`, after `max_minutes` of this call, or when `should_stop()` turns true
    (checked after every step), saving a checkpoint either way; also saves every
    `checkpoint_minutes`. `progress` gets a `Progress` after every step (phase "checkpoint" when it
    saved one, else "train"; done = the step of total = max_steps, `loss`, `seconds` of training). The checkpoint records
    wall seconds (`elapsed_s`, including the starting model's) and this process's CPU seconds
    summed over the resumed runs (`cpu_s`, from the first run that recorded it)."""
    ckpt = Path(cfg.checkpoint_dir) / "latest"
    prepare_checkpoint_folder(ckpt)
    files, _ = split_held_out(list_images(cfg.data_dir), cfg.held_out, need_train=True)
    resume = (ckpt / "state.json").is_file()
    if resume:
        was = _read_state(ckpt)["config"].get("prediction", "epsilon")  # a damaged checkpoint fails before the photos load
        if was != cfg.prediction:
            raise WorkbenchError(f"the checkpoint in {ckpt} was trained with --prediction {was}: resume it with "
                                 f"--prediction {was}, or pass another --checkpoints folder to start a {cfg.prediction} run")
    weights, step, elapsed = (None, 0, 0.0) if resume else _init_state(cfg.init)
    origin = {"init": cfg.init, "init_step": step, "init_elapsed_s": elapsed, "cpu_counted_from_step": step}
    cpu_before = 0.0  # process CPU seconds of earlier runs (not known for the starting model)
    torch.manual_seed(cfg.seed)
    model, ema, opt = build_models(cfg, weights)
    losses: list[float] = []
    if resume:
        state = _resume(ckpt, model, ema, opt)
        step, elapsed, losses = int(state["step"]), float(state["elapsed_s"]), list(state.get("recent_losses", []))
        origin = state.get("origin", origin)
        if "cpu_s" not in state:  # written before CPU time was recorded
            origin = {**origin, "cpu_counted_from_step": step}
        cpu_before = float(state.get("cpu_s", 0.0))
    bank = load_photo_bank(files, cfg.bank_short_side)
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(**{k: v for k, v in default_scheduler_config().items() if k != "set_alpha_to_one"})
    abar = sched.alphas_cumprod.to(cfg.device)
    gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format

    def make_batch() -> tuple[torch.Tensor, ...]:
        x0 = random_crops(bank, cfg.batch_size, cfg.resolution, cfg.min_crop_fraction, gen, cfg.full_resolution,
                          cfg.photo_aspect)
        t = torch.randint(0, len(abar), (cfg.batch_size,), generator=gen)
        return x0, t, torch.randn(x0.shape, generator=gen)

    batches = BatchPrefetcher(make_batch) if cfg.prefetch else iter(make_batch, None)
    bf16 = cfg.bf16
    if bf16 is None:
        bf16, _ = train_autocast(model, (cfg.batch_size, 3, cfg.resolution, cfg.resolution), cfg.device)
        cfg = replace(cfg, bf16=bf16)  # checkpoints and the model card record what ran
    start = last_save = time.time()
    cpu0 = time.process_time()
    try:
        while step < cfg.max_steps:
            x0, t, noise = (b.to(cfg.device) for b in next(batches))
            x0, noise = x0.contiguous(memory_format=fmt), noise.contiguous(memory_format=fmt)
            since_start = step - int(origin.get("init_step", 0))
            # Both warm-ups restart with the optimiser: a fine-tune into another target (epsilon -> v)
            # must not keep the starting weights in its EMA for thousands of steps.
            decay = min(cfg.ema_decay, (1 + since_start) / (10 + since_start))
            lr = _lr_at(since_start, cfg)
            loss = train_step(model, ema, opt, x0, t, noise, abar,
                              StepOptions(lr=lr, ema_decay=decay, bf16=bf16, prediction=cfg.prediction,
                                          snr_gamma=cfg.snr_gamma))
            step += 1
            losses.append(loss)
            now = time.time()
            out_of_time = now - start > cfg.max_minutes * 60
            stop = out_of_time or step >= cfg.max_steps or (should_stop is not None and should_stop())
            saved = stop or now - last_save > cfg.checkpoint_minutes * 60
            if saved:
                clock = {"step": step, "elapsed_s": elapsed + now - start,
                         "cpu_s": cpu_before + time.process_time() - cpu0}
                _save_checkpoint(ckpt, model, ema, opt, cfg, clock, losses, origin)
                last_save = now
            emit(progress, "checkpoint" if saved else "train", step, cfg.max_steps, loss=loss,
                 seconds=elapsed + now - start)
            if stop:
                break
    finally:
        if isinstance(batches, BatchPrefetcher):
            batches.close()
    return ckpt


def export_model(checkpoint: str | Path, out_dir: str | Path, extra_card: dict | None = None,
                 dtype: torch.dtype = torch.float32, weights: str = "ema") -> Path:
    """Write the EMA (or with weights="model" the raw) weights of a checkpoint as a diffusers model
    folder (unet/ + scheduler/, safetensors in `dtype`) with a `model_card.json` describing the training."""
    from diffusers import DDIMScheduler, UNet2DModel

    checkpoint, out_dir = Path(checkpoint), Path(out_dir)
    state = _read_state(checkpoint)
    res = state["config"].get("full_resolution", state["config"]["resolution"])
    unet = UNet2DModel(**default_unet_config(res))
    unet.load_state_dict(load_file(checkpoint / ("ema.safetensors" if weights == "ema" else "model.safetensors")))
    unet.to(dtype).save_pretrained(out_dir / "unet", safe_serialization=True)
    prediction = state["config"].get("prediction", "epsilon")
    DDIMScheduler(**{**default_scheduler_config(), "prediction_type": SCHEDULER_PREDICTION_TYPE[prediction]}
                  ).save_pretrained(out_dir / "scheduler")
    card = {"architecture": f"diffusers UNet2DModel (pixel space, DDPM {SCHEDULER_PREDICTION_TYPE[prediction]} "
                            "prediction)",
            "parameters": sum(p.numel() for p in unet.parameters()),
            "resolution": res, "weights": weights, "steps": state["step"], "training_time_s": state["elapsed_s"],
            "cpu_s": state.get("cpu_s"), "origin": state.get("origin"),
            "hardware": state.get("hardware"), "train_config": state["config"],
            "final_train_loss_mean_last_200": float(np.mean(state["recent_losses"] or [float("nan")]))}
    card.update(extra_card or {})
    tmp = out_dir / "model_card.json.partial"
    tmp.write_text(json.dumps(card, indent=1))
    tmp.replace(out_dir / "model_card.json")
    return out_dir
