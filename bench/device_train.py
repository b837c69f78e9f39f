"""Train the default model on a lent CUDA GPU for a time budget, then write its model-card figures.

    python -m bench.device_train --minutes 10 [--batch-size 256] [--resolution 64] [--out DIR]
    python -m bench.device_train --tiny          # a few seconds on the CPU (the test that keeps it alive)

Same architecture as the shipped model (4.3 M-parameter UNet2DModel, `default_unet_config`), so
the result can replace the shipped weights; bf16 autocast, channels_last, batches built on a
prefetch thread, starting from the shipped checkpoint (or the checkpoint in OUT/ckpt if one is
there). The recipe is v-prediction (`--prediction v`, default): an epsilon model's x0 from pure
noise leaves the data range, so its samples are flat saturated colours (docs/model.md,
"Generation"). Writes OUT/ckpt/latest (resumable with `workbench train --checkpoints OUT/ckpt`),
OUT/model-stepN-DATE (EMA weights, diffusers folder) and OUT/figures.json (the same figures as
`python -m bench.eval_model`, shipped model first, for a paired comparison).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.eval_model import DATA, evaluate
from bench.measure import load_average
from workbench.default_model import DEFAULT_MODEL_DIR
from workbench.train import TrainConfig, export_model, train


def _tiny_photos(folder: Path, n: int = 4) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--prediction", choices=("epsilon", "v"), default="v",
                    help="the network's target (v, default: see docs/model.md, Generation)")
    ap.add_argument("--snr-gamma", type=float, default=None, help="min-SNR-gamma loss weights (default off)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default="device_train_out")
    ap.add_argument("--device", default=None, help="default: cuda if available")
    ap.add_argument("--tiny", action="store_true", help="CPU smoke run: random photos, 8x8 crops, 2 steps")
    args = ap.parse_args(argv)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    out = Path(args.out)
    print(f"device {device} ({torch.cuda.get_device_name() if device.startswith('cuda') else 'CPU'}), "
          f"load {load_average()}", flush=True)
    if args.tiny:
        data = _tiny_photos(Path(tempfile.mkdtemp(prefix="device-train-")) / "photos")
        cfg = TrainConfig(data_dir=str(data), checkpoint_dir=str(out / "ckpt"), resolution=8, batch_size=2,
                          held_out=1, max_steps=2, init=None, bf16=True, device=device,
                          prediction=args.prediction, snr_gamma=args.snr_gamma)
    else:
        if device == "cpu":
            print("no CUDA device: pass --tiny for the CPU smoke run, or use `workbench train` on a CPU")
            return 2
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        data = Path(args.data)
        cfg = TrainConfig(data_dir=str(data), checkpoint_dir=str(out / "ckpt"), resolution=args.resolution,
                          batch_size=args.batch_size, lr=args.lr, max_minutes=args.minutes, init="shipped",
                          bf16=True, channels_last=True, prefetch=True, checkpoint_minutes=5.0, device=device,
                          prediction=args.prediction, snr_gamma=args.snr_gamma)
    start = time.time()
    steps = []
    ckpt = train(cfg, progress=lambda p: steps.append(p.done))
    train_s = time.time() - start
    step = json.loads((ckpt / "state.json").read_text())["step"]
    final = out / f"model-step{step}-{time.strftime('%Y%m%d-%H%M%S')}"
    export_model(ckpt, out / (final.name + ".partial")).rename(final)
    figures = ("mse",) if args.tiny else ("mse", "psnr", "samples", "grid", "fp16", "x0noise", "samplestats")
    files = sorted(data.iterdir())[-1:] if args.tiny else None
    results = {"device": device, "train_s": round(train_s, 1), "steps_this_run": len(steps),
               "batch_size": cfg.batch_size, "resolution": cfg.resolution,
               "architecture": "default_unet_config (same as the shipped model)",
               "models": [evaluate(str(m), figures, files=files,
                                   samples_png=str(out / "samples.png") if m == final and not args.tiny else None)
                          for m in ((final,) if args.tiny else (DEFAULT_MODEL_DIR, final))]}
    (out / "figures.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k != "models"}))
    for r in results["models"]:
        print(r["model"], r.get("heldout_eps_mse_mean"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
