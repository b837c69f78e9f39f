"""Memory benchmark: peak memory of a 512x512 SD-2.1-base curve and cube under a budget.

    python -m bench.bench_memory [--budget 5GB] [--what curve,cube] [--steps 2] [--K 2] [--dtype float32]
                                 [--device cpu] [--small] [--json out.json]

The model is the SD-2.1-base architecture with random weights, built in-process from its public
config values (no download): `UNet2DConditionModel` (workbench.tiny.sd21_base_unet_config),
`AutoencoderKL` (the SD VAE: 4 levels 128/256/512/512, 4 latent channels, scaling 0.18215) and a
`CLIPTextModel` (OpenCLIP ViT-H text tower: width 1024, 23 layers, 16 heads) whose output on the
empty prompt's token ids is the prompt embedding (the encoder is freed before the U-Net is built).
`--small` scales the channels down 10x at 256x256 (proves the code path quickly; not the target).

Per section: the chunk the budget chose, the measured cost of one sample (workbench.memory's
probe), seconds, peak memory (VmHWM on the CPU since the section began, which includes the
weights; torch.cuda.max_memory_allocated on a GPU), the budget, and the load average. A budget
below what one sample needs is reported as the one-line error the command line would print.
Extrapolation: a 50-step curve is (50 / steps) x the measured curve seconds; a 50-step K=64 cube
is (50 x 64) / (steps x K) x the measured cube seconds (passes scale linearly once the chunk is fixed).
"""
from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["main", "build_sd21", "SD21_VAE_CONFIG", "SD21_TEXT_CONFIG"]

#: stabilityai/stable-diffusion-2-1-base vae/config.json (the values that shape the network)
SD21_VAE_CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
                       down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                       layers_per_block=2, norm_num_groups=32, sample_size=768, scaling_factor=0.18215)
#: stabilityai/stable-diffusion-2-1-base text_encoder/config.json
SD21_TEXT_CONFIG = dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
                        num_attention_heads=16, max_position_embeddings=77, hidden_act="gelu", projection_dim=512,
                        bos_token_id=49406, eos_token_id=49407, pad_token_id=1)


def _sched() -> dict:
    from workbench.default_model import default_scheduler_config

    return default_scheduler_config() | {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                                         "steps_offset": 1, "clip_sample": False, "set_alpha_to_one": False}


def _empty_prompt_embedding(small: bool) -> torch.Tensor:
    """The random-weight text encoder on the empty prompt's ids (<start> then <end> padding): (1, 77, D)."""
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = dict(SD21_TEXT_CONFIG)
    if small:
        cfg |= dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2)
    torch.manual_seed(0)
    enc = CLIPTextModel(CLIPTextConfig(**cfg)).eval()
    ids = torch.full((1, 77), cfg["eos_token_id"])
    ids[0, 0] = cfg["bos_token_id"]
    with torch.no_grad():
        emb = enc(ids)[0].float().contiguous()
    del enc
    gc.collect()
    return emb


