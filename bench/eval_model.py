"""Model-card figures of one or more pixel models, paired (same held-out images, same noise seed).

    python -m bench.eval_model MODEL [MODEL ...] [--figures mse,psnr,samples,grid,fp16,x0noise,samplestats]
                               [--psnr-images 50] [--samples-png PATH] [--beside-photos-png PATH]
                               [--out results.json]

MODEL is a diffusers folder (unet/ + scheduler/) or "default". Figures: held-out epsilon MSE at
t = 50, 250, 500, 750, 950 on the 50 held-out OSIE photos (last 50 by sorted name, whole-image
resizes, one fixed noise draw per t shared by all models); DDIM-50 invert-then-generate PSNR, with
the engine's fixed-point refined inversion and with plain DDIM inversion;
16 DDIM-50 samples (seed 0) as a picture; the 8-pixel grid power fraction of the fluctuation maps
of 8 of those samples (DDIM-20, Hutchinson K=8) and, paired across models, of every 6th held-out
photo (`grid-photos`, 8 of them); the held-out MSE again with the weights rounded
to float16 (is an fp16 file lossless?). Generation (`x0noise`, `samplestats`): the model's x0
from pure noise (8 seeded noise images) at t = 980, 900, 700, 500 (mean |channel mean|, spatial
std), and 32 DDIM-50 samples (seed 0) against the first 32 held-out photos resized as the workbench
resizes them (spatial std, energy distance of the per-image mean colours, power-spectrum slope);
`--beside-photos-png` writes the first 16 samples of the LAST model beside 16 of those photos.
The held-out MSE is also given for v = sqrt(abar) eps - sqrt(1 - abar) x0 (`heldout_v_mse`), the
target of v-prediction models. The machine's load average is recorded beside each model.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from bench.measure import load_average
from workbench.adapters import load_model
from workbench.ddim import INVERSION_FIXED_POINT
from workbench.model_eval import (EVAL_TIMESTEPS, fluctuation_maps, generate_samples, heldout_losses, heldout_mses,
                                  photo_batch, reconstruction_psnrs, sample_vs_photo_stats, side_by_side, tile_grid,
                                  x0_from_noise)
from workbench.fluctuation import grid_power
from workbench.splits import split_held_out
from workbench.train import list_images

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "osie" / "data" / "stimuli"
FIGURES = ("mse", "psnr", "samples", "grid", "grid-photos", "fp16", "x0noise", "samplestats")
GENERATION_SAMPLES = 32


def heldout_files(data: Path = DATA, held_out: int = 50) -> list[Path]:
    """The held-out photos: the last `held_out` of the folder by file name (`workbench.splits`)."""
    return split_held_out(list_images(data), held_out, need_train=True)[1]


def _save_png(image, path: str | Path, scale: int = 2) -> str:
    """Write `image` enlarged `scale` times (nearest) to `path` through a temporary name."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(path).with_suffix(".partial.png")
    image.resize((scale * image.width, scale * image.height), resample=0).save(tmp)
    tmp.replace(path)
    return str(path)


