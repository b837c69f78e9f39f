"""Estimator benchmark: accuracy, standard errors and refinement of Hutchinson cubes
against the exact reference, side by side in one run.

    python -m bench.bench_estimators [--ks 16,32,64,128] [--images 2] [--json out.json]
    python -m bench.bench_estimators --quick --model DIR   (a small model: exact curves computed here)

Per image of the reference (`bench/reference/exact_h50.npz`, shipped model; for another model
`--exact-pixels` exact curves are computed on the fly): the Hutchinson statistics are computed in
blocks of probes and refined K -> next K by `refine_cube_stats` (exact merge), and at every K:
- time per 50-step cube (wall and process CPU seconds; the machine is shared: load printed);
- rate Spearman over the reference pixels (mean over timesteps), whole grid and interior;
- fluctuation Spearman over the reference pixels (analysis.fluctuation defaults);
- SE calibration: fraction of exact rates inside +-2 rate_se (goal 0.93-0.97), and of exact
  fluctuations inside +-2 fluctuation_se;
- grid power (fraction of the log fluctuation map's variance on the model's downsampling period)
  of the estimated map, of the estimate and of the exact values at the reference pixels;
and once: refinement K -> 2K time over a fresh K-probe cube; probe kinds (gaussian, rademacher,
orthogonal blocks), the shift-averaged rate (probes at random sub-grid shifts of the states) and
Diag++ (Baston & Nakatsukasa 2022) at equal VJP count.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.measure import load_average

__all__ = ["main", "score"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn):
    t, c = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - t, _cpu() - c


def _spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(np.ravel(a), np.ravel(b))[0])


def score(rate: np.ndarray, rate_se: np.ndarray, exact: np.ndarray, pixels: np.ndarray, timesteps: np.ndarray, *,
          border: int, shape: tuple[int, int], period: int) -> dict:
    """Scores of one estimated cube: rate, rate_se (N, H, W); exact pixel curves (P, N) at pixels (P, 2)."""
    from analysis.fluctuation import fluctuation, fluctuation_significance, grid_power, grid_power_chance

    ys, xs = pixels[:, 0], pixels[:, 1]
    est, se = rate[:, ys, xs].T, rate_se[:, ys, xs].T  # (P, N)
    H, W = shape
    inner = (ys >= border) & (ys < H - border) & (xs >= border) & (xs < W - border)
    sig = fluctuation_significance(rate, rate_se, timesteps)
    F_map = sig["fluctuation"]
    F_exact = fluctuation(exact, timesteps, axis=-1)
    F_est = F_map[ys, xs]
    return dict(
        spearman_rate=round(float(np.mean([_spearman(est[:, j], exact[:, j]) for j in range(est.shape[1])])), 4),
        spearman_rate_interior=round(float(np.mean([_spearman(est[inner, j], exact[inner, j])
                                                    for j in range(est.shape[1])])), 4),
        spearman_fluctuation=round(_spearman(F_est, F_exact), 4),
        median_relative_error=round(float(np.median(np.abs(est - exact) / exact)), 4),
        rate_inside_2se=round(float(np.mean(np.abs(est - exact) <= 2 * se)), 4),
        fluctuation_inside_2se=round(float(np.mean(np.abs(F_est - F_exact) <= 2 * sig["fluctuation_se"][ys, xs])), 4),
        significant_fraction=round(float(np.mean(np.abs(sig["z"]) > 2)), 4),
        grid_power_map=round(grid_power(F_map, period), 4),
        grid_power_estimate_at_pixels=round(grid_power(F_est, period, ys=ys, xs=xs), 4),
        grid_power_exact_at_pixels=round(grid_power(F_exact, period, ys=ys, xs=xs), 4),
        grid_power_chance_map=round(grid_power_chance(H * W, period), 4),
        grid_power_chance_pixels=round(grid_power_chance(len(ys), period), 4))


def synthetic_calibration(ks=(16, 32, 64, 128), *, reps: int = 300, m: int = 64, seed: int = 2) -> list[dict]:
    """SE calibration where the truth is exact and cheap: a dense linear map h = A x with correlated
    channels (C=3, 4x4 pixels, m outputs), `reps` independent K-probe estimates per probe kind (disjoint
    probe ranges of one seed). Per K and kind: fraction of true pixel rates inside +-2 rate_se, mean
    predicted SE over the empirical SD of the estimates, relative SD."""
    from workbench.estimators import PROBE_KINDS, probe_block
    from workbench.uncertainty import pixel_rates_se, stats_from_samples

    C, H, W = 3, 4, 4
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(m, 1, H, W, generator=g, dtype=torch.float64)
    A = (base + 0.6 * torch.randn(m, C, H, W, generator=g, dtype=torch.float64)).reshape(m, -1)
    truth = A.pow(2).sum(0).sqrt().reshape(C, H, W).mean(0)
    out = []
    for kind in PROBE_KINDS:
        for K in ks:
            rows = (probe_block((m,), 0, 0, reps * K, kind=kind).double() @ A).reshape(reps, K, C, H, W)
            res = [pixel_rates_se(stats_from_samples(rows[r].pow(2))) for r in range(reps)]
            est, se = torch.stack([o.rate for o in res]), torch.stack([o.rate_se for o in res])
            out.append(dict(kind=kind, K=K, inside_2se=round(((est - truth).abs() <= 2 * se).double().mean().item(), 3),
                            se_over_sd=round((se.mean(0) / est.std(0)).mean().item(), 3),
                            relative_sd=round((est.std(0) / truth).mean().item(), 4)))
    return out


def _parser() -> argparse.ArgumentParser:
    ints = lambda s: [int(v) for v in s.split(",")]  # noqa: E731
    p = argparse.ArgumentParser(prog="python -m bench.bench_estimators", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=None, help="model folder (default: the shipped model)")
    p.add_argument("--quick", action="store_true", help="few steps and probes (a small model; exact computed here)")
    p.add_argument("--ks", type=ints, default=None, help="K values reached by refinement (default 16,32,64,128)")
    p.add_argument("--images", type=int, default=None, help="how many of the reference's images (default all)")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps when exact curves are computed here")
    p.add_argument("--exact-pixels", type=int, default=32, help="pixels of on-the-fly exact curves (other models)")
    p.add_argument("--compare-k", type=int, default=32, help="VJPs per timestep of the probe-kind / Diag++ comparison")
    p.add_argument("--no-compare", action="store_true", help="skip the probe-kind and Diag++ comparison")
    p.add_argument("--period", type=int, default=None, help="grid period in pixels (default: the model's downsampling)")
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--json", type=Path, default=None)
    return p


def _downsampling(adapter) -> int:
    cfg = dict(adapter.unet.config)
    return 2 ** (len(cfg.get("block_out_channels", (0,))) - 1)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print a table and return (and optionally write) the JSON results."""
    a = _parser().parse_args(argv)
    from bench.reference import load_reference
    from bench.reference.make_exact import exact_channel_curves
    from workbench.adapters import load_model
    from workbench.default_model import DEFAULT_MODEL_DIR, SAMPLES_DIR
    from workbench.estimators import (ProbeOptions, cube_rates_se, diagpp_sq_batched, hutchinson_cube_stats,
                                      refine_cube_stats)
    from workbench.pipeline import prepare_image

    ad = load_model(a.model or DEFAULT_MODEL_DIR, device="cpu")
    C, H, W = ad.model_shape
    period = a.period or _downsampling(ad)
    ks = sorted(a.ks or ([4, 8] if a.quick else [16, 32, 64, 128]))
    ref, why = (None, "another model") if a.model else load_reference(ad)
    res = dict(command="python -m bench.bench_estimators " + " ".join(argv if argv is not None else sys.argv[1:]),
               date=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), load_before=load_average(),
               threads=torch.get_num_threads(), cpu_count=os.cpu_count(), model=ad.fingerprint(), period=period,
               images=[])
    res["synthetic_calibration"] = synthetic_calibration((4, 8) if a.quick else (16, 32, 64, 128),
                                                         reps=40 if a.quick else 300)
    for r in res["synthetic_calibration"]:
        _log(f"synthetic {r}")
    if ref is not None:
        todo = [(ref.images[i], ref.pixels[i], ref.pixel_curves(i), ref.steps) for i in range(len(ref.images))]
        res["reference"] = dict(file="bench/reference/exact_h50.npz", pixels=[len(p) for p in ref.pixels])
    else:
        if not a.model:
            _log(f"bench_estimators: the exact reference cannot be used ({why}); computing {a.exact_pixels} "
                 "exact pixels here")
        names = sorted(p.name for p in SAMPLES_DIR.glob("*.jpg"))[:2]
        rng = np.random.default_rng(0)
        todo = []
        for n in names:
            pick = rng.choice(H * W, size=min(a.exact_pixels, H * W), replace=False)
            todo.append((n, np.stack([pick // W, pick % W], 1), None, a.steps))
        res["reference"] = dict(file=None, why=why, pixels=[a.exact_pixels] * len(todo))
    few = [t[0] for t in todo if len(t[1]) < 8]
    if few:
        _log(f"bench_estimators: skipping {', '.join(few)}: fewer than 8 reference pixels so far (make_exact resumes)")
    todo = [t for t in todo if len(t[1]) >= 8]
    todo = todo[:a.images] if a.images else todo
    for name, pixels, exact, steps in todo:
        traj = prepare_image(ad, SAMPLES_DIR / name, steps=steps).trajectory
        ts = traj.schedule.timesteps.numpy()
        if exact is None:
            exact = exact_channel_curves(ad, traj, pixels).mean(1)
        row = dict(image=name, pixels=len(pixels), steps=len(ts), by_K=[])
        stats, wall, cpu = None, 0.0, 0.0
        for K in ks:
            step = (lambda: hutchinson_cube_stats(ad, traj, opts=ProbeOptions(K=K, seed=0, chunk=a.chunk))) if stats is None else \
                (lambda: refine_cube_stats(ad, traj, stats, opts=ProbeOptions(K=K, seed=0, chunk=a.chunk)))
            prevK = 0 if stats is None else stats.K
            stats, dt, dc = _timed(step)
            wall, cpu = wall + dt, cpu + dc
            out = cube_rates_se(stats)
            s = score(out.rate.numpy(), out.rate_se.numpy(), exact, pixels, ts, border=max(1, H // 8), shape=(H, W),
                      period=period)
            row["by_K"].append(dict(K=K, seconds_per_cube=round(wall, 1), cpu_seconds_per_cube=round(cpu, 1),
                                    block=f"{prevK}->{K}", block_seconds=round(dt, 1), block_cpu_seconds=round(dc, 1),
                                    load=load_average(), **s))
            _log(f"[{name}] K={K}: {wall:.0f} s ({cpu:.0f} cpu s) {s} load {load_average()}")
        if len(ks) > 1 and ks[1] == 2 * ks[0]:  # two independent halves: probes 0..K0-1 and K0..2K0-1
            row["error_correlation"] = _halves_correlation(ad, traj, ks[0], a.chunk, exact, pixels, ts, stats)
        # refinement K -> 2K against a fresh K-probe cube (equal VJP count)
        K0 = ks[0]
        first, dt_first, dc_first = _timed(lambda: hutchinson_cube_stats(ad, traj, opts=ProbeOptions(K=K0, seed=1, chunk=a.chunk)))
        _, dt_ref, dc_ref = _timed(lambda: refine_cube_stats(ad, traj, first, opts=ProbeOptions(K=2 * K0, seed=1, chunk=a.chunk)))
        row["refinement"] = dict(K=K0, fresh_seconds=round(dt_first, 1), refine_seconds=round(dt_ref, 1),
                                 ratio_wall=round(dt_ref / dt_first, 3), ratio_cpu=round(dc_ref / max(dc_first, 1e-9), 3),
                                 load=load_average())
        if not a.no_compare:
            row["equal_cost"] = _compare(ad, traj, exact, pixels, ts, a.compare_k, a.chunk, period,
                                         a.model or DEFAULT_MODEL_DIR)
        res["images"].append(row)
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(dict(res, partial=True), indent=2))
    res["load_after"] = load_average()
    _print(res)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return res


def _halves_correlation(ad, traj, K0: int, chunk: int, exact, pixels, ts, final) -> dict:
    """The lag-1 correlation of the rate errors over t from two disjoint probe halves (K0 each, the
    second obtained by subtracting the first from the 2 K0 merge), and the fluctuation's SE coverage
    at the final K with that correlation instead of 0."""
    from analysis.fluctuation import error_correlation, fluctuation, fluctuation_significance
    from workbench.estimators import ProbeOptions, cube_rates_se, hutchinson_cube_stats

    A = hutchinson_cube_stats(ad, traj, opts=ProbeOptions(K=K0, seed=0, chunk=chunk))
    B = hutchinson_cube_stats(ad, traj, opts=ProbeOptions(K=K0, seed=0, chunk=chunk), first=K0)
    ra, rb = cube_rates_se(A), cube_rates_se(B)
    rho = error_correlation(ra.rate.numpy(), rb.rate.numpy(), ra.rate_se.numpy(), rb.rate_se.numpy())
    out = cube_rates_se(final)
    ys, xs = pixels[:, 0], pixels[:, 1]
    sig = fluctuation_significance(out.rate.numpy(), out.rate_se.numpy(), ts, correlation=rho)
    F_exact = fluctuation(exact, ts, axis=-1)
    inside = np.abs(sig["fluctuation"][ys, xs] - F_exact) <= 2 * sig["fluctuation_se"][ys, xs]
    return dict(rho=round(rho, 4), K=final.K, fluctuation_inside_2se=round(float(np.mean(inside)), 4),
                significant_fraction=round(float(np.mean(np.abs(sig["z"]) > 2)), 4))


def _compare(ad, traj, exact, pixels, ts, K: int, chunk: int, period: int, model_dir) -> list[dict]:
    """Probe kinds, the shift-averaged rate, Diag++ at K VJPs per timestep and bfloat16 at K and 2K
    (the model of `model_dir` loaded in bfloat16): rate and fluctuation
    Spearman, median relative error at the pixels, grid power of the fluctuation map."""
    from analysis.fluctuation import fluctuation, grid_power
    from workbench.estimators import ProbeOptions, cube_rates_se, hutchinson_cube_stats, rate_cube
    from workbench.rates import RateSpec

    out = []
    ys, xs = pixels[:, 0], pixels[:, 1]
    runs = [(f"hutchinson {k} K={K}", lambda k=k: cube_rates_se(hutchinson_cube_stats(
        ad, traj, opts=ProbeOptions(K=K, seed=2, kind=k, chunk=chunk))).rate.numpy()) for k in ("gaussian", "rademacher", "orthogonal")]
    runs.append((f"hutchinson gaussian K={K} shift-averaged /{period}", lambda: cube_rates_se(hutchinson_cube_stats(
        ad, traj, opts=ProbeOptions(K=K, seed=2, chunk=chunk, shift_period=period))).rate.numpy()))
    rank = max(1, K // 8)  # iters=1: rank * 4 products + (K - 4 rank) probes = K per timestep
    runs.append((f"diag++ rank={rank} iters=1 K={K - 4 * rank}", lambda: rate_cube(
        ad, traj, RateSpec(iters=1), ProbeOptions("rsvd+hutchinson", K - 4 * rank, 2, rank=rank,
                                                  chunk=chunk)).numpy()))
    # the same estimator in bfloat16 (the CPU's AVX512-BF16 where it has it): at the same K, and at 2K
    half = _bfloat16_twin(model_dir)
    for k2 in (K, 2 * K):
        runs.append((f"hutchinson gaussian K={k2} bfloat16", lambda k2=k2: cube_rates_se(hutchinson_cube_stats(
            half, traj, opts=ProbeOptions(K=k2, seed=2, chunk=chunk))).rate.float().numpy()))
    for label, fn in runs:
        cube, dt, dc = _timed(fn)
        est = cube[:, ys, xs].T
        out.append(dict(label=label, seconds_per_cube=round(dt, 1), cpu_seconds_per_cube=round(dc, 1),
                        spearman_rate=round(float(np.mean([_spearman(est[:, j], exact[:, j])
                                                           for j in range(est.shape[1])])), 4),
                        median_relative_error=round(float(np.median(np.abs(est - exact) / exact)), 4),
                        spearman_fluctuation=round(_spearman(fluctuation(est, ts, axis=-1),
                                                             fluctuation(exact, ts, axis=-1)), 4),
                        grid_power_map=round(grid_power(fluctuation(cube, ts, axis=0), period), 4),
                        load=load_average()))
        _log(f"  {out[-1]}")
    return out


def _bfloat16_twin(model_dir):
    """The benchmarked model loaded again in bfloat16 (same folder, same weights)."""
    from workbench.adapters import load_model

    return load_model(model_dir, device="cpu", dtype=torch.bfloat16)


def _print(res: dict) -> None:
    print("SE calibration on a dense linear map (exact truth): fraction inside +-2 SE / mean SE over SD / rel. SD")
    for r in res["synthetic_calibration"]:
        print(f"  {r['kind']:<11} K={r['K']:<4} {r['inside_2se']:.3f}  {r['se_over_sd']:.3f}  {r['relative_sd']:.4f}")
    print(f"model {res['model']}, grid period {res['period']} px, reference {res['reference']}")
    for r in res["images"]:
        print(f"\n== {r['image']}: {r['pixels']} exact pixels, {r['steps']} steps")
        print(f"{'K':>5}{'s/cube':>8}{'cpu s':>8}{'rho rate':>9}{'rho in':>8}{'rho F':>8}{'in 2se':>8}{'F in 2se':>9}"
              f"{'grid map':>9}{'grid est':>9}{'grid ex':>8}{'chance':>8}  load")
        for k in r["by_K"]:
            print(f"{k['K']:>5}{k['seconds_per_cube']:>8.0f}{k['cpu_seconds_per_cube']:>8.0f}{k['spearman_rate']:>9.3f}"
                  f"{k['spearman_rate_interior']:>8.3f}{k['spearman_fluctuation']:>8.3f}{k['rate_inside_2se']:>8.3f}"
                  f"{k['fluctuation_inside_2se']:>9.3f}{k['grid_power_map']:>9.3f}"
                  f"{k['grid_power_estimate_at_pixels']:>9.3f}{k['grid_power_exact_at_pixels']:>8.3f}"
                  f"{k['grid_power_chance_pixels']:>8.3f}  {k['load']}")
        if "error_correlation" in r:
            e = r["error_correlation"]
            print(f"rate errors' lag-1 correlation over t (two probe halves): {e['rho']}; with it, at K={e['K']}: "
                  f"F inside 2 se {e['fluctuation_inside_2se']}, significant {e['significant_fraction']}")
        f = r["refinement"]
        print(f"refinement {f['K']}->{2 * f['K']}: {f['refine_seconds']} s vs fresh {f['K']}: {f['fresh_seconds']} s "
              f"(ratio wall {f['ratio_wall']}, cpu {f['ratio_cpu']}), load {f['load']}")
        for c in r.get("equal_cost", []):
            print(f"  {c['label']:<44}{c['seconds_per_cube']:>7.0f} s  rho {c['spearman_rate']:.3f}  "
                  f"rho F {c['spearman_fluctuation']:.3f}  med rel {c['median_relative_error']:.3f}  "
                  f"grid {c['grid_power_map']:.3f}  load {c['load']}")
    print(f"\nload average before {res['load_before']}, after {res['load_after']}; {res['threads']} threads, "
          f"{res['cpu_count']} CPUs (shared machine)")


if __name__ == "__main__":
    main()