def build_sd21(*, small: bool = False, device="cpu", dtype=torch.float32):
    """A random-weight SD-2.1-base adapter (512x512, latent 4x64x64) from config values, or a 10x
    narrower one at 256x256 (`small`)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    from workbench.adapters import StableDiffusionAdapter
    from workbench.tiny import sd21_base_unet_config

    emb = _empty_prompt_embedding(small)
    ucfg, vcfg = sd21_base_unet_config(), dict(SD21_VAE_CONFIG)
    if small:
        ucfg |= dict(sample_size=32, block_out_channels=(32, 64, 128, 128), attention_head_dim=(1, 2, 4, 4),
                     cross_attention_dim=64)
        vcfg |= dict(block_out_channels=(16, 32, 64, 64), norm_num_groups=8)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**ucfg)
    vae = AutoencoderKL(**vcfg)
    return StableDiffusionAdapter(unet, vae, _sched(), emb, device=device, dtype=dtype,
                                  name="sd21-base-architecture-random" + ("-small" if small else ""))


def _image(size: int):
    from PIL import Image

    yy, xx = np.mgrid[0:size, 0:size] / size
    rgb = np.stack([np.sin(6 * xx) * 0.5 + 0.5, np.cos(5 * yy) * 0.5 + 0.5, xx * yy], -1)
    return Image.fromarray((rgb * 255).astype(np.uint8))


def _section(name: str, adapter, fn) -> dict:
    from bench.measure import load_average, peak_mb, reset_peak
    from workbench import memory
    from workbench.errors import WorkbenchError

    gc.collect()
    reset_peak(adapter.device)
    t0 = time.perf_counter()
    out = {"section": name}
    try:
        out.update(fn())
    except WorkbenchError as exc:
        out["error"] = f"workbench: error: {exc}"
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out.update(peak_mb(adapter.device))
    out["sample_costs_mb"] = {str(k[-1]): round(v / 1e6) for k, v in memory._COSTS.get(adapter, {}).items()}
    out["load_average"] = load_average()
    print(json.dumps(out), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_memory", description=__doc__.splitlines()[0])
    p.add_argument("--budget", default="5GB", help="memory budget (workbench --max-memory), default 5GB")
    p.add_argument("--what", default="curve,cube", help="sections: curve, cube (comma-separated)")
    p.add_argument("--steps", type=int, default=2, help="DDIM steps (default 2: extrapolated to 50)")
    p.add_argument("--K", type=int, default=2, help="Hutchinson probes of the cube (default 2: extrapolated to 64)")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--small", action="store_true", help="10x narrower model at 256x256 (a quick check)")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

    from bench.measure import load_average
    from workbench import memory
    from workbench.curves import curve_chunk, pixel_curves
    from workbench.estimators import ProbeOptions, cube_chunk, rate_cube
    from workbench.pipeline import prepare_image
    from workbench.rates import RateSpec

    t0 = time.perf_counter()
    adapter = build_sd21(small=args.small, device=args.device, dtype=getattr(torch, args.dtype))
    budget = memory.budget_from(args.budget, adapter.device)
    adapter.memory_budget = budget
    head = {"model": adapter.name, "image_size": list(adapter.image_size), "latent": list(adapter.model_shape),
            "dtype": args.dtype, "device": str(adapter.device), "budget": args.budget, "budget_bytes": budget.bytes,
            "steps": args.steps, "K": args.K, "build_seconds": round(time.perf_counter() - t0, 1),
            "rss_after_build_mb": round(memory.in_use("cpu") / 1e6), "machine": platform.processor() or platform.machine(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "load_average": load_average()}
    print(json.dumps(head), flush=True)
    H, W = adapter.image_size
    t1 = time.perf_counter()
    prep = prepare_image(adapter, _image(H), steps=args.steps)
    head["invert_seconds"] = round(time.perf_counter() - t1, 1)
    results = [head]
    _, h, w = adapter.model_shape
    spec = RateSpec("h")
    if "curve" in args.what:
        def curve():
            chunk = curve_chunk(adapter, prep.trajectory, spec)
            t = time.perf_counter()
            c = pixel_curves(adapter, prep.trajectory, [(h // 2, w // 2)], spec, chunk=chunk)
            dt = time.perf_counter() - t
            return {"chunk_timesteps": chunk, "curve_seconds": round(dt, 1), "finite": bool(torch.isfinite(c).all()),
                    "curve_50_steps_seconds_extrapolated": round(dt * 50 / args.steps)}
        results.append(_section("curve", adapter, curve))
    if "cube" in args.what:
        def cube():
            chunk = cube_chunk(adapter, prep.trajectory.schedule, prep.trajectory.states[0], spec, "hutchinson", args.K)
            t = time.perf_counter()
            c = rate_cube(adapter, prep.trajectory, spec, ProbeOptions(K=args.K, chunk=chunk))
            dt = time.perf_counter() - t
            return {"chunk_probes": chunk, "cube_seconds": round(dt, 1), "finite": bool(torch.isfinite(c).all()),
                    "cube_50_steps_K64_seconds_extrapolated": round(dt * 50 * 64 / (args.steps * args.K))}
        results.append(_section("cube", adapter, cube))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
