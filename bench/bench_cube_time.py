"""Seconds per 50-step Hutchinson cube of the shipped model, float32 and bfloat16 side by side.

    python -m bench.bench_cube_time [--ks 16,32,64] [--threads 2] [--repeats 2] [--steps 50]

Per (dtype, K): DDIM inversion + the Hutchinson statistics and rate/SE of the whole cube
(`hutchinson_cube_stats` + `cube_rates_se`), the model loaded once per dtype, the configurations
interleaved `--repeats` times so that a change in the machine's load hits both alike. Prints the
load average beside every figure and the bfloat16 / float32 ratio at equal K. Accuracy at each K is
`bench.bench_estimators`' business (the same probes give the same rates to ~0.2 % in bfloat16).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.measure import load_average

__all__ = ["main"]


def _one_cube(adapter, image, steps: int, K: int) -> tuple[float, float]:
    from workbench.estimators import ProbeOptions, cube_rates_se, hutchinson_cube_stats
    from workbench.pipeline import prepare_image

    t0 = time.perf_counter()
    traj = prepare_image(adapter, image, steps=steps).trajectory
    t1 = time.perf_counter()
    cube_rates_se(hutchinson_cube_stats(adapter, traj, opts=ProbeOptions(K=K, seed=0)))
    return t1 - t0, time.perf_counter() - t1


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print the table and return (and optionally write) the results."""
    from PIL import Image

    from workbench.adapters import load_model
    from workbench.default_model import DEFAULT_MODEL_DIR, SAMPLES_DIR

    p = argparse.ArgumentParser(prog="python -m bench.bench_cube_time", description=__doc__.split("\n\n")[0])
    p.add_argument("--ks", default="16,32,64", help="Hutchinson K values (default 16,32,64)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--model", default=None, help="model folder (default: the shipped model)")
    p.add_argument("--image", type=Path, default=None, help="image (default: the shipped osie-1654.jpg)")
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    ks = [int(k) for k in a.ks.split(",")]
    image = Image.open(a.image or SAMPLES_DIR / "osie-1654.jpg").convert("RGB")
    models = {dt: load_model(a.model or DEFAULT_MODEL_DIR, device="cpu", dtype=getattr(torch, dt))
              for dt in ("float32", "bfloat16")}
    res = dict(command="python -m bench.bench_cube_time " + " ".join(argv if argv is not None else sys.argv[1:]),
               threads=torch.get_num_threads(), cpus=os.cpu_count(), load_before=load_average(), runs=[])
    for _ in range(a.repeats):
        for K in ks:
            for dt, ad in models.items():
                inv, rates = _one_cube(ad, image, a.steps, K)
                res["runs"].append(dict(dtype=dt, K=K, inversion_s=round(inv, 2), rates_s=round(rates, 2),
                                        total_s=round(inv + rates, 2), load=load_average()))
                print(f"{dt:9s} K={K:<4d} {inv + rates:6.1f} s per {a.steps}-step cube (inversion {inv:.1f} s)  "
                      f"load {res['runs'][-1]['load'][0]:.2f}", flush=True)
    res["load_after"] = load_average()
    print(f"\nmedian seconds per {a.steps}-step cube, {res['threads']} threads "
          f"(load average {res['load_before'][0]:.2f} -> {res['load_after'][0]:.2f}):")
    print(f"{'K':>5} {'float32':>9} {'bfloat16':>9} {'ratio':>6}")
    for K in ks:
        med = {dt: float(np.median([r["total_s"] for r in res["runs"] if r["dtype"] == dt and r["K"] == K]))
               for dt in models}
        print(f"{K:>5} {med['float32']:>9.1f} {med['bfloat16']:>9.1f} {med['bfloat16'] / med['float32']:>6.2f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
    sys.exit(0)
