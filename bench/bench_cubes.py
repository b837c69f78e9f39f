"""Cube benchmark: cost and accuracy of the whole-map estimators against the exact map.

    python -m bench.bench_cubes [--quick] [--device cuda] [--json out.json]

Sections, measured side by side in one run:
- `shipped`: the shipped pixel model on the CPU, a held-out OSIE photo (workbench/samples),
  a full DDIM cube per estimator (hutchinson at several K, rsvd, rsvd+hutchinson).
- `sd`: the Stable Diffusion 2.1 base U-Net architecture with random weights at 512x512
  (latent 4x64x64, h = mid block 1280x8x8) on `--device` (a GPU), from a random latent
  (no VAE or text encoder: random prompt embedding). `--sd small|tiny` runs scaled-down
  configs on the CPU to prove the code path; their figures are not the GPU target.
The exact map is computed at a few timesteps only (by rows or columns, whichever is fewer, or
on a random subset of pixels by columns) and its per-cube time is extrapolated (labelled so).
Spearman of each estimator's pixel rate map vs exact (whole map and interior, excluding a
border band), and of the fluctuation map vs exact curves of random pixels
(workbench.curves.pixel_curves; analysis.fluctuation defaults). Peak memory: VmHWM of this
process (reset before each measurement) on the CPU, torch.cuda.max_memory_allocated on a GPU.
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

from bench.measure import load_average, peak_mb, reset_peak

__all__ = ["main", "run_section", "build_sd_adapter"]

SAMPLES = Path(__file__).resolve().parents[1] / "workbench" / "samples"


# --- memory and load ---------------------------------------------------------------------------
_LAST_CPU_S = [0.0]


def _cpu_time() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn: Callable, device: torch.device):
    """(fn(), wall seconds); the process CPU seconds it used are left in _LAST_CPU_S[0]
    (on a loaded machine, CPU seconds / threads approximates the wall time on an idle one)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t, c = time.perf_counter(), _cpu_time()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    _LAST_CPU_S[0] = _cpu_time() - c
    return out, time.perf_counter() - t


# --- scores ------------------------------------------------------------------------------------
def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.asarray(a).ravel(), np.asarray(b).ravel())[0])


def _interior(m: np.ndarray, border: int) -> np.ndarray:
    return m[..., border:m.shape[-2] - border, border:m.shape[-1] - border]


def _finite(v: float, digits: int = 1) -> float | None:
    """v rounded, or None when it is not finite (e.g. CPU time of a cached exact map of an older run)."""
    return round(float(v), digits) if np.isfinite(v) else None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --- models ------------------------------------------------------------------------------------
def _placeholder_vae(levels: int = 4):
    """A minimal AutoencoderKL whose only role is the 2^(levels-1) latent scale (never run)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(4,) * levels,
                         down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
                         norm_num_groups=2, layers_per_block=1)


def sd_unet_config(size: str) -> dict:
    """`full`: SD 2.1 base (workbench.tiny.sd21_base_unet_config); `small`: the same blocks with a
    tenth of the channels at 256x256 (latent 32x32); `tiny`: workbench.tiny's test U-Net (8x8)."""
    from workbench.tiny import sd21_base_unet_config

    cfg = sd21_base_unet_config()
    if size == "full":
        return cfg
    if size == "small":
        return cfg | dict(sample_size=32, block_out_channels=(32, 64, 128, 128), attention_head_dim=(1, 2, 4, 4),
                          cross_attention_dim=64)
    if size == "tiny":
        return dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16),
                    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), norm_num_groups=4, cross_attention_dim=32,
                    attention_head_dim=2, use_linear_projection=True)
    raise ValueError(f"unknown --sd config {size!r}: choose full, small or tiny")