def evaluate(model: str, figures=FIGURES, *, psnr_images: int = 50, samples_png: str | None = None,
             grid_samples: int = 8, files: list[Path] | None = None, device: str = "cpu",
             beside_photos_png: str | None = None) -> dict:
    """The model-card figures of one model folder (see the module docstring); `files` default to
    the 50 held-out OSIE photos."""
    adapter = load_model(str(model), device=device)
    files = heldout_files() if files is None else files
    out: dict = {"model": str(model), "load_start": load_average()}
    t0 = time.time()
    if "mse" in figures:
        both = heldout_mses(adapter, files, EVAL_TIMESTEPS, seed=0)
        mse = both["eps"]
        out["heldout_eps_mse"] = {str(t): v for t, v in mse.items()}
        out["heldout_eps_mse_mean"] = float(np.mean(list(mse.values())))
        out["heldout_v_mse"] = {str(t): v for t, v in both["v"].items()}
    if "fp16" in figures:
        unet = getattr(adapter, "denoiser", None) or getattr(adapter, "unet", None)
        if unet is not None:
            saved = {k: v.clone() for k, v in unet.state_dict().items()}
            with torch.no_grad():
                for p in unet.parameters():
                    p.copy_(p.half().float())
            mse16 = heldout_losses(adapter, files, EVAL_TIMESTEPS, seed=0)
            unet.load_state_dict(saved)
            out["heldout_eps_mse_fp16_weights"] = {str(t): v for t, v in mse16.items()}
            out["heldout_eps_mse_fp16_weights_mean"] = float(np.mean(list(mse16.values())))
    if "psnr" in figures:
        # the engine's inversion (fixed-point refined, INVERSION_FIXED_POINT) and plain DDIM inversion
        for key, fp in (("heldout_ddim50_reconstruction_psnr_db", INVERSION_FIXED_POINT),
                        ("heldout_ddim50_plain_inversion_psnr_db", 0)):
            psnr = reconstruction_psnrs(adapter, files[:psnr_images], steps=50, fixed_point=fp)
            out[key] = {"mean": float(psnr.mean()), "median": float(np.median(psnr)), "min": float(psnr.min()),
                        "images": int(len(psnr)), "fixed_point": fp}
    if "x0noise" in figures:
        out["x0_from_pure_noise"] = {str(t): v for t, v in x0_from_noise(adapter, n=8, seed=0).items()}
    generated = None
    if "samplestats" in figures:
        generated = generate_samples(adapter, GENERATION_SAMPLES, steps=50, seed=0)
        photos = photo_batch(adapter, files[:GENERATION_SAMPLES])
        out["samples_vs_photos"] = {**sample_vs_photo_stats(generated, photos),
                                    "settings": f"{GENERATION_SAMPLES} DDIM-50 samples (seed 0, eta 0) vs the first "
                                                f"{len(photos)} evaluation photos (whole-image resizes); 0-1 scale"}
        if beside_photos_png:
            out["beside_photos_png"] = _save_png(side_by_side(generated[:16], photos[:16]), beside_photos_png)
    if "samples" in figures or "grid" in figures:
        # the first 16 of the 32 generation samples are these 16 (same seed, drawn in order)
        samples = generated[:16] if generated is not None else generate_samples(adapter, 16, steps=50, seed=0)
        if samples_png:
            out["samples_png"] = _save_png(tile_grid(samples), samples_png)
        if "grid" in figures:
            maps = fluctuation_maps(adapter, samples[:grid_samples], steps=20, K=8)
            fr = [grid_power(m, log=False) for m in maps]
            h, w = maps.shape[1:]
            out["samples_fluctuation_grid8_power"] = {
                "mean": float(np.mean(fr)), "per_sample": [round(f, 4) for f in fr],
                "white_noise_level": (64 - 1) / (h * w - 1),
                "settings": f"{grid_samples} samples (seed 0), DDIM-20 inversion, Hutchinson K=8, h rate, "
                            "window 3, t_b 0, normalised"}
    if "grid-photos" in figures:  # paired across models: the same photos, unlike the samples
        photos = files[::6][:grid_samples]
        maps = fluctuation_maps(adapter, photo_batch(adapter, photos), steps=20, K=8)
        fr = [grid_power(m, log=False) for m in maps]
        out["photos_fluctuation_grid8_power"] = {
            "mean": float(np.mean(fr)), "per_image": [round(f, 4) for f in fr], "images": [p.name for p in photos],
            "settings": "every 6th evaluation photo, DDIM-20 inversion, Hutchinson K=8, h rate, window 3, t_b 0, "
                        "normalised"}
    out["eval_s"] = round(time.time() - t0, 1)
    out["load_end"] = load_average()
    return out


def append_history(card_path: str | Path, entry: dict) -> dict:
    """Add one committed checkpoint's figures to the card's `history` list (written atomically)."""
    card_path = Path(card_path)
    card = json.loads(card_path.read_text())
    card.setdefault("history", []).append(entry)
    tmp = card_path.with_suffix(".partial")
    tmp.write_text(json.dumps(card, indent=1))
    tmp.replace(card_path)
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--figures", default=",".join(FIGURES))
    ap.add_argument("--psnr-images", type=int, default=50)
    ap.add_argument("--samples-png", default=None, help="write the 16-sample grid of the LAST model here")
    ap.add_argument("--beside-photos-png", default=None,
                    help="write 16 samples of the LAST model beside 16 held-out photos here (needs samplestats)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    figures = tuple(args.figures.split(","))
    results = []
    for i, m in enumerate(args.models):
        last = i == len(args.models) - 1
        r = evaluate(m, figures, psnr_images=args.psnr_images, samples_png=args.samples_png if last else None,
                     beside_photos_png=args.beside_photos_png if last else None)
        print(json.dumps(r), flush=True)
        results.append(r)
    if len(results) > 1 and all("heldout_eps_mse_mean" in r for r in results):
        base = results[0]["heldout_eps_mse_mean"]
        for r in results[1:]:
            print(f"{r['model']}: held-out eps MSE mean {r['heldout_eps_mse_mean']:.5f} vs {base:.5f} "
                  f"({100 * (1 - r['heldout_eps_mse_mean'] / base):+.1f} % better)")
    if args.out:
        tmp = Path(args.out).with_suffix(".partial")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

