"""Anytime cubes: a Hutchinson cube shown after its first probe batch and refined batch by batch.

`cube_batches` inverts an image once and then runs probes in growing batches (first `first`
probes, then doubling: 4, 8, 16, ... up to `params.K`). After each batch it yields a
`CubeBatch`: a complete in-memory cube of the probes so far (rate, rate_se, attributes with K =
the probes so far) and the split-half stability of its fluctuation map. Each batch runs as two
half-blocks whose probe ranges are adjacent, counted to half A and half B, so the two halves stay
equal in size; the halves' fluctuation maps give the stability (`cache.stable.split_half_stability`,
Spearman-Brown stepped up). Every batch merges into the running statistics exactly
(`workbench.uncertainty.merge_stats`: probes 0 .. K-1 of the seed), so the last cube equals
`cache.build.compute_cube(adapter, image, params)` (same key, same values to float rounding).
Intermediate cubes carry `complete` = 0 (the store refuses them); only the last is complete.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import xarray as xr
from PIL import Image

from workbench.errors import WorkbenchError

from .params import CubeParams

__all__ = ["CubeBatch", "batch_sizes", "cube_batches", "DEFAULT_FIRST"]

#: probes of the first batch (the first map a dropped image shows)
DEFAULT_FIRST = 4


@dataclass(frozen=True)
class CubeBatch:
    """One step of `cube_batches`: `ds` the cube of the first `K` probes (of `K_final`), `stability`
    the split-half stability of its fluctuation map (NaN when a half has fewer than 2 probes),
    `final` True for the last (complete) cube."""

    ds: xr.Dataset
    K: int
    K_final: int
    stability: float
    final: bool


def batch_sizes(K: int, first: int = DEFAULT_FIRST) -> list[int]:
    """The probe counts after each batch: min(first, K), then doubling, ending exactly at K.

    >>> batch_sizes(32)
    [4, 8, 16, 32]
    >>> batch_sizes(12, 4)
    [4, 8, 12]
    >>> batch_sizes(3)
    [3]
    """
    out = [min(int(first), int(K))]
    while out[-1] < K:
        out.append(min(2 * out[-1], int(K)))
    return out


def cube_batches(adapter, image: str | Path | Image.Image, params: CubeParams = CubeParams(), *,
                 first: int = DEFAULT_FIRST, window: int = 3, t_b: float = 0.0, until_stable: float | None = None,
                 progress: Callable[[int, int], None] | None = None) -> Iterator[CubeBatch]:
    """Yield the cube of `image` after each probe batch (see the module doc); the last one is complete.

    params: a Hutchinson cube's parameters (not the projected rate); other estimators yield one
    batch, the cube computed at once (`compute_cube`). window/t_b: the fluctuation map whose
    split-half stability is reported (NaN when they leave too few timesteps). until_stable: stop at the first batch whose stability reaches
    it (params.K is then the cap); the last cube is that of the probes so far (its key that of
    params with that K, attributes `until_stable` and `stability` as `cache.stable` writes them).
    progress(done, total): probe x timestep pairs of the whole cube (total = K x N), after each
    timestep batch."""
    import torch

    from workbench.estimators import cube_chunk, cube_rates_se, hutchinson_cube_stats
    from workbench.fluctuation import fluctuation
    from workbench.images import read_image, to_rgb, to_uint8
    from workbench.pipeline import prepare_image
    from workbench.rates import RateSpec
    from workbench.uncertainty import ProbeStats, merge_stats

    from .build import compute_cube, cube_from_arrays, has_probe_stats
    from .keys import cube_attrs
    from .keys import image_bytes
    from .stable import split_half_stability

    if not has_probe_stats(params):
        ds = compute_cube(adapter, image, params, progress=progress)
        yield CubeBatch(ds, params.K, params.K, float("nan"), True)
        return
    raw = image_bytes(image)
    pil = to_rgb(image) if isinstance(image, Image.Image) else read_image(image)
    prep = prepare_image(adapter, pil, steps=params.steps)
    traj, sched = prep.trajectory, prep.trajectory.schedule
    ts = sched.timesteps.cpu().numpy()
    alphas = sched.alphas.double().cpu().numpy()
    pixels = to_uint8(prep.pixels)
    spec = RateSpec(params.definition, k=params.K, channel=params.channel)
    sizes = batch_sizes(params.K, first)
    chunk = cube_chunk(adapter, sched, traj.states[0], spec, "hutchinson", params.K)  # as compute_cube
    total, halves, done = None, [None, None], 0
    N = len(sched)
    for n in sizes:
        add = n - done
        parts = [(done, (add + 1) // 2), (done + (add + 1) // 2, add // 2)]
        for h, (start, count) in enumerate(parts):
            if count == 0:
                continue

            def overall(d: int, _t: int, start=start, count=count) -> None:  # probe-timesteps of the whole cube
                if progress:
                    progress(start * N + d * count, params.K * N)

            st = hutchinson_cube_stats(adapter, traj, spec, K=count, seed=params.seed, first=start, chunk=chunk,
                                       progress=overall)
            total = st if total is None else merge_stats(total, st)
            old = halves[h]
            halves[h] = st if old is None else ProbeStats(K=old.K + st.K, first=old.first,
                                                          sum_s=old.sum_s + st.sum_s, sum_ss=old.sum_ss + st.sum_ss)
        done = n
        stability = float("nan")
        if all(hh is not None for hh in halves):
            try:
                maps = [fluctuation(cube_rates_se(hh, spec.channel).rate.to(torch.float64).numpy(), ts,
                                    window=window, t_b=t_b, axis=0) for hh in halves]
                stability = split_half_stability(*maps)
            except WorkbenchError:  # window/t_b leave too few timesteps: no stability, the cube goes on
                stability = float("nan")
        stable = until_stable is not None and np.isfinite(stability) and stability >= until_stable
        final = n == params.K or stable
        now = dataclasses.replace(params, K=int(n))
        attrs = cube_attrs(adapter, now if stable else params, raw=raw, source=image, source_size=prep.source_size)
        attrs.update(now.as_attrs())
        if until_stable is not None:
            attrs.update(until_stable=float(until_stable), stability=float(stability))
        if not final:
            attrs["complete"] = 0  # an in-memory preview: `put` refuses it
        r = cube_rates_se(total, spec.channel)
        if not torch.isfinite(r.rate).all():
            raise WorkbenchError("the rate cube has NaN/inf values: check the model weights and --dtype (use float32)")
        ds = cube_from_arrays(r.rate.float().numpy(), ts, alphas, pixels, attrs=attrs,
                              rate_se=r.rate_se.float().numpy(), stats=total if final else None)
        yield CubeBatch(ds, int(n), int(params.K), stability, final)
        if final:
            return
