"""Edit benchmark: iterations per second and peak memory of the curve-matching loop.

    python -m bench.bench_edit [--iters 30] [--device cuda] [--sd full|small|tiny|none] [--json out.json]

Sections, measured in one run:
- `shipped`: the shipped pixel model (64x64) on the CPU, a removal edit (pseudo-curve) of a
  held-out sample photo with a centred elliptic mask, the default EditConfig.
- `sd-<size>`: the Stable Diffusion 2.1 base U-Net architecture with random weights
  (bench.bench_cubes.build_sd_adapter; `full` = 512x512 images, latent 4x64x64) on `--device`;
  `small`/`tiny` are scaled-down configs that prove the code path on a CPU (not the GPU target).
Per section: seconds per optimisation iteration (the loop only, from the loop's own callbacks),
set-up (inversion + curves) and finish (generation, re-inversion, report curves) seconds, the
projected time of a 300-iteration edit (set-up + 300 x per-iteration + finish; measured directly
when --iters 300), and peak memory (VmHWM on the CPU, torch.cuda.max_memory_allocated on a GPU).
Targets: 300 iterations of the SD-2.1 architecture in <= 60 s on one H100; 300 iterations with the
shipped model in <= 5 min on a 2-core CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["main", "time_edit"]

SAMPLE = Path(__file__).resolve().parents[1] / "workbench" / "samples" / "osie-1654.jpg"


def _ellipse_mask(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - h / 2) / (h / 5)) ** 2 + ((xx - w / 2) / (w / 6)) ** 2 <= 1


def time_edit(adapter, config, image=SAMPLE) -> dict:
    """Run one edit and time its stages from the loop's callbacks; peak memory of the run."""
    from PIL import Image

    from bench.measure import load_average, peak_mb, reset_peak
    from workbench.editing import run_edit

    dev = adapter.device
    pil = Image.open(image).convert("RGB")
    mask = _ellipse_mask(pil.height, pil.width)
    stamps: dict[str, float] = {}
    its: list[float] = []

    def cb(p) -> None:  # a workbench.progress.Progress
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        now = time.perf_counter()
        stamps.setdefault(p.phase, now)
        if p.phase == "optimise":
            its.append(now)

    reset_peak(dev)
    t0 = time.perf_counter()
    res = run_edit(adapter, pil, mask, config, callback=cb, baselines=False)
    total = time.perf_counter() - t0
    setup = stamps["optimise"] - t0 - (its[1] - its[0] if len(its) > 1 else 0) if its else total
    loop = (its[-1] - its[0]) / (len(its) - 1) if len(its) > 1 else float("nan")
    finish = total - (its[-1] - t0) if its else 0.0
    out = {"iterations": res.iterations_done, "total_s": round(total, 2), "setup_s": round(setup, 2),
           "s_per_iteration": round(loop, 4), "iterations_per_s": round(1 / loop, 3),
           "finish_s": round(finish, 2), "projected_300_s": round(setup + 300 * loop + finish, 1),
           "load_avg": load_average(), **peak_mb(dev)}
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.bench_edit", description=__doc__.split("\n\n")[0])
    p.add_argument("--iters", type=int, default=30, help="iterations per section (default 30; 300 = no projection)")
    p.add_argument("--device", default="cpu", help="device of the SD section (cpu or cuda)")
    p.add_argument("--sd", default=None, choices=("full", "small", "tiny", "none"),
                   help="SD-architecture section (default: full on cuda, tiny on cpu)")
    p.add_argument("--skip-shipped", action="store_true", help="only the SD section")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", default="bench-edit.json", help="output JSON (default bench-edit.json)")
    p.add_argument("--collect", default=None, metavar="RUNS",
                   help="instead of timing: build before/after grids (docs/img/edit-<task>.png) and print the "
                        "metric table from the `workbench edit` output folders under RUNS")
    p.add_argument("--img-dir", default="docs/img", help="where --collect writes its grids")
    return p


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    return f"{v:.2e}" if 0 < abs(v) < 0.01 else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def collect(runs: Path, img_dir: Path) -> str:
    """Grids per task (rows: runs; columns: region, original, ours, baselines) and a Markdown table
    of ours vs the baselines from the metrics.json files of `workbench edit` output folders."""
    from PIL import Image

    from workbench.editing.report import image_grid, mask_overlay

    docs = [(json.loads((d / "metrics.json").read_text()), d) for d in sorted(runs.iterdir()) if (d / "metrics.json").exists()]
    lines = ["| task | image | method | PSNR out (dB) | SSIM out | change in | mean rate t>t_b before -> after | "
             "TV to ref before -> after | fluctuation before -> after | s |", "|" + "---|" * 10]
    by_task: dict[str, list] = {}
    for doc, d in docs:
        by_task.setdefault(doc["task"], []).append((doc, d))
        name = Path(doc["image"]).stem[:20] + (" (increase)" if doc["config"]["direction"] == -1 and doc["task"] == "saliency" else "")
        if doc["task"] == "removal" and not doc["ref"]:
            name += " (pseudo-curve)"
        rows = [("ours", doc["metrics"])] + list(doc["baselines"].items())
        for method, m in rows:
            tv = f"{_fmt(m.get('tv_before'))} -> {_fmt(m.get('tv_after'))}" if "tv_after" in m else "-"
            lines.append(f"| {doc['task']} | {name} | {method} | {_fmt(m['psnr_outside'])} | {_fmt(m['ssim_outside'])} | "
                         f"{_fmt(m['change_inside'])} | {_fmt(m['mean_rate_before'])} -> {_fmt(m['mean_rate_after'])} | {tv} | "
                         f"{_fmt(m['fluctuation_before'])} -> {_fmt(m['fluctuation_after'])} | "
                         f"{_fmt(m.get('seconds')) if method == 'ours' else '-'} |")
    img_dir.mkdir(parents=True, exist_ok=True)
    for task, items in by_task.items():
        grid_rows, labels, names = [], ["region", "original", "ours"], []
        for doc, d in items:
            orig = Image.open(d / "original.png")
            region = Image.open(d / "region_model.png").resize(orig.size, Image.Resampling.NEAREST)
            base = sorted((d / "baselines").glob("*.png"))
            labels = ["region", "original", "ours"] + [b.stem for b in base]
            grid_rows.append([mask_overlay(orig, np.asarray(region) > 127), orig, Image.open(d / "edited.png")] +
                             [Image.open(b) for b in base])
            names.append(Path(doc["image"]).stem[:18] + (" +" if doc["config"]["direction"] == -1 else ""))
        image_grid(grid_rows, labels, row_labels=names, cell=160).save(img_dir / f"edit-{task}.png")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from bench.bench_cubes import build_sd_adapter
    from workbench.adapters import load_model
    from workbench.editing import EditConfig

    a = _parser().parse_args(argv)
    if a.collect:
        print(collect(Path(a.collect), Path(a.img_dir)))
        return {}
    if a.threads:
        torch.set_num_threads(a.threads)
    res = {"host": platform.node(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "torch": torch.__version__, "sections": []}
    cfg = EditConfig(task="removal", n_iter=a.iters)
    if not a.skip_shipped:
        print(f"bench_edit: shipped model, cpu, {a.iters} iterations ...", file=sys.stderr, flush=True)
        ad = load_model(None, device="cpu")
        res["sections"].append({"section": "shipped", "device": "cpu", "config": cfg.as_dict(), **time_edit(ad, cfg)})
    sd = a.sd or ("full" if str(a.device).startswith("cuda") else "tiny")
    if sd != "none":
        dev = torch.device(a.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise SystemExit("bench_edit: error: --device cuda but no GPU is visible: run on a GPU machine or use cpu")
        print(f"bench_edit: SD-2.1 architecture ({sd}), {dev}, {a.iters} iterations ...", file=sys.stderr, flush=True)
        ad = build_sd_adapter(sd, device=str(dev))
        sd_cfg = cfg.with_(steps=50 if sd == "full" else cfg.steps, curve_pixels=4)
        res["sections"].append({"section": f"sd-{sd}", "device": str(dev), "image_size": list(ad.image_size),
                                "config": sd_cfg.as_dict(), **time_edit(ad, sd_cfg)})
    if not any(s["section"] == "sd-full" and s["device"].startswith("cuda") for s in res["sections"]):
        res["gpu"] = "not measured (no GPU lent)"
    Path(a.json).write_text(json.dumps(res, indent=1))
    for s in res["sections"]:
        mem = s.get("peak_cuda_mb", s.get("peak_rss_mb", float("nan")))
        print(f"{s['section']:>10} {s['device']:>6}: {s['s_per_iteration']:.3f} s/iteration "
              f"({s['iterations_per_s']:.2f} it/s), set-up {s['setup_s']:.1f} s, finish {s['finish_s']:.1f} s, "
              f"300 iterations ~{s['projected_300_s']:.0f} s, peak {mem} MB, load {s['load_avg']}")
    print(f"# wrote {a.json}")
    return res


if __name__ == "__main__":
    main()