def build_sd_adapter(size: str = "full", *, device="cpu", dtype=torch.float32, seed: int = 0):
    """A random-weight SD-family adapter built in-process (no download, no VAE weights, no text
    encoder): U-Net of `sd_unet_config(size)`, SD's scaled-linear DDIM schedule, a random prompt embedding."""
    from diffusers import UNet2DConditionModel

    from workbench.adapters import StableDiffusionAdapter
    from workbench.default_model import default_scheduler_config

    cfg = sd_unet_config(size)
    torch.manual_seed(seed)
    with torch.device(device if torch.device(device).type == "cuda" else "cpu"):
        unet = UNet2DConditionModel(**cfg)
    sched = default_scheduler_config() | {"beta_schedule": "scaled_linear", "beta_start": 0.00085,
                                          "beta_end": 0.012, "steps_offset": 1}
    emb = torch.randn(1, 77, cfg["cross_attention_dim"], generator=torch.Generator().manual_seed(seed))
    ad = StableDiffusionAdapter(unet, _placeholder_vae(), sched, emb, device=device, dtype=dtype,
                                name=f"sd21-base-architecture-random-{size}")
    return ad


# --- one section -------------------------------------------------------------------------------
def _cache_file(cache: Path | None, adapter, traj, i: int, pixels: np.ndarray | None) -> Path | None:
    if cache is None:
        return None
    import hashlib

    h = hashlib.sha256(adapter.fingerprint().encode())
    h.update(str(adapter.dtype).encode())
    h.update(traj.states[i].float().cpu().numpy().tobytes())
    h.update(str(int(traj.schedule.timesteps[i])).encode())
    h.update(b"all" if pixels is None else np.ascontiguousarray(pixels).tobytes())
    return cache / f"exact-{h.hexdigest()[:20]}.npz"


def _exact_maps(adapter, traj, idx: list[int], pixels: np.ndarray | None, chunk: int, device,
                cache: Path | None = None):
    """Exact pixel rate maps at grid indices idx: full (len, H, W) by rows/columns, or on `pixels`
    (P, 2) by JVP columns (len, P). Returns (maps, seconds per timestep, how many came from `cache`).
    A cached map keeps the seconds measured when it was computed (same model, state and pixels)."""
    from workbench.rates import RateSpec, exact_element_rates, pixel_rates, rates_of, unit_tangents

    C, H, W = adapter.model_shape
    out, secs, cpu, hits = [], [], [], 0
    for i in idx:
        f = _cache_file(cache, adapter, traj, i, pixels)
        if f is not None and f.exists():
            z = np.load(f)
            out.append(z["map"])
            secs.append(float(z["seconds"]))
            cpu.append(float(z["cpu_seconds"]) if "cpu_seconds" in z else float("nan"))
            hits += 1
            _log(f"  exact map at t={int(traj.schedule.timesteps[i])}: cached ({secs[-1]:.1f} s when measured)")
            continue
        if pixels is None:
            er, dt = _timed(lambda: exact_element_rates(adapter, traj.schedule, i, traj.states[i], chunk=chunk), device)
            out.append(pixel_rates(er).float().cpu().numpy())
        else:
            flat = torch.tensor([c * H * W + y * W + x for (y, x) in pixels for c in range(C)])
            tang = unit_tangents((C, H, W), flat, device=adapter.device, dtype=adapter.dtype)
            r, dt = _timed(lambda: rates_of(adapter, traj.schedule, i, traj.states[i], tang, RateSpec(), chunk=chunk),
                           device)
            out.append(r.reshape(len(pixels), C).mean(1).float().cpu().numpy())
        secs.append(dt)
        cpu.append(_LAST_CPU_S[0])
        _log(f"  exact map at t={int(traj.schedule.timesteps[i])}: {dt:.1f} s")
        if f is not None:
            f.parent.mkdir(parents=True, exist_ok=True)
            tmp = f.with_name(f.stem + ".partial.npz")
            np.savez(tmp, map=out[-1], seconds=dt, cpu_seconds=cpu[-1], load=np.asarray(load_average() or []))
            tmp.replace(f)
    _LAST_CPU_S[0] = float(np.mean(cpu))
    return np.stack(out), float(np.mean(secs)), hits


