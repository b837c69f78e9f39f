"""Exact generation curves of random pixels of the shipped samples, for the shipped model.

    nice -n 19 python -m bench.reference.make_exact [--pixels 256] [--images osie-1654.jpg,osie-1668.jpg]

Per image: DDIM inversion with 50 steps (the engine's, each step fixed-point refined
`workbench.ddim.INVERSION_FIXED_POINT` times; recorded as `fixed_point`), then, for `--pixels` pixels drawn uniformly without
replacement (a seeded permutation of the model grid), the exact `h` rate of every channel's unit
variation at all 50 timesteps: one JVP column per pixel and channel, batched over the timesteps
(`linalg.jvp_columns_batched`). Pixels are processed in small blocks, alternating between images,
and the output is rewritten (temporary name, rename) after every block, so any prefix of an image's
pixels is itself a uniform random sample: the file is usable at any time, and rerunning resumes.

The file (`bench/reference/exact_h50.npz`, float32 rates) records the model fingerprint, the
images' SHA-256, the steps, the pixel order and a checksum of every trajectory state (its norm),
so that a consumer can tell whether the reference still describes the model it has
(`bench.reference.load`).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["REFERENCE_FILE", "pixel_order", "exact_channel_curves", "main"]

from . import REFERENCE_FILE  # noqa: E402  (one place names the file)
SEED = 20261130
STEPS = 50


def pixel_order(H: int, W: int, image_index: int) -> np.ndarray:
    """The seeded random order (H*W, 2) of (y, x) model pixels of image `image_index`."""
    perm = np.random.default_rng(SEED + image_index).permutation(H * W)
    return np.stack([perm // W, perm % W], 1).astype(np.int16)


def exact_channel_curves(adapter, trajectory, pixels: np.ndarray, *, definition: str = "h") -> np.ndarray:
    """Exact rates of every channel's unit variation of `pixels` (P, 2) at every timestep of the
    trajectory: (P, C, N) float64, ||J_t e_{c,y,x}|| by JVP columns batched over timesteps."""
    from workbench.linalg import jvp_columns_batched
    from workbench.rates import batched_rate_function, unit_tangents

    C, H, W = adapter.model_shape
    N = len(trajectory.schedule)
    flat = torch.tensor([c * H * W + int(y) * W + int(x) for (y, x) in pixels for c in range(C)])
    tang = unit_tangents((C, H, W), flat, device=adapter.device, dtype=adapter.dtype)
    fb = batched_rate_function(adapter, trajectory.schedule, torch.arange(N), definition)
    x = trajectory.states.to(adapter.device, adapter.dtype)
    with adapter.autodiff():
        cols = jvp_columns_batched(fb, x, tang[:, None].expand(len(tang), N, C, H, W), chunk=len(tang))
    sq = cols.reshape(len(tang), N, -1).double().pow(2).sum(-1)
    return sq.sqrt().reshape(len(pixels), C, N).cpu().numpy()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(out: Path, data: dict) -> None:
    tmp = out.with_name(out.name + ".partial")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **data)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(out)


def main(argv: list[str] | None = None) -> Path:
    """Compute (or resume) the reference file; returns its path."""
    from workbench.adapters import load_model
    from workbench.default_model import DEFAULT_MODEL_DIR, SAMPLES_DIR
    from workbench.ddim import INVERSION_FIXED_POINT
    from workbench.pipeline import prepare_image

    p = argparse.ArgumentParser(prog="python -m bench.reference.make_exact", description=__doc__.split("\n\n")[0])
    p.add_argument("--pixels", type=int, default=256, help="pixels per image (default 256)")
    p.add_argument("--images", default="osie-1654.jpg,osie-1668.jpg", help="shipped samples, comma-separated")
    p.add_argument("--block", type=int, default=2, help="pixels per JVP batch (x channels x 50 timesteps in flight)")
    p.add_argument("--out", type=Path, default=REFERENCE_FILE)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR)
    a = p.parse_args(argv)
    ad = load_model(a.model, device="cpu")
    C, H, W = ad.model_shape
    names = a.images.split(",")
    paths = [SAMPLES_DIR / n for n in names]
    fp = ad.fingerprint()
    prev = dict(np.load(a.out, allow_pickle=False)) if a.out.exists() else None
    if prev is not None and (str(prev["model_fingerprint"]) != fp or list(prev["images"]) != names):
        sys.exit(f"make_exact: error: {a.out} was made for another model or image list: move it away to start over")
    I, P = len(names), a.pixels
    rates = np.full((I, P, C, STEPS), np.nan, np.float32)
    done = np.zeros(I, np.int64)
    seconds = np.zeros(I)
    if prev is not None:
        n0 = min(P, prev["rates"].shape[1])
        rates[:, :n0] = prev["rates"][:, :n0]
        done = np.minimum(prev["n_done"], P)
        seconds = prev["seconds"].astype(float)
    orders = np.stack([pixel_order(H, W, i)[:P] for i in range(I)])
    trajs, norms, timesteps = [], [], None
    for path in paths:
        t0 = time.perf_counter()
        traj = prepare_image(ad, path, steps=STEPS).trajectory
        print(f"inverted {path.name} in {time.perf_counter() - t0:.0f} s (load {os.getloadavg()})", flush=True)
        trajs.append(traj)
        norms.append(traj.states.flatten(1).double().norm(dim=1).numpy())
        timesteps = traj.schedule.timesteps.numpy()

    def save() -> None:
        _write(a.out, dict(rates=rates, n_done=done, pixels=orders, images=np.array(names),
                           image_sha256=np.array([_sha(q) for q in paths]), model_fingerprint=np.array(fp),
                           model_name=np.array(str(ad.name)), definition=np.array("h"), steps=np.array(STEPS),
                           timesteps=timesteps, state_norms=np.stack(norms), seconds=seconds,
                           fixed_point=np.array(INVERSION_FIXED_POINT),
                           load_average=np.array(os.getloadavg()), torch_version=np.array(torch.__version__),
                           method=np.array("JVP columns (torch.func.jvp, vmap), per channel, batched over "
                                           "timesteps; float32 model, float64 norms")))

    while (done < P).any():
        for i in range(I):
            if done[i] >= P:
                continue
            s, e = int(done[i]), int(min(P, done[i] + a.block))
            t0 = time.perf_counter()
            rates[i, s:e] = exact_channel_curves(ad, trajs[i], orders[i, s:e])
            seconds[i] += time.perf_counter() - t0
            done[i] = e
            save()
            print(f"{names[i]}: {e}/{P} pixels, {seconds[i]:.0f} s (load {os.getloadavg()})", flush=True)
    save()
    return a.out


if __name__ == "__main__":
    main()
