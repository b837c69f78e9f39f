"""`workbench train`: train (or resume) the default pixel-space DDPM, then export its EMA weights.

Runs at low priority (nice 19 by default). SIGTERM or Ctrl-C finishes the current step, writes a
checkpoint and exits (0 after SIGTERM, 130 after Ctrl-C); the next call resumes from it.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from .. import train as training
from ..errors import WorkbenchError
from .common import add_held_out_arg, add_overwrite_arg, output_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or resume the default pixel-space DDPM on a folder of photographs")
    p.add_argument("data", help="folder of photographs (the last --held-out by file name are held out)")
    p.add_argument("--checkpoints", default="checkpoints/default",
                   help="checkpoint folder (resumes from CHECKPOINTS/latest if present)")
    p.add_argument("--init", default="shipped",
                   help="start from this model folder when there is no checkpoint: 'shipped' (default), "
                        "'scratch' (random weights) or a folder written by --export")
    p.add_argument("--export", default=None, help="write the EMA model (unet/ + scheduler/) to this folder at the end "
                   "(a new or empty folder, or an earlier export; see --overwrite)")
    add_overwrite_arg(p)
    p.add_argument("--minutes", type=float, default=float("inf"), help="stop after this many minutes (resumable)")
    p.add_argument("--steps", type=int, default=1_000_000, help="stop at this total step count")
    p.add_argument("--resolution", type=int, default=32,
                   help="crop side in pixels (crops keep the 64x64 pixel scale; 64 for the full-size finetune)")
    p.add_argument("--crops", choices=("photo", "square"), default="photo",
                   help="photo (default): crops keep the photo's aspect and are squeezed to a square, the way the "
                        "workbench resizes a whole photo for the model; square: square crops of the short side")
    p.add_argument("--min-crop-fraction", type=float, default=0.5,
                   help="a crop covers a random fraction in [this, 1] of the photo (default 0.5)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    add_held_out_arg(p, help="how many photos to hold out of training: the last N by file name (default 50)")
    p.add_argument("--checkpoint-minutes", type=float, default=5.0, help="write a checkpoint this often")
    p.add_argument("--prediction", choices=("epsilon", "v"), default="v",
                   help="what the network predicts: v = sqrt(abar) eps - sqrt(1 - abar) x0 (default, as the shipped "
                        "model: its x0 from pure noise stays in the data range) or epsilon (the noise: the earlier "
                        "shipped weights; resume their checkpoints with it); a fine-tune may change it (the exported "
                        "scheduler says which)")
    p.add_argument("--snr-gamma", type=float, default=None,
                   help="weight the loss by min-SNR-gamma (Hang et al. 2023; 5 in the paper; default: off)")
    p.add_argument("--ema-decay", type=float, default=0.999,
                   help="EMA decay (default 0.999; warms up from 0.9 with each new optimiser)")
    amp = p.add_mutually_exclusive_group()
    amp.add_argument("--bf16", dest="bf16", action="store_const", const=True, default=None,
                     help="bfloat16 autocast (default: only where a one-off measurement shows it faster on this "
                          "machine; CPUs without AVX-512 BF16/AMX emulate it, several times slower)")
    amp.add_argument("--no-bf16", dest="bf16", action="store_const", const=False, help="train in float32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--prefetch", action="store_true", help="build batches on a background thread")
    p.add_argument("--nice", type=int, default=19, help="raise the process's niceness by this much (0: keep)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


#: what --export writes (a diffusers model folder and its card), checked before training starts
EXPORT_FILES = ("unet/config.json", "unet/diffusion_pytorch_model.safetensors", "scheduler/scheduler_config.json",
                "model_card.json")


def _export_dir(options):
    """The --export folder (`options`, a `workbench.outputs.OutputOptions`; None: no export) as an
    `OutputDir` of `train`, checked before training: new, empty, an earlier export (by its marker) or
    --overwrite; a folder that merely holds a model_card.json is the user's."""
    if options is None:
        return None
    out = options.folder("train")
    out.check_names(EXPORT_FILES)
    return out


def _export(checkpoint, out) -> Path:
    """export_model into a temporary folder, then staged into `out` all or nothing (with its marker)."""
    with tempfile.TemporaryDirectory(prefix="wb-export-") as tmp:
        training.export_model(checkpoint, tmp)
        with out.staging() as st:
            for f in sorted(Path(tmp).rglob("*")):
                if f.is_file():
                    st.write_bytes(f.relative_to(tmp).as_posix(), f.read_bytes())
    return out.path


def run(args) -> int:
    cfg = training.TrainConfig(data_dir=args.data, checkpoint_dir=args.checkpoints, resolution=args.resolution,
                               held_out=args.held_out, batch_size=args.batch_size, max_steps=args.steps, lr=args.lr,
                               max_minutes=args.minutes, checkpoint_minutes=args.checkpoint_minutes, device=args.device,
                               init=None if args.init == "scratch" else args.init, bf16=args.bf16,
                               channels_last=args.channels_last, prefetch=args.prefetch,
                               photo_aspect=args.crops == "photo", min_crop_fraction=args.min_crop_fraction,
                               prediction=args.prediction, snr_gamma=args.snr_gamma, ema_decay=args.ema_decay)
    if args.init not in ("shipped", "scratch") and not Path(args.init).is_dir():
        raise WorkbenchError(f"--init {args.init} is not a model folder: pass 'shipped', 'scratch' or a folder "
                             "written by workbench train --export")
    export_to = _export_dir(output_from(args, dest="export", flag="--export"))
    if args.nice > 0:
        os.nice(args.nice)
    got: list[int] = []

    def on_signal(signum, _frame) -> None:
        if got:  # a second signal: stop now, the last checkpoint stays
            raise KeyboardInterrupt
        got.append(signum)
        print(f"workbench train: {signal.Signals(signum).name}: finishing the step and writing a checkpoint",
              file=sys.stderr, flush=True)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    recent: list[float] = []
    bars: list = []  # created at the first step, so that a refused input prints nothing else

    def show(p) -> None:  # a workbench.progress.Progress of phase "train" or "checkpoint"
        if not bars:
            bars.append(tqdm(total=cfg.max_steps, desc="train", dynamic_ncols=True, mininterval=5, file=sys.stderr))
        bar = bars[0]
        bar.n = p.done
        saved = p.phase == "checkpoint"
        bar.set_postfix(loss=f"{p.loss:.4f}", saved=saved, refresh=False)
        recent.append(p.loss)
        if saved:
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(f"{time.strftime('%H:%M:%S')} checkpoint step {p.done} loss {sum(recent) / len(recent):.4f} "
                  f"(mean of {len(recent)}) training {p.seconds / 3600:.2f} h load {load:.1f}", flush=True)
            recent.clear()

    try:
        ckpt = training.train(cfg, show, should_stop=lambda: bool(got))
    finally:
        for bar in bars:
            bar.close()
        for s, h in old.items():
            signal.signal(s, h)
    print(f"checkpoint: {ckpt}")
    if args.export:
        print(f"exported: {_export(ckpt, export_to)}")
    if got:
        return 130 if got[0] == signal.SIGINT else 0
    return 0
