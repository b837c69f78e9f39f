"""`workbench train`: train (or resume) the default pixel-space DDPM, then export its EMA weights."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train or resume the default pixel-space DDPM on a folder of photographs")
    p.add_argument("data", help="folder of photographs (the last --holdout by sorted name are held out)")
    p.add_argument("--checkpoints", default="checkpoints/default", help="checkpoint folder (resumes if present)")
    p.add_argument("--export", default=None, help="write the EMA model (unet/ + scheduler/) to this folder at the end")
    p.add_argument("--minutes", type=float, default=float("inf"), help="stop after this many minutes (resumable)")
    p.add_argument("--steps", type=int, default=100_000, help="total optimisation steps")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--holdout", type=int, default=50)
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from ..train import TrainConfig, export_model, train

    cfg = TrainConfig(data_dir=args.data, checkpoint_dir=args.checkpoints, resolution=args.resolution,
                      holdout=args.holdout, batch_size=args.batch_size, max_steps=args.steps,
                      max_minutes=args.minutes, device=args.device)
    bar = tqdm(total=cfg.max_steps, desc="train", dynamic_ncols=True)

    def show(info: dict) -> None:
        bar.n = info["step"]
        bar.set_postfix(loss=f"{info['loss']:.4f}")

    ckpt = train(cfg, show)
    bar.close()
    print(f"checkpoint: {ckpt}")
    if args.export:
        print(f"exported: {export_model(ckpt, args.export)}")
    return 0
