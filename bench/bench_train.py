"""Training throughput of the default model on this machine: steps/s and images/s per recipe.

    python -m bench.bench_train [--steps 2] [--rounds 2] [--threads 1] [--compile-cap 0]

Every variant changes one thing against the current recipe (64x64 crops, batch 32, float32,
NCHW, data on the training thread) except the last, which combines the winners. Variants are
measured interleaved, round-robin, so that the machine's load (shared, changing) hits them all
alike; the ratio column is against the current recipe's mean over the same rounds. On a shared,
overloaded machine wall time measures the other jobs, so the primary figure is the process CPU
time per step (`time.process_time`, all threads, prefetch thread included) with one intra-op
thread; wall steps/s is printed beside it. `64px img per CPU-s` counts 64x64-equivalent images (a
32x32 crop is a quarter image), the unit of training signal.
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
from workbench.splits import split_held_out
from workbench.train import (BatchPrefetcher, StepOptions, TrainConfig, build_models, list_images,
                             load_photo_bank, random_crops, train_step)

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
    "32px crops, b32, bf16": dict(resolution=32, bf16=True),
}


class _Runner:
    """Models, optimiser and batch source of one variant; `run(steps)` times that many steps."""

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
                   noise.contiguous(memory_format=self.fmt), self.abar,
                   StepOptions(lr=1e-5, ema_decay=0.999, bf16=self.cfg.bf16))

    def run(self, steps: int) -> tuple[int, float, float]:
        """(steps, wall seconds, process CPU seconds) of `steps` steps."""
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            self.step()
        return steps, time.perf_counter() - start, time.process_time() - cpu

    def close(self) -> None:
        if isinstance(self.batches, BatchPrefetcher):
            self.batches.close()


class _Timeout(Exception):
    pass


def select_variants(only: str | None) -> list[str]:
    """The variants whose names begin with one of the comma-separated `only` (all when None), in
    table order; names themselves hold commas, so whole names cannot be listed."""
    if not only:
        return list(VARIANTS)
    return [n for n in VARIANTS if any(n.startswith(tok.strip()) for tok in only.split(",") if tok.strip())]


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
    ap.add_argument("--steps", type=int, default=2, help="steps per variant per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--compile-cap", type=float, default=0.0, help="give up on torch.compile after this (0: skip)")
    ap.add_argument("--only", default=None, help="comma-separated beginnings of variant names, e.g. 'current,bf16 autocast' (default: all)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "train.json"))
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"no data at {DATA}: the benchmark needs ../shared/data")
        return 2
    from diffusers import DDPMScheduler

    from workbench.default_model import default_scheduler_config

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, load {load_average()}")
    files, _ = split_held_out(list_images(DATA), 50, need_train=True)
    bank = load_photo_bank(files[:120], 300)
    abar = DDPMScheduler(**{k: v for k, v in default_scheduler_config().items()
                            if k != "set_alpha_to_one"}).alphas_cumprod
    names = select_variants(args.only)
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
    rows = {n: {"steps": 0, "seconds": 0.0, "cpu_s": 0.0, "loads": []} for n in names}
    for rnd in range(args.rounds):
        for n in names:
            steps, secs, cpu = runners[n].run(args.steps)
            rows[n]["steps"] += steps
            rows[n]["seconds"] += secs
            rows[n]["cpu_s"] += cpu
            rows[n]["loads"].append(load_average()[0])
            print(f"  round {rnd + 1} {n:28s} {cpu / steps:6.2f} CPU-s/step {steps / secs:6.3f} steps/s (wall)  "
                  f"load {load_average()}", flush=True)
    for r in runners.values():
        r.close()
    base = names[0]
    table = []
    for n in names:
        v = {**BASE, **VARIANTS.get(n, {})}
        cps = rows[n]["cpu_s"] / rows[n]["steps"]
        ipc = v["batch_size"] / cps
        px = ipc * (v["resolution"] / 64) ** 2
        table.append(dict(variant=n, cpu_s_per_step=round(cps, 3), images_per_cpu_s=round(ipc, 2),
                          px64_images_per_cpu_s=round(px, 2), wall_steps_per_s=round(rows[n]["steps"] / rows[n]["seconds"], 4),
                          load_1min=rows[n]["loads"]))
    b = table[0]
    print(f"\n| variant | CPU-s/step | images/CPU-s | 64px images/CPU-s | ratio vs current | wall steps/s | load (1 min) |")
    print("|---|---|---|---|---|---|---|")
    for row in table:
        print(f"| {row['variant']} | {row['cpu_s_per_step']:.2f} | {row['images_per_cpu_s']:.1f} | "
              f"{row['px64_images_per_cpu_s']:.1f} | {row['px64_images_per_cpu_s'] / b['px64_images_per_cpu_s']:.2f}x | "
              f"{row['wall_steps_per_s']:.3f} | {', '.join(f'{x:.1f}' for x in row['load_1min'])} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".partial")
    tmp.write_text(json.dumps({"table": table, "compile_s": compile_s, "steps": args.steps,
                               "rounds": args.rounds, "threads": torch.get_num_threads(),
                               "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                               "baseline": base, "load_end": load_average()}, indent=1))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
