"""Adaptive probe counts: add Hutchinson probe blocks to a cube until its fluctuation map is stable.

Probes run in blocks of `block`, alternately counted to half A and half B. After each pair of
blocks, the fluctuation maps of the two halves are compared (Spearman over all pixels) and the
split-half correlation r is stepped up to the full probe count by Spearman-Brown, 2r / (1 + r):
the expected rank correlation of the whole map with an independent map of as many probes. Once
that reaches `R` (or the probes reach `cap`), the merged statistics of all the blocks (probes
0 .. K-1 of the seed) make the cube, identical to a K-probe cube computed at once: it is stored
under that cube's key, with the attributes `until_stable` (R) and `stability` (the last estimate).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from workbench.errors import WorkbenchError

from .params import CubeParams

__all__ = ["stats_until_stable", "compute_cube_until_stable", "split_half_stability"]


def split_half_stability(map_a: np.ndarray, map_b: np.ndarray) -> float:
    """Spearman-Brown stepped-up Spearman correlation of two half-sample maps (any equal shapes)."""
    from scipy.stats import spearmanr

    r = float(spearmanr(np.ravel(map_a), np.ravel(map_b)).statistic)
    if not np.isfinite(r):
        return 0.0
    return 2 * r / (1 + r) if r > -1 else -1.0


def stats_until_stable(adapter, trajectory, params: CubeParams, R: float, *, window: int, t_b: float,
                       block: int | None = None, cap: int | None = None,
                       progress: Callable[[int, float], None] | None = None):
    """(ProbeStats of probes 0 .. K-1, K, stability) for the first K (a multiple of 2 * block) whose
    split-half fluctuation stability reaches R, or K >= cap. `window`/`t_b`: the fluctuation's.
    progress(K, stability) after each pair of blocks."""
    import torch

    from workbench.estimators import cube_chunk, cube_rates_se, hutchinson_cube_stats
    from workbench.fluctuation import fluctuation
    from workbench.rates import RateSpec
    from workbench.uncertainty import ProbeStats, merge_stats

    if not 0 < R < 1:
        raise WorkbenchError(f"--until-stable {R}: pass a stability between 0 and 1, e.g. 0.98")
    if params.estimator != "hutchinson" or params.definition == "projected":
        raise WorkbenchError("--until-stable needs Hutchinson cubes (rate h, eps or step)")
    block = int(block or max(2, params.K // 2))
    cap = int(cap or 8 * params.K)
    if cap < 2 * block:
        raise WorkbenchError(f"--max-K {cap} is below one pair of probe blocks ({2 * block}): raise it")
    spec = RateSpec(params.definition, k=params.K, channel=params.channel)
    chunk = cube_chunk(adapter, trajectory.schedule, trajectory.states[0], spec, "hutchinson", block)
    ts = trajectory.schedule.timesteps.cpu().numpy()
    halves: list = [None, None]
    total = None
    while True:
        for h in (0, 1):
            first = 0 if total is None else total.K
            st = hutchinson_cube_stats(adapter, trajectory, spec, K=block, seed=params.seed, first=first, chunk=chunk)
            total = st if total is None else merge_stats(total, st)
            old = halves[h]
            halves[h] = st if old is None else ProbeStats(K=old.K + st.K, first=old.first, sum_s=old.sum_s + st.sum_s,
                                                          sum_ss=old.sum_ss + st.sum_ss)
        maps = [fluctuation(cube_rates_se(hh, spec.channel).rate.to(torch.float64).numpy(), ts, window=window,
                            t_b=t_b, axis=0) for hh in halves]
        stability = split_half_stability(*maps)
        if progress:
            progress(total.K, stability)
        if stability >= R or total.K + 2 * block > cap:
            return total, total.K, stability


def compute_cube_until_stable(adapter, image, params: CubeParams, R: float, *, window: int, t_b: float,
                              block: int | None = None, cap: int | None = None,
                              progress: Callable[[int, float], None] | None = None) -> xr.Dataset:
    """The cube of `image` with as many probes as its fluctuation map needed to reach stability R
    (see the module doc): a Dataset like `cache.build.compute_cube(..., params with K = that K)`,
    with the attributes `until_stable` and `stability`."""
    from PIL import Image

    from workbench.images import read_image, to_rgb, to_uint8
    from workbench.pipeline import prepare_image

    from .build import cube_from_arrays
    from .keys import cube_attrs, image_bytes

    raw = image_bytes(image)
    pil = to_rgb(image) if isinstance(image, Image.Image) else read_image(image)
    prep = prepare_image(adapter, pil, steps=params.steps)
    stats, K, stability = stats_until_stable(adapter, prep.trajectory, params, R, window=window, t_b=t_b,
                                             block=block, cap=cap, progress=progress)
    from workbench.estimators import cube_rates_se

    final = dataclasses.replace(params, K=int(K))
    r = cube_rates_se(stats, params.channel)
    sched = prep.trajectory.schedule
    attrs = cube_attrs(adapter, final, raw=raw, source=image, source_size=prep.source_size,
                       until_stable=float(R), stability=float(stability))
    return cube_from_arrays(r.rate.float().numpy(), sched.timesteps.cpu().numpy(), sched.alphas.double().cpu().numpy(),
                            to_uint8(prep.pixels), attrs=attrs, rate_se=r.rate_se.float().numpy(), stats=stats)