def run_section(name: str, adapter, traj, *, estimators: list[dict], exact_timesteps: int, exact_pixels: int,
                curve_pixels: int, border: int, chunk: int, seed: int = 0, device="cpu", extra: dict | None = None,
                exact_cache: Path | None = None, on_update: Callable[[dict], None] | None = None) -> dict:
    """Benchmark one model/trajectory: every estimator's full cube (time, memory) and its accuracy vs exact.

    estimators: dicts with `estimator`, `K` and optional `rank`, `batch`, `chunk`, `full` (default True:
    a full N-step cube is timed and scored; False: only the maps at the exact timesteps, by the same
    batched code and probes, the time extrapolated to N and labelled so). on_update(section)
    is called with the partial section after every estimator (so a long run can be read as it goes).
    """
    from analysis.fluctuation import DEFAULT_T_B, DEFAULT_WINDOW, fluctuation
    from workbench.curves import pixel_curves
    from workbench.estimators import ProbeOptions, rate_cube

    device = torch.device(device)
    N = len(traj.schedule)
    C, H, W = adapter.model_shape
    ts = traj.schedule.timesteps.numpy()
    rng = np.random.default_rng(seed)
    idx = sorted({int(round((j + 0.5) / exact_timesteps * N - 0.5)) for j in range(exact_timesteps)})
    sub = None
    if exact_pixels:
        pick = rng.choice(H * W, size=min(exact_pixels, H * W), replace=False)
        sub = np.stack([pick // W, pick % W], 1)
    _log(f"[{name}] exact maps at grid indices {idx} ({'all pixels' if sub is None else f'{len(sub)} pixels'})")
    reset_peak(device)
    exact, exact_s, hits = _exact_maps(adapter, traj, idx, sub, chunk, device, exact_cache)
    exact_cpu_s = _LAST_CPU_S[0]
    exact_mem = peak_mb(device)
    n = C * H * W
    with torch.no_grad():
        h_shape = list(adapter.h(traj.states[:1].to(adapter.device, adapter.dtype), int(ts[0])).shape[1:])
    exact_cube_s = exact_s * N * (1 if sub is None else H * W / len(sub))
    method = ("rows or columns, whichever fewer" if sub is None else f"JVP columns on {len(sub)} random pixels")
    # exact curves for the fluctuation map
    cp = rng.choice(H * W, size=min(curve_pixels, H * W), replace=False)
    cpix = [(int(p // W), int(p % W)) for p in cp]
    fl_exact, curves_s = None, None
    from workbench.ddim import Schedule, Trajectory

    sch = traj.schedule
    sub_traj = Trajectory(Schedule(sch.timesteps[idx], sch.alphas[idx], sch.alpha_final), traj.states[idx], traj.x0)
    if cpix and any(e.get("full", True) for e in estimators):
        _log(f"[{name}] exact curves of {len(cpix)} pixels over {N} timesteps")
        curves, curves_s = _timed(lambda: pixel_curves(adapter, traj, cpix, chunk=chunk), device)
        fl_exact = fluctuation(curves.numpy(), ts, axis=-1)
        _log(f"  {curves_s:.1f} s")
    inner = np.zeros((H, W), bool)
    inner[border:H - border, border:W - border] = True
    rows = []
    section = dict(section=name, model=adapter.name, model_shape=[C, H, W], h_shape=h_shape, device=str(device),
                   dtype=str(adapter.dtype).replace("torch.", ""), steps=N, n_inputs=n,
                   exact=dict(grid_indices=idx, timesteps=[int(ts[i]) for i in idx], method=method,
                              seconds_per_timestep=round(exact_s, 2), seconds_per_cube=round(exact_cube_s, 1),
                              cpu_seconds_per_cube=_finite(exact_cpu_s * exact_cube_s / exact_s),
                              seconds_per_cube_is="extrapolated", maps_from_cache=hits, **exact_mem),
                   fluctuation=dict(pixels=len(cpix), exact_curve_seconds=None if curves_s is None else round(curves_s, 1),
                                    window=DEFAULT_WINDOW, t_b=DEFAULT_T_B),
                   border=border, estimators=rows, **(extra or {}))
    for e in estimators:
        label = e["estimator"] + (f" K={e['K']}" if e["estimator"] != "rsvd" else f" rank={e['K']}")
        if e.get("rank"):
            label += f" rank={e['rank']}"
        full = e.get("full", True)
        kw = {k: e[k] for k in ("rank", "batch") if e.get(k)}
        opts = ProbeOptions(e["estimator"], e["K"], seed, chunk=e.get("chunk", chunk), **kw)
        run = lambda tr, opts=opts: rate_cube(adapter, tr, opts=opts)  # noqa: E731
        _log(f"[{name}] {label}: " + (f"full {N}-step cube" if full else f"maps at the {len(idx)} exact timesteps"))
        reset_peak(device)
        if full:
            cube, dt = _timed(lambda: run(traj), device)
            cpu_s, c = _LAST_CPU_S[0], cube.numpy()
            maps = c[idx]
        else:  # the same probes and batched code on the exact timesteps only; time extrapolated to N
            maps, dt = _timed(lambda: run(sub_traj).numpy(), device)
            dt, cpu_s = dt * N / len(idx), _LAST_CPU_S[0] * N / len(idx)
        mem = peak_mb(device)
        est = maps if sub is None else maps[:, sub[:, 0], sub[:, 1]]
        per_t = [_spearman(est[j], exact[j]) for j in range(len(idx))]
        rel = np.abs(est - exact) / np.maximum(exact, 1e-30)
        row = dict(estimator=e["estimator"], K=e["K"], rank=e.get("rank"), label=label, seconds_per_cube=round(dt, 2),
                   seconds_per_cube_is="measured" if full else f"extrapolated from {len(idx)} timesteps",
                   cpu_seconds_per_cube=round(cpu_s, 1), load_after=load_average(),
                   ratio_exact_over_estimator=round(exact_cube_s / dt, 1),
                   ratio_exact_over_estimator_cpu=_finite(exact_cpu_s * exact_cube_s / exact_s / max(cpu_s, 1e-9)),
                   spearman_rate=round(float(np.mean(per_t)), 4), spearman_rate_per_timestep=[round(v, 4) for v in per_t],
                   median_relative_error=round(float(np.median(rel)), 4), **mem)
        if sub is None:
            row["spearman_rate_interior"] = round(float(np.mean([_spearman(est[j][inner], exact[j][inner])
                                                                 for j in range(len(idx))])), 4)
        else:
            keep = inner[sub[:, 0], sub[:, 1]]
            row["spearman_rate_interior"] = round(float(np.mean([_spearman(est[j][keep], exact[j][keep])
                                                                 for j in range(len(idx))])), 4)
        if fl_exact is not None and full:
            fl = fluctuation(c[:, [p[0] for p in cpix], [p[1] for p in cpix]], ts, axis=0)
            row["spearman_fluctuation"] = round(_spearman(fl, fl_exact), 4)
        _log(f"  {dt:.1f} s, Spearman {row['spearman_rate']:.4f} (interior {row['spearman_rate_interior']:.4f})"
             f"{', fluctuation %.4f' % row['spearman_fluctuation'] if 'spearman_fluctuation' in row else ''}, {mem}")
        rows.append(row)
        if on_update:
            on_update(section)
    return section


# --- command line ------------------------------------------------------------------------------
def _ints(s: str) -> list[int]:
    return [int(v) for v in s.split(",") if v.strip()]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.bench_cubes", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run of a couple of minutes (10 steps, few K, "
                   "exact on a pixel subset)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--model", default=None, help="pixel model folder for the shipped section (default: shipped)")
    p.add_argument("--image", type=Path, default=SAMPLES / "osie-1654.jpg")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default 50; 10 with --quick)")
    p.add_argument("--ks", type=_ints, default=None, help="Hutchinson K values (default 8,16,32,64,128)")
    p.add_argument("--rsvd-rank", type=int, default=None, help="rank of plain rsvd (default 16)")
    p.add_argument("--diagpp", default=None, help="rsvd+hutchinson as RANK:K (default 8:32)")
    p.add_argument("--full-ks", type=_ints, default=None,
                   help="Hutchinson K values that get a full timed cube (default: all); the others are "
                        "scored at the exact timesteps and their time extrapolated")
    p.add_argument("--no-full-others", action="store_true",
                   help="rsvd and rsvd+hutchinson: score at the exact timesteps only, time extrapolated")
    p.add_argument("--exact-timesteps", type=int, default=None, help="timesteps with an exact map (default 3)")
    p.add_argument("--exact-pixels", type=int, default=None,
                   help="0: whole exact maps; P: exact on P random pixels by columns (default 0; 64 with --quick)")
    p.add_argument("--curve-pixels", type=int, default=None, help="random pixels with exact curves (default 32)")
    p.add_argument("--exact-cache", type=Path, default=None,
                   help="reuse exact maps of an earlier run from this folder (default: none; "
                        "their seconds are the ones measured then, and the JSON counts them)")
    p.add_argument("--chunk", type=int, default=64, help="probe x timestep pairs per pass on the CPU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores)")
    p.add_argument("--no-shipped", action="store_true", help="skip the shipped-model CPU section")
    p.add_argument("--device", default="cpu", help="device of the SD section (cuda runs SD 2.1 base by default)")
    p.add_argument("--sd", choices=("none", "full", "small", "tiny"), default=None,
                   help="SD-architecture section (default: full on cuda, none on cpu)")
    p.add_argument("--sd-chunk", type=int, default=None, help="probe x timestep pairs per pass in the SD section "
                   "(default 512 on cuda, 64 on cpu)")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="dtype of the SD section")
    p.add_argument("--sd-ks", type=_ints, default=None, help="Hutchinson K values of the SD section (default 32)")
    return p


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print a table and return (and optionally write) the JSON results."""
    a = _parser().parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from workbench.adapters import load_model
    from workbench.ddim import invert, make_schedule
    from workbench.estimators import DEFAULT_K
    from workbench.pipeline import prepare_image

    q = a.quick
    steps = a.steps or (10 if q else 50)
    ks = a.ks or ([8, 32] if q else [8, 16, 32, 64, 128])
    rsvd_rank = a.rsvd_rank or (4 if q else 16)
    dr, dk = (int(v) for v in (a.diagpp or ("4:8" if q else "8:32")).split(":"))
    exact_t = a.exact_timesteps or (1 if q else 3)
    exact_px = a.exact_pixels if a.exact_pixels is not None else (64 if q else 0)
    curve_px = a.curve_pixels if a.curve_pixels is not None else (8 if q else 32)
    full_ks = set(ks if a.full_ks is None else a.full_ks)
    est = [dict(estimator="hutchinson", K=k, full=k in full_ks) for k in ks]
    est += [dict(estimator="rsvd", K=rsvd_rank, full=not a.no_full_others),
            dict(estimator="rsvd+hutchinson", K=dk, rank=dr, full=not a.no_full_others)]
    res = dict(command="python -m bench.bench_cubes " + " ".join(argv if argv is not None else sys.argv[1:]),
               date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), load_before=load_average(),
               torch=torch.__version__, threads=torch.get_num_threads(), cpu_count=os.cpu_count(),
               platform=platform.platform(), default_K=DEFAULT_K, sections=[])
    def write(section: dict | None = None) -> None:
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            partial = dict(res, partial=True, sections=res["sections"] + ([section] if section else []))
            a.json.write_text(json.dumps(partial, indent=2))

    if not a.no_shipped:
        ad = load_model(a.model, device="cpu")
        (prep, inv_s) = _timed(lambda: prepare_image(ad, a.image, steps=steps), torch.device("cpu"))
        _, H, W = ad.model_shape
        res["sections"].append(run_section(
            "shipped", ad, prep.trajectory, estimators=est, exact_timesteps=exact_t, exact_pixels=exact_px,
            curve_pixels=curve_px, border=max(1, H // 8), chunk=a.chunk, device="cpu",
            extra=dict(image=str(a.image), inversion_seconds=round(inv_s, 2)), exact_cache=a.exact_cache,
            on_update=write))
    sd = a.sd or ("full" if str(a.device).startswith("cuda") else "none")
    if sd != "none":
        dev = torch.device(a.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("bench_cubes: error: --device cuda but no GPU is visible: run on a GPU machine or pass "
                             "--device cpu --sd tiny")
        ad = build_sd_adapter(sd, device=dev, dtype=getattr(torch, a.dtype))
        C, H, W = ad.model_shape
        x0 = torch.randn(C, H, W, generator=torch.Generator().manual_seed(0)).to(dev, ad.dtype)
        sched = make_schedule(ad, steps)
        traj, inv_s = _timed(lambda: invert(ad, x0, sched), dev)
        chunk = a.sd_chunk or (512 if dev.type == "cuda" else 64)
        sd_est = [dict(estimator="hutchinson", K=k, chunk=chunk) for k in (a.sd_ks or [DEFAULT_K])]
        sd_est.append(dict(estimator="rsvd+hutchinson", K=DEFAULT_K, rank=8, chunk=chunk))
        res["sections"].append(run_section(
            f"sd-{sd}", ad, traj, estimators=sd_est, exact_timesteps=exact_t,
            exact_pixels=a.exact_pixels or (64 if q else 128), curve_pixels=curve_px, border=max(1, H // 8),
            chunk=chunk, device=dev, extra=dict(image="random latent (seed 0)", inversion_seconds=round(inv_s, 2),
                                                 sd_config=sd), exact_cache=a.exact_cache, on_update=write))
    if not any(s["section"] == "sd-full" and s["device"].startswith("cuda") for s in res["sections"]):
        res["gpu"] = "not measured (no GPU lent)"
    res["load_after"] = load_average()
    _print_table(res)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=2))
    return res


def _print_table(res: dict) -> None:
    for s in res["sections"]:
        ex = s["exact"]
        print(f"\n== {s['section']}: {s['model']} {s['model_shape']} on {s['device']} ({s['dtype']}), {s['steps']} steps; "
              f"exact {ex['seconds_per_cube']} s per cube ({ex['seconds_per_cube_is']} from {len(ex['grid_indices'])} "
              f"timesteps, {ex['method']})")
        print(f"{'estimator':<28}{'s/cube':>9}{'cpu s':>9}{'exact/est':>11}{'rho rate':>10}{'rho inner':>10}{'rho fluct':>10}"
              f"{'med rel':>9}{'peak MB':>9}")
        for r in s["estimators"]:
            mem = r.get("peak_cuda_mb", r.get("peak_rss_mb", float("nan")))
            print(f"{r['label']:<28}{r['seconds_per_cube']:>9.1f}{r['cpu_seconds_per_cube']:>9.1f}"
                  f"{r['ratio_exact_over_estimator']:>11.1f}"
                  f"{r['spearman_rate']:>10.4f}{r['spearman_rate_interior']:>10.4f}"
                  f"{r.get('spearman_fluctuation', float('nan')):>10.4f}{r['median_relative_error']:>9.3f}{mem:>9.0f}"
                  f"{'' if r['seconds_per_cube_is'] == 'measured' else '  (time ' + r['seconds_per_cube_is'] + ')'}")
    print(f"\nload average before {res['load_before']}, after {res['load_after']}; {res['threads']} threads")
    if "gpu" in res:
        print("GPU (SD 2.1 base, 512x512):", res["gpu"])


if __name__ == "__main__":
    main()
