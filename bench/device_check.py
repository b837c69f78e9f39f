"""One device check: the SD-2.1-base architecture at 512x512 and SDXL's at 1024x1024 (random weights,
the real configs built in code, no download).

    python -m bench.device_check            # on a GPU: about 8 minutes on one H200 (not yet run on one)
    python -m bench.device_check --tiny     # the same sections on tiny models, on the CPU in seconds (CI)

Sections: a 50-step cube (inversion + Hutchinson `h` rates) at the default K and at 4x K (time, peak
memory, throughput in VJPs/s), a 300-iteration removal edit (time), float32 vs bfloat16 vs float16
agreement of the rates (same probes along the float32 trajectory: median relative difference and
Spearman correlation against float32), and one SDXL cube. Writes device_check.json and
device_check.md into --out, and prints the table with the load average. A section that fails is
recorded with its error and the others still run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .measure import load_average, peak_mb, reset_peak

__all__ = ["main", "sd21_adapter", "sdxl_adapter", "sdxl_unet_config"]

GOALS = {"sd21_cube_s": 30.0, "sd21_edit_300_s": 60.0}  # on one H200 (the goals)


def sdxl_unet_config() -> dict:
    """The public UNet config of stabilityai/stable-diffusion-xl-base-1.0."""
    return dict(sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
                use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
                projection_class_embeddings_input_dim=2816, norm_num_groups=32)


def _vae(tiny: bool):
    """SD's AutoencoderKL architecture (random weights; scale 8), or the tests' tiny one (scale 2)."""
    from diffusers import AutoencoderKL

    from workbench.tiny import tiny_vae

    if tiny:
        return tiny_vae(0)
    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         layers_per_block=2, sample_size=512, scaling_factor=0.18215)


def _sd_sched() -> dict:
    from workbench.default_model import default_scheduler_config

    return default_scheduler_config() | {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                                         "steps_offset": 1}


def sd21_adapter(tiny: bool, *, device, dtype=torch.float32):
    """SD-2.1-base (v-prediction off: the base model predicts epsilon) with a random prompt embedding."""
    from diffusers import UNet2DConditionModel

    from workbench.adapters import StableDiffusionAdapter
    from workbench.tiny import sd21_base_unet_config, tiny_sd_unet

    torch.manual_seed(0)
    unet = tiny_sd_unet(8) if tiny else UNet2DConditionModel(**sd21_base_unet_config())
    D = unet.config.cross_attention_dim
    emb = torch.randn(1, 16 if tiny else 77, D, generator=torch.Generator().manual_seed(0))
    return StableDiffusionAdapter(unet, _vae(tiny), _sd_sched(), emb, device=device, dtype=dtype,
                                  name="sd21-base-architecture" + ("-tiny" if tiny else ""))


def sdxl_adapter(tiny: bool, *, device, dtype=torch.float32):
    """SDXL base architecture (text_time added conditioning) with random text embeddings."""
    from diffusers import UNet2DConditionModel

    from workbench.adapters import StableDiffusionAdapter

    cfg = sdxl_unet_config()
    if tiny:
        cfg = cfg | dict(sample_size=8, layers_per_block=1, block_out_channels=(8, 16, 16),
                         transformer_layers_per_block=1, attention_head_dim=2, cross_attention_dim=64,
                         addition_time_embed_dim=8, projection_class_embeddings_input_dim=16 + 48, norm_num_groups=4)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**cfg)
    g = torch.Generator().manual_seed(0)
    pooled = cfg["projection_class_embeddings_input_dim"] - 6 * cfg["addition_time_embed_dim"]
    size = float(cfg["sample_size"] * (2 if tiny else 8))
    cond = {"encoder_hidden_states": torch.randn(1, 16 if tiny else 77, cfg["cross_attention_dim"], generator=g),
            "text_embeds": torch.randn(1, pooled, generator=g),
            "time_ids": torch.tensor([[size, size, 0.0, 0.0, size, size]])}
    return StableDiffusionAdapter(unet, _vae(tiny), _sd_sched(), cond, device=device, dtype=dtype,
                                  name="sdxl-base-architecture" + ("-tiny" if tiny else ""))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _section(results: dict, name: str, fn: Callable[[], dict]) -> None:
    print(f"[device_check] {name} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        results[name] = fn() | {"ok": True}
    except Exception as exc:  # noqa: BLE001 - one failing section must not lose the others
        results[name] = {"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    results[name]["section_s"] = round(time.perf_counter() - t0, 2)
    print(f"[device_check] {name}: {results[name]}", file=sys.stderr, flush=True)


def _random_latent(ad) -> torch.Tensor:
    return torch.randn(ad.model_shape, generator=torch.Generator().manual_seed(1)) * 0.8


def _cube(ad, steps: int, K: int) -> dict:
    from workbench.ddim import invert, make_schedule
    from workbench.estimators import ProbeOptions, rate_cube

    reset_peak(ad.device)
    _sync(ad.device)
    t0 = time.perf_counter()
    traj = invert(ad, _random_latent(ad).to(ad.device), make_schedule(ad, steps))
    _sync(ad.device)
    t1 = time.perf_counter()
    cube = rate_cube(ad, traj, opts=ProbeOptions("hutchinson", K, 0))
    _sync(ad.device)
    t2 = time.perf_counter()
    return {"steps": steps, "K": K, "invert_s": round(t1 - t0, 2), "rates_s": round(t2 - t1, 2),
            "cube_s": round(t2 - t0, 2), "vjps_per_s": round(steps * K / max(t2 - t1, 1e-9), 1),
            "finite": bool(torch.isfinite(cube).all()), **peak_mb(ad.device)}


def _edit(ad, n_iter: int, steps: int) -> dict:
    from PIL import Image

    from workbench.editing import EditConfig, run_edit

    H, W = ad.image_size
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))
    mask = np.zeros((H, W), bool)
    mask[H // 4:H // 2, W // 4:W // 2] = True
    reset_peak(ad.device)
    t0 = time.perf_counter()
    res = run_edit(ad, img, mask, EditConfig(task="removal", n_iter=n_iter, steps=steps, curve_pixels=2),
                   baselines=False)
    _sync(ad.device)
    return {"n_iter": n_iter, "steps": steps, "edit_s": round(time.perf_counter() - t0, 2),
            "iterations_done": res.iterations_done, **peak_mb(ad.device)}


def _dtype_agreement(make, device, steps: int, K: int, timesteps: int) -> dict:
    """Hutchinson h-rates (same probes) of the float32 trajectory's states under each dtype."""
    from scipy.stats import spearmanr

    from workbench.ddim import Trajectory, invert, make_schedule
    from workbench.estimators import ProbeOptions, rate_cube

    ad32 = make(torch.float32)
    sched = make_schedule(ad32, steps)
    traj = invert(ad32, _random_latent(ad32).to(device), sched)
    idx = torch.linspace(0, steps - 1, timesteps).round().long()
    from workbench.ddim import Schedule

    sub = Trajectory(Schedule(sched.timesteps[idx], sched.alphas[idx], sched.alpha_final, sched.signal[idx],
                              sched.noise[idx], sched.signal_final, sched.noise_final), traj.states[idx], traj.x0)
    ref = rate_cube(ad32, sub, opts=ProbeOptions("hutchinson", K, 0)).double()
    del ad32
    out = {"timesteps": [int(t) for t in sub.schedule.timesteps], "K": K}
    for name in ("bfloat16", "float16"):
        try:
            ad = make(getattr(torch, name))
            t0 = time.perf_counter()
            got = rate_cube(ad, sub, opts=ProbeOptions("hutchinson", K, 0)).double()
            _sync(device)
            rel = ((got - ref).abs() / ref.clamp_min(1e-12)).flatten()
            out[name] = {"median_rel_diff": round(float(rel.median()), 5), "p95_rel_diff": round(float(rel.quantile(0.95)), 5),
                         "spearman": round(float(spearmanr(got.flatten(), ref.flatten())[0]), 5),
                         "finite": bool(torch.isfinite(got).all()), "rates_s": round(time.perf_counter() - t0, 2)}
            del ad
        except Exception as exc:  # noqa: BLE001 - e.g. float16 kernels missing on a CPU
            out[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    return out


def _markdown(res: dict) -> str:
    rows = ["| section | figure | value |", "|---|---|---|"]
    for sec, r in res["sections"].items():
        if not r.get("ok"):
            rows.append(f"| {sec} | error | {r.get('error', '')} |")
            continue
        for k, v in r.items():
            if k in ("ok",):
                continue
            if isinstance(v, dict):
                v = ", ".join(f"{a}={b}" for a, b in v.items())
            rows.append(f"| {sec} | {k} | {v} |")
    head = (f"Device check on {res['device_name']} (torch {res['torch']}, {'tiny' if res['tiny'] else 'full'} "
            f"models), load average {res['load_average']} before, {res['load_average_after']} after.\n\n")
    return head + "\n".join(rows) + "\n"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.device_check", description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny models on the CPU in seconds (what CI runs)")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--out", default="bench/results/device_check", help="folder for device_check.json and .md")
    p.add_argument("--edit-iters", type=int, default=None, help="edit iterations (default 300; 3 with --tiny)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    from workbench.estimators import DEFAULT_K

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    tiny = args.tiny
    steps = 5 if tiny else 50
    K = 4 if tiny else DEFAULT_K
    res = {"tiny": tiny, "device": str(device), "torch": torch.__version__, "python": platform.python_version(),
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
           "load_average": load_average(), "goals_h200": GOALS, "sections": {}}
    S = res["sections"]
    sd = sd21_adapter(tiny, device=device)
    _section(S, "sd21_cube_K", lambda: _cube(sd, steps, K))
    _section(S, "sd21_cube_4K", lambda: _cube(sd, steps, 4 * K))
    n_iter = args.edit_iters or (3 if tiny else 300)
    _section(S, "sd21_edit", lambda: _edit(sd, n_iter, 5 if tiny else 10))
    del sd
    _section(S, "sd21_dtype_agreement",
             lambda: _dtype_agreement(lambda dt: sd21_adapter(tiny, device=device, dtype=dt), device, steps,
                                      K, 2 if tiny else 5))
    if device.type == "cuda":
        torch.cuda.empty_cache()
    _section(S, "sdxl_cube_K", lambda: _cube(sdxl_adapter(tiny, device=device), steps, K))
    res["load_average_after"] = load_average()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "device_check_tiny" if tiny else "device_check"
    for suffix, text in ((".json", json.dumps(res, indent=2)), (".md", _markdown(res))):
        tmp = out / f"{name}{suffix}.partial"
        tmp.write_text(text)
        tmp.replace(out / f"{name}{suffix}")
    print(_markdown(res))
    return res


if __name__ == "__main__":
    main()
