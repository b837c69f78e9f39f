"""Refinement cost: K -> 2K by `CubeStore.refine` against the K extra probes it must run and 2K at once.

    python -m bench.bench_refine [--model DIR] [--K 16] [--steps 20] [--image PATH]

Prints, side by side, the seconds of: a K cube, its refinement to 2K (re-inversion + K new probes
+ exact merge + write), a 2K cube at once, and the ratio refine / (2K - K) (the issue's target:
<= 1.10), plus the largest difference between the refined and the at-once cube, and the load average.
A warm-up cube runs first (the memory calibration and first-call costs are not counted).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.measure import load_average


def main(argv: list[str] | None = None) -> dict:
    from cache.params import CubeParams
    from cache.store import CubeStore
    from workbench.adapters import load_model
    from workbench.default_model import SAMPLES_DIR

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--K", type=int, default=16)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--image", default=None)
    a = p.parse_args(argv)
    adapter = load_model(a.model, device="cpu")
    image = Path(a.image) if a.image else sorted(p for p in Path(SAMPLES_DIR).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[0]
    params = CubeParams(K=a.K, steps=a.steps, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        CubeStore(Path(tmp) / "warm").build([image], adapter, CubeParams(K=2, steps=a.steps, seed=1))  # first-call costs
        store = CubeStore(Path(tmp) / "st")
        t0 = time.perf_counter()
        store.build([image], adapter, params)
        t_k = time.perf_counter() - t0
        t0 = time.perf_counter()
        k2 = store.refine([image], adapter, params, 2 * a.K)[0]
        t_refine = time.perf_counter() - t0
        once = CubeStore(Path(tmp) / "once")
        t0 = time.perf_counter()
        k2b = once.build([image], adapter, CubeParams(K=2 * a.K, steps=a.steps, seed=0))[0]
        t_2k = time.perf_counter() - t0
        diff = float(np.abs(store.open(k2).rate.values - once.open(k2b).rate.values).max())
    res = {"K": a.K, "steps": a.steps, "seconds_K": round(t_k, 2), "seconds_refine_to_2K": round(t_refine, 2),
           "seconds_2K_at_once": round(t_2k, 2), "extra_K_cost": round(t_2k - t_k, 2),
           "refine_over_extra": round(t_refine / max(t_2k - t_k, 1e-9), 3), "max_abs_diff": diff,
           "same_key": k2 == k2b, "load_average": load_average(), "cpus": os.cpu_count()}
    print(f"K={a.K} -> {2 * a.K}, {a.steps} steps: K cube {t_k:.1f} s | refine {t_refine:.1f} s | 2K at once "
          f"{t_2k:.1f} s | refine / (2K - K) = {res['refine_over_extra']:.2f} | max |refined - at once| = {diff:.2e} "
          f"| same key {k2 == k2b} | load {res['load_average']}")
    return res


if __name__ == "__main__":
    main()
