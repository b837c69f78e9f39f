"""Training throughput of the default model on this machine: steps/s and images/s per recipe.

    python -m bench.bench_train [--seconds 15] [--rounds 2] [--compile-cap 240]

Every variant changes one thing against the current recipe (64x64 crops, batch 32, float32,
NCHW, data on the training thread) except the last, which combines the winners. Variants are
measured interleaved, round-robin, so that the machine's load (shared, changing) hits them all
alike; the ratio column is against the current recipe's mean over the same rounds. `px/s` counts
64x64-equivalent images (a 32x32 crop is a quarter image), the unit of training signal.
Results go to bench/results/train.json.
"""
from __future__ import annotations

import argparse
import json
import signal
import time
from dataclasses import replace
from pathlib import Path

import torch

from bench.measure import load_average
from workbench.default_model import DEFAULT_MODEL_DIR
from workbench.train import (BatchPrefetcher, TrainConfig, build_models, list_images, load_photo_bank,
                             random_crops, split_holdout, train_step)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "osie" / "data" / "stimuli"
BASE = dict(resolution=64, batch_size=32, bf16=False, channels_last=False, prefetch=False)
VARIANTS = {
    "current (64px, b32, fp32)": {},
    "channels_last": dict(channels_last=True),
    "bf16 autocast": dict(bf16=True),
    "bf16 + channels_last": dict(bf16=True, channels_last=True),
    "prefetch thread": dict(prefetch=True),
    "batch 16": dict(batch_size=16),
    "batch 64": dict(batch_size=64),
    "32px crops, b32": dict(resolution=32),
    "32px crops, b128": dict(resolution=32, batch_size=128),
    "32px b64 bf16": dict(resolution=32, batch_size=64, bf16=True),
    "32px b64 bf16 prefetch": dict(resolution=32, batch_size=64, bf16=True, prefetch=True),
}


class _Runner:
    """Models, optimiser and batch source of one variant; `run(seconds)` -> steps done, seconds."""

    def __init__(self, cfg: TrainConfig, bank, abar: torch.Tensor, compiled: bool = False):
        self.cfg, self.abar = cfg, abar
        weights = None
        self.model, self.ema, self.opt = build_models(cfg, weights)
        if compiled:
            self.model = torch.compile(self.model)
        gen = torch.Generator().manual_seed(0)

        def make():
            x0 = random_crops(bank, cfg.batch_size, cfg.resolution, 0.25, gen, cfg.full_resolution)
            return x0, torch.randint(0, 1000, (cfg.batch_size,), generator=gen), torch.randn(x0.shape, generator=gen)

        self.batches = BatchPrefetcher(make) if cfg.prefetch else iter(make, None)
        self.fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format

    def step(self) -> None:
        x0, t, noise = next(self.batches)
        train_step(self.model, self.ema, self.opt, x0.contiguous(memory_format=self.fmt), t,
                   noise.contiguous(memory_format=self.fmt), self.abar, lr=1e-5, ema_decay=0.999, bf16=self.cfg.bf16)

    def run(self, seconds: float) -> tuple[int, float]:
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            self.step()
            n += 1
        return n, time.perf_counter() - start

    def close(self) -> None:
        if isinstance(self.batches, BatchPrefetcher):
            self.batches.close()


class _Timeout(Exception):
    pass


def _compiled_runner(cfg, bank, abar, cap_s: float) -> tuple[_Runner | None, float]:
    """A torch.compile runner and its compile time (first two steps), or None past `cap_s`."""
    def alarm(*_):
        raise _Timeout

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(cap_s))
    start = time.perf_counter()
    try:
        r = _Runner(cfg, bank, abar, compiled=True)
        r.step()
        r.step()
        return r, time.perf_counter() - start
    except _Timeout:
        return None, time.perf_counter() - start
    except Exception as exc:  # report, do not fail the whole table
        print(f"torch.compile failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return None, time.perf_counter() - start
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0, help="seconds per variant per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--compile-cap", type=float, default=240.0, help="give up on torch.compile after this (0: skip)")
    ap.add_argument("--only", default=None, help="comma-separated variant names (default: all)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train.json"))
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"no data at {DATA}: the benchmark needs ../shared/data")
        return 2
    from diffusers import DDPMScheduler

    from workbench.default_model import default_scheduler_config

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, load {load_average()}")
    files, _ = split_holdout(list_images(DATA), 50)
    bank = load_photo_bank(files[:120], 300)
    abar = DDPMScheduler(**{k: v for k, v in default_scheduler_config().items()
                            if k != "set_alpha_to_one"}).alphas_cumprod
    names = list(VARIANTS) if not args.only else [n for n in VARIANTS if n in args.only.split(",")]
    cfg0 = TrainConfig(data_dir=str(DATA), checkpoint_dir="unused", init=None, **BASE)
    runners = {n: _Runner(replace(cfg0, **VARIANTS[n]), bank, abar) for n in names}
    for r in runners.values():
        r.step()  # warm-up (oneDNN primitive creation)
    compile_s = None
    if args.compile_cap > 0:
        load0 = load_average()
        r, compile_s = _compiled_runner(cfg0, bank, abar, args.compile_cap)
        print(f"torch.compile: first two steps took {compile_s:.0f} s (cap {args.compile_cap:.0f} s), load {load0}"
              + ("" if r else " -> not measured"))
        if r:
            runners["torch.compile (fp32)"] = r
            names.append("torch.compile (fp32)")
    rows = {n: {"steps": 0, "seconds": 0.0, "loads": []} for n in names}
    for rnd in range(args.rounds):
        for n in names:
            steps, secs = runners[n].run(args.seconds)
            rows[n]["steps"] += steps
            rows[n]["seconds"] += secs
            rows[n]["loads"].append(load_average()[0])
            print(f"  round {rnd + 1} {n:28s} {steps / secs:6.3f} steps/s  load {load_average()}", flush=True)
    for r in runners.values():
        r.close()
    base = names[0]
    table = []
    for n in names:
        v = {**BASE, **VARIANTS.get(n, {})}
        sps = rows[n]["steps"] / rows[n]["seconds"]
        ips = sps * v["batch_size"]
        px = ips * (v["resolution"] / 64) ** 2
        table.append(dict(variant=n, steps_per_s=round(sps, 3), images_per_s=round(ips, 1),
                          px64_images_per_s=round(px, 1), load_1min=rows[n]["loads"]))
    b = table[0]
    print(f"\n| variant | steps/s | images/s | 64px-equiv images/s | ratio (px/s vs current) | load (1 min) |")
    print("|---|---|---|---|---|---|")
    for row in table:
        print(f"| {row['variant']} | {row['steps_per_s']:.3f} | {row['images_per_s']:.1f} | "
              f"{row['px64_images_per_s']:.1f} | {row['px64_images_per_s'] / b['px64_images_per_s']:.2f}x | "
              f"{', '.join(f'{x:.1f}' for x in row['load_1min'])} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    tmp.write_text(json.dumps({"table": table, "compile_s": compile_s, "seconds": args.seconds,
                               "rounds": args.rounds, "threads": torch.get_num_threads(),
                               "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                               "baseline": base, "load_end": load_average()}, indent=1))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
